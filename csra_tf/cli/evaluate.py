"""Re-evaluates a trained run and prints the paper's table columns (%).

Example:
    csra-eval --workdir=runs/shapes_csra
    csra-eval --workdir=runs/shapes_csra --checkpoint=checkpoints/best.keras
    csra-eval --workdir=runs/shapes_csra --calibrate_thresholds
"""

from __future__ import annotations

import os

from absl import flags

from csra_tf.cli.app import assume_frozen_weights, no_arguments, run_program
from csra_tf.cli.config_flags import define_data_flags, flag_overrides
from csra_tf.config import TrainConfig
from csra_tf.evaluation import evaluate_run
from csra_tf.run_folder import DATA_FIELDS, MODEL_FILE

PROGRAM = "csra-eval"

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A csra-train workdir.", required=True)
flags.DEFINE_string("checkpoint", MODEL_FILE, "Model file, relative to the workdir.")
flags.DEFINE_integer("batch_size", None, "Batch size (default: the run's).")
flags.DEFINE_float("threshold", 0.5, "Probability threshold for P/R/F1.")
flags.DEFINE_boolean(
    "calibrate_thresholds",
    False,
    "Pick each class's F1-maximising threshold on the validation data and save "
    "<workdir>/thresholds.json (used by csra-predict --thresholds).",
)
define_data_flags(TrainConfig, DATA_FIELDS, module_name=__name__)


def main(argv):
    """absl main: evaluates and prints the table."""
    no_arguments(argv, PROGRAM)
    table = evaluate_run(
        FLAGS.workdir,
        checkpoint=os.path.join(FLAGS.workdir, FLAGS.checkpoint),
        batch_size=FLAGS.batch_size,
        threshold=FLAGS.threshold,
        calibrate=FLAGS.calibrate_thresholds,
        data_overrides=flag_overrides(DATA_FIELDS),
    )
    print(table)


def run():
    """Console-script entry point of `csra-eval` (an inference-only process)."""
    assume_frozen_weights()
    run_program(main, PROGRAM, __name__)


if __name__ == "__main__":
    run()
