r"""Training-free max pooling on a trained GAP run (paper Fig. 1, Table 1).

Adds `lam * max_l s[l]` to the average-pooled class scores of a `--head=gap`
run without retraining, prints a Table-1 row (baseline mAP, best lambda on the
grid and its mAP, the paper's fixed lambda: 0.02 for ResNets, 0.2 otherwise)
and writes `<workdir>/training_free.csv` and `<workdir>/training_free.png`.
The backbone runs once; all lambdas are scored from the pooled scores.

Example:
    csra-train --workdir=runs/shapes_gap --head=gap
    csra-training-free --workdir=runs/shapes_gap \
        --lams=0.02,0.05,0.1,0.2,0.3,0.5,0.8,1.0
"""

from __future__ import annotations

import os

from absl import flags

from csra_tf.cli.app import no_arguments, run_program
from csra_tf.cli.config_flags import parse_list
from csra_tf.run_folder import MODEL_FILE
from csra_tf.studies.training_free_table import (
    DEFAULT_LAMBDAS,
    format_row,
    training_free_run,
)

PROGRAM = "csra-training-free"
FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A finished --head=gap run.", required=True)
flags.DEFINE_string("checkpoint", MODEL_FILE, "Model file, relative to the workdir.")
flags.DEFINE_list(
    "lams", [f"{lam:g}" for lam in DEFAULT_LAMBDAS], "Lambda grid (comma-separated)."
)
flags.DEFINE_float(
    "fixed_lam", None, "Fixed lambda (default: 0.02 for ResNets, 0.2 otherwise)."
)
flags.DEFINE_integer("batch_size", None, "Batch size (default: the run's).")


def main(argv):
    """absl main: scores the lambda grid and prints the Table-1 row."""
    no_arguments(argv, PROGRAM)
    result = training_free_run(
        FLAGS.workdir,
        lams=parse_list(FLAGS.lams, float, "lams"),
        fixed_lam=FLAGS.fixed_lam,
        checkpoint=os.path.join(FLAGS.workdir, FLAGS.checkpoint),
        batch_size=FLAGS.batch_size,
    )
    print(format_row(result))


def run():
    """Console-script entry point of `csra-training-free`."""
    run_program(main, PROGRAM, __name__)


if __name__ == "__main__":
    run()
