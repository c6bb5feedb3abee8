"""Command lines of the ablation studies and of the CSRA-vs-GAP comparison.

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

from collections.abc import Callable, Sequence

from absl import app, flags

from csra_tf import ablations
from csra_tf.ablations.compare import DEFAULT_SEEDS
from csra_tf.ablations.runner import study_base
from csra_tf.cli import train as train_cli

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "seeds",
    [],
    "Seeds to repeat every point with, e.g. 0,1,2 (default: 0 for the ablations, "
    "0,1,2 for compare_heads).",
)
flags.DEFINE_list(
    "lams",
    [f"{lam:g}" for lam in ablations.LAMBDAS],
    "lambda_sweep: the lambdas.",
)
flags.DEFINE_list(
    "head_counts",
    [str(h) for h in ablations.HEAD_COUNTS],
    "head_sweep: the numbers of heads (1, 2, 4, 6, 8).",
)


def parse_list(values: Sequence[str], kind: Callable, name: str) -> list:
    """Converts a list flag's strings.

    Args:
        values: the flag's value.
        kind: `int` or `float`.
        name: the flag's name, for the error message.

    Returns:
        The converted values.
    """
    try:
        return [kind(v) for v in values]
    except ValueError as error:
        raise app.UsageError(
            f"--{name} takes comma-separated {kind.__name__}s. Received: {values}"
        ) from error


def _seeds(default: Sequence[int]) -> list[int]:
    return parse_list(FLAGS.seeds, int, "seeds") if FLAGS.seeds else list(default)


def _print_study(study: Callable, **kwargs) -> None:
    """Runs an ablation on the flags' base config and prints its summary.

    Args:
        study: one of `csra_tf.ablations`' studies (`lambda_sweep`, ...).
        **kwargs: the study's own arguments besides the config and seeds.
    """
    summary = study(train_cli.config_from_flags(), seeds=_seeds([0]), **kwargs)
    print(ablations.format_summary(summary))


def lambda_sweep_main(argv):
    """absl main: the lambda sweep (Fig. 5); prints the summary table.

    Args:
        argv: leftover command-line arguments (none expected).
    """
    del argv
    _print_study(ablations.lambda_sweep, lams=parse_list(FLAGS.lams, float, "lams"))


def head_sweep_main(argv):
    """absl main: the number of heads (Table 7); prints the summary table.

    Args:
        argv: leftover command-line arguments (none expected).
    """
    del argv
    _print_study(
        ablations.head_sweep,
        head_counts=parse_list(FLAGS.head_counts, int, "head_counts"),
    )


def normalization_main(argv):
    """absl main: classifier normalisation on / off (Table 8); prints the summary.

    Args:
        argv: leftover command-line arguments (none expected).
    """
    del argv
    _print_study(ablations.normalization_ablation)


def pooling_main(argv):
    """absl main: average vs spatial vs CSRA (Table 6); prints the summary table.

    Args:
        argv: leftover command-line arguments (none expected).
    """
    del argv
    _print_study(ablations.pooling_ablation)


def compare_heads_main(argv):
    """absl main: CSRA (`--num_heads`, `--lam`) vs GAP over paired seeds.

    Args:
        argv: leftover command-line arguments (none expected).
    """
    del argv
    config = train_cli.config_from_flags()
    result = ablations.compare_heads(
        config,
        seeds=_seeds(DEFAULT_SEEDS),
        num_heads=config.num_heads,
        lam=config.lam,
    )
    print(
        ablations.comparison_markdown(
            study_base(config), result, config.num_heads, config.lam
        )
    )


def run_lambda_sweep():
    """Console-script entry point of `csra-lambda-sweep`."""
    app.run(lambda_sweep_main)


def run_head_sweep():
    """Console-script entry point of `csra-head-sweep`."""
    app.run(head_sweep_main)


def run_normalization():
    """Console-script entry point of `csra-normalization-ablation`."""
    app.run(normalization_main)


def run_pooling():
    """Console-script entry point of `csra-pooling-ablation`."""
    app.run(pooling_main)


def run_compare_heads():
    """Console-script entry point of `csra-compare-heads`."""
    app.run(compare_heads_main)
