r"""Command lines of the ablation studies and of the CSRA-vs-GAP comparison.

Every program takes all `csra-train` flags for its base config (`--flagfile`
works; `--workdir` is the study folder), plus `--seeds`. Runs go to
`<workdir>/<point>/seed_<s>/`; finished runs are reused, so a study that was
stopped continues when started again with the same flags.

Example:
    python experiments/ablations/lambda_sweep.py --workdir=runs/lambda \
        --flagfile=experiments/configs/shapes_csra.flags --seeds=0,1,2
    python experiments/compare_heads.py --workdir=runs/compare \
        --flagfile=experiments/configs/shapes_csra.flags
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from absl import flags

from csra_tf import studies
from csra_tf.cli import csra_train as train_cli
from csra_tf.cli.app import no_arguments, run_program
from csra_tf.cli.config_flags import parse_list
from csra_tf.studies.compare import DEFAULT_SEEDS
from csra_tf.studies.runner import study_base

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "seeds",
    [],
    "Seeds to repeat every point with, e.g. 0,1,2 (default: 0 for the ablations, "
    "0,1,2 for compare_heads).",
)
flags.DEFINE_list(
    "lams",
    [f"{lam:g}" for lam in studies.LAMBDAS],
    "lambda_sweep: the lambdas.",
)
flags.DEFINE_list(
    "head_counts",
    [str(h) for h in studies.HEAD_COUNTS],
    "head_sweep: the numbers of heads (1, 2, 4, 6, 8).",
)


def _program() -> str:
    return os.path.basename(sys.argv[0])


def _seeds(default: Sequence[int]) -> list[int]:
    return parse_list(FLAGS.seeds, int, "seeds") if FLAGS.seeds else list(default)


def _print_study(study: Callable, **kwargs) -> None:
    """Runs an ablation on the flags' base config and prints its summary.

    Args:
        study: one of `csra_tf.studies`' studies (`lambda_sweep`, ...).
        **kwargs: the study's own arguments besides the config and seeds.
    """
    summary = study(train_cli.train_config(), seeds=_seeds([0]), **kwargs)
    print(studies.format_summary(summary))


def lambda_sweep_main(argv):
    """absl main: the lambda sweep (Fig. 5); prints the summary table.

    Args:
        argv: leftover command-line arguments (none expected).
    """
    no_arguments(argv, _program())
    _print_study(studies.lambda_sweep, lams=parse_list(FLAGS.lams, float, "lams"))


def head_sweep_main(argv):
    """absl main: the number of heads (Table 7); prints the summary table.

    Args:
        argv: leftover command-line arguments (none expected).
    """
    no_arguments(argv, _program())
    _print_study(
        studies.head_sweep,
        head_counts=parse_list(FLAGS.head_counts, int, "head_counts"),
    )


def normalization_main(argv):
    """absl main: classifier normalisation on / off (Table 8); prints the summary.

    Args:
        argv: leftover command-line arguments (none expected).
    """
    no_arguments(argv, _program())
    _print_study(studies.normalization_ablation)


def pooling_main(argv):
    """absl main: average vs spatial vs CSRA (Table 6); prints the summary table.

    Args:
        argv: leftover command-line arguments (none expected).
    """
    no_arguments(argv, _program())
    _print_study(studies.pooling_ablation)


def compare_heads_main(argv):
    """absl main: CSRA (`--num_heads`, `--lam`) vs GAP over paired seeds.

    Args:
        argv: leftover command-line arguments (none expected).
    """
    no_arguments(argv, _program())
    config = train_cli.train_config()
    result = studies.compare_heads(
        config,
        seeds=_seeds(DEFAULT_SEEDS),
        num_heads=config.num_heads,
        lam=config.lam,
    )
    print(
        studies.comparison_markdown(
            study_base(config), result, config.num_heads, config.lam
        )
    )


def run_lambda_sweep():
    """Console-script entry point of `csra-lambda-sweep`."""
    run_program(lambda_sweep_main, "csra-lambda-sweep", __name__, train_cli.__name__)


def run_head_sweep():
    """Console-script entry point of `csra-head-sweep`."""
    run_program(head_sweep_main, "csra-head-sweep", __name__, train_cli.__name__)


def run_normalization():
    """Console-script entry point of `csra-normalization-ablation`."""
    run_program(
        normalization_main, "csra-normalization-ablation", __name__, train_cli.__name__
    )


def run_pooling():
    """Console-script entry point of `csra-pooling-ablation`."""
    run_program(pooling_main, "csra-pooling-ablation", __name__, train_cli.__name__)


def run_compare_heads():
    """Console-script entry point of `csra-compare-heads`."""
    run_program(compare_heads_main, "csra-compare-heads", __name__, train_cli.__name__)
