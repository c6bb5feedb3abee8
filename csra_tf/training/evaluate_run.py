"""Re-evaluating the saved model of a training workdir."""

from __future__ import annotations

import os

import keras

from csra_tf.data import build_dataset
from csra_tf.export.thresholds import (
    calibrate_thresholds,
    calibration_summary,
    save_thresholds,
)
from csra_tf.metrics import evaluate
from csra_tf.training.config import TrainConfig
from csra_tf.training.data_sources import load_sources
from csra_tf.training.eval_lib import (
    TABLE_COLUMNS,
    format_table,
    predict_probabilities,
    write_metrics,
)
from csra_tf.training.train_lib import CONFIG_FILE, METRICS_FILE

THRESHOLDS_FILE = "thresholds.json"


def evaluate_run(
    workdir: str,
    checkpoint: str | None = None,
    batch_size: int | None = None,
    threshold: float = 0.5,
    calibrate: bool = False,
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

    Returns:
        The formatted table (percentages) of `csra_tf.metrics.evaluate`, followed
        by the calibration table when `calibrate` is set.
    """
    config_path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(config_path):
        raise ValueError(
            f"No {CONFIG_FILE} in the workdir. Received: workdir={workdir}"
        )
    config = TrainConfig.load(config_path)
    checkpoint = checkpoint or os.path.join(workdir, "model.keras")
    if not os.path.exists(checkpoint):
        raise ValueError(
            f"The model file does not exist. Received: checkpoint={checkpoint}"
        )
    model = keras.saving.load_model(checkpoint, compile=False, safe_mode=True)
    _, val_source = load_sources(config)
    val_data = build_dataset(
        val_source.dataset,
        image_size=config.image_size,
        batch_size=batch_size or config.batch_size,
        training=False,
    )
    probs, targets = predict_probabilities(model, val_data)
    metrics = evaluate(probs, targets, threshold=threshold)
    write_metrics(os.path.join(workdir, METRICS_FILE), metrics, val_source.class_names)
    table = format_table(metrics)
    if calibrate:
        path = os.path.join(workdir, THRESHOLDS_FILE)
        save_thresholds(
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
