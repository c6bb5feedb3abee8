"""Running a classifier over a dataset and scoring it."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from csra_tf.metrics import sigmoid
from csra_tf.training.checkpoints import atomic_write_json

TABLE_COLUMNS = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1")


def predict_probabilities(
    model: keras.Model, dataset: tf.data.Dataset, verbose: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Runs `model` over a batched `(images, targets)` dataset, one pass.

    Args:
        model: a classifier returning logits.
        dataset: batched `(images, targets)`.
        verbose: 1 shows a progress bar.

    Returns:
        `(probabilities, targets)`, both float32 `(N, C)`.
    """
    cardinality = int(dataset.cardinality())
    progress = keras.utils.Progbar(
        cardinality if cardinality > 0 else None, verbose=verbose
    )
    probs, targets = [], []
    for images, batch_targets in dataset:
        logits = model.predict_on_batch(images)
        probs.append(sigmoid(logits))
        targets.append(np.asarray(batch_targets))
        progress.add(1)
    return np.concatenate(probs).astype(np.float32), np.concatenate(targets)


def metrics_to_json(metrics: dict, class_names: list[str]) -> dict:
    """Turns an `evaluate()` dict into JSON-ready values (AP as a list, NaN -> None).

    Args:
        metrics: the dict returned by `csra_tf.metrics.evaluate`.
        class_names: names for the per-class AP.

    Returns:
        A dict with floats, `AP` as a list and `class_names`.
    """
    out = {k: float(v) for k, v in metrics.items() if k != "AP"}
    out["AP"] = [None if math.isnan(a) else float(a) for a in np.asarray(metrics["AP"])]
    out["class_names"] = list(class_names)
    return out


def write_metrics(
    path: str, metrics: dict, class_names: list[str], extra: dict | None = None
) -> None:
    """Writes `metrics_to_json(metrics, class_names)` (+ `extra` keys) to `path`.

    Args:
        path: output JSON file.
        metrics: the dict returned by `csra_tf.metrics.evaluate`.
        class_names: names for the per-class AP.
        extra: more JSON-ready entries, e.g. counts of skipped bad records.
    """
    atomic_write_json(path, {**metrics_to_json(metrics, class_names), **(extra or {})})


def format_table(metrics: dict) -> str:
    """Formats the paper's table columns as percentages, all labels and top-3.

    Args:
        metrics: the dict returned by `csra_tf.metrics.evaluate`.

    Returns:
        A plain-text table with rows `all` and `top-3`.
    """
    header = f"{'':6s}" + "".join(f"{c:>8s}" for c in TABLE_COLUMNS)
    rows = [header]
    for label, suffix in (("all", ""), ("top-3", "_top3")):
        rows.append(
            f"{label:6s}"
            + "".join(f"{100 * metrics[c + suffix]:8.2f}" for c in TABLE_COLUMNS)
        )
    return "\n".join(rows)
