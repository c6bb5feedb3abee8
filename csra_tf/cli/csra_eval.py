"""Re-evaluates a trained run and prints the paper's table columns (%).

Example:
    csra-eval --workdir=runs/shapes_csra
    csra-eval --workdir=runs/shapes_csra --checkpoint=checkpoints/best.keras
    csra-eval --workdir=runs/shapes_csra --calibrate_thresholds
"""

from __future__ import annotations

import os

from absl import flags

from csra_tf import run_folder
from csra_tf.acceleration import accelerate
from csra_tf.cli.app import assume_frozen_weights, no_arguments, run_program
from csra_tf.cli.config_flags import define_data_flags, flag_overrides
from csra_tf.config import TrainConfig
from csra_tf.metrics import evaluate
from csra_tf.metrics.table import TABLE_COLUMNS, format_table
from csra_tf.metrics.thresholds import calibrate_thresholds, calibration_summary
from csra_tf.models import predict_probabilities
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


def evaluate_run(
    workdir: str,
    checkpoint: str | None = None,
    batch_size: int | None = None,
    threshold: float = 0.5,
    calibrate: bool = False,
    data_overrides: dict | None = None,
) -> str:
    """Evaluates a run's model on its validation data and rewrites metrics.json.

    Args:
        workdir: a `csra-train` workdir (holds config.json and model.keras).
        checkpoint: model file; default `<workdir>/model.keras`.
        batch_size: evaluation batch size; default the run's.
        threshold: probability threshold for the P/R/F1 columns.
        calibrate: also choose each class's F1-maximising threshold on the
            validation data, save them to `<workdir>/thresholds.json` and report
            CP/CR/CF1/OP/OR/OF1 at 0.5, calibrated (in-sample) and calibrated
            with two-fold cross-fitting (an honest estimate for unseen data).
        data_overrides: other data for the run (`run_folder.DATA_FIELDS`),
            e.g. `{"dataset": "voc2007", "data_dir": ...}` for an imported model.

    Returns:
        The formatted table (percentages) of `csra_tf.metrics.evaluate`, followed
        by the calibration table when `calibrate` is set.
    """
    run = run_folder.load_run(workdir, checkpoint, data_overrides)
    config, val_source = run.config, run.val_source
    probs, targets = predict_probabilities(
        accelerate(run.model, for_training=False), run.val_batches(batch_size)
    )
    metrics = evaluate(probs, targets, threshold=threshold)
    run_folder.write_metrics(workdir, metrics, val_source.class_names)
    table = format_table(metrics)
    if calibrate:
        path = os.path.join(workdir, run_folder.THRESHOLDS_FILE)
        run_folder.save_thresholds(
            path, calibrate_thresholds(probs, targets), val_source.class_names
        )
        table += f"\n\nPer-class thresholds saved to {path}\n"
        table += _format_calibration(
            calibration_summary(probs, targets, seed=config.seed)
        )
    return table


def _format_calibration(summary: dict[str, dict]) -> str:
    columns = TABLE_COLUMNS[1:]
    rows = [f"{'thresholds':24s}" + "".join(f"{c:>8s}" for c in columns)]
    for name, values in summary.items():
        rows.append(f"{name:24s}" + "".join(f"{100 * values[c]:8.2f}" for c in columns))
    return "\n".join(rows)


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
