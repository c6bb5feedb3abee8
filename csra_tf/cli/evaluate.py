"""Re-evaluates a trained run and prints the paper's table columns (%).

Example:
    csra-eval --workdir=runs/shapes_csra
    csra-eval --workdir=runs/shapes_csra --checkpoint=checkpoints/best.keras
    csra-eval --workdir=runs/shapes_csra --calibrate_thresholds
"""

from __future__ import annotations

import os

from absl import app, flags

from csra_tf.training.evaluate_run import evaluate_run

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A csra-train workdir.", required=True)
flags.DEFINE_string("checkpoint", "model.keras", "Model file, relative to the workdir.")
flags.DEFINE_integer("batch_size", None, "Batch size (default: the run's).")
flags.DEFINE_float("threshold", 0.5, "Probability threshold for P/R/F1.")
flags.DEFINE_boolean(
    "calibrate_thresholds",
    False,
    "Pick each class's F1-maximising threshold on the validation data and save "
    "<workdir>/thresholds.json (used by csra-predict --thresholds).",
)


def main(argv):
    """absl main: evaluates and prints the table."""
    del argv
    table = evaluate_run(
        FLAGS.workdir,
        checkpoint=os.path.join(FLAGS.workdir, FLAGS.checkpoint),
        batch_size=FLAGS.batch_size,
        threshold=FLAGS.threshold,
        calibrate=FLAGS.calibrate_thresholds,
    )
    print(table)


def run():
    """Console-script entry point of `csra-eval`."""
    app.run(main)


if __name__ == "__main__":
    run()
