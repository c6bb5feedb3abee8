"""Training-free max pooling on a trained GAP run (paper Fig. 1, Table 1).

Adds `lam * max_l s[l]` to the average-pooled class scores of a `--head=gap`
run without retraining, prints a Table-1 row (baseline mAP, best lambda on the
grid and its mAP, the paper's fixed lambda: 0.02 for ResNets, 0.2 otherwise)
and writes `<workdir>/training_free.csv` and `<workdir>/training_free.png`.
The backbone runs once; all lambdas are scored from the pooled scores.

Example:
    csra-train --workdir=runs/shapes_gap --head=gap
    python experiments/training_free.py --workdir=runs/shapes_gap \
        --lams=0.02,0.05,0.1,0.2,0.3,0.5,0.8,1.0
"""

from __future__ import annotations

import os

from absl import app, flags

from csra_tf.training.training_free_run import (
    DEFAULT_LAMBDAS,
    format_row,
    training_free_run,
)

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A finished --head=gap run.", required=True)
flags.DEFINE_string("checkpoint", "model.keras", "Model file, relative to the workdir.")
flags.DEFINE_list(
    "lams", [f"{lam:g}" for lam in DEFAULT_LAMBDAS], "Lambda grid (comma-separated)."
)
flags.DEFINE_float(
    "fixed_lam", None, "Fixed lambda (default: 0.02 for ResNets, 0.2 otherwise)."
)
flags.DEFINE_integer("batch_size", None, "Batch size (default: the run's).")


def main(argv):
    """absl main: scores the lambda grid and prints the Table-1 row."""
    del argv
    result = training_free_run(
        FLAGS.workdir,
        lams=[float(lam) for lam in FLAGS.lams],
        fixed_lam=FLAGS.fixed_lam,
        checkpoint=os.path.join(FLAGS.workdir, FLAGS.checkpoint),
        batch_size=FLAGS.batch_size,
    )
    print(format_row(result))


if __name__ == "__main__":
    app.run(main)
