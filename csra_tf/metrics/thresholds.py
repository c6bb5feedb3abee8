"""Per-class decision thresholds: F1-maximising calibration and its metrics.

A class's threshold is chosen on validation data to maximise that class's F1
(`prob >= threshold` predicts the class); `csra-predict --thresholds` applies
them (the file is written by `csra_tf.run_folder.save_thresholds`). Entries
with target `-1` (unknown) are ignored, as in the metrics.
"""

from __future__ import annotations

import math

import numpy as np

from csra_tf.errors import UserError
from csra_tf.metrics.evaluation import precision_recall

_UNKNOWN = -1


def calibrate_thresholds(probs, targets, default: float = 0.5) -> np.ndarray:
    """Each class's F1-maximising threshold.

    For every class, the valid entries (target != -1) are ranked by
    probability and every cut between two distinct probabilities is tried; the
    threshold is placed midway between the lowest probability kept and the next
    lower one (or at the lowest probability when all are kept), so it predicts
    exactly the chosen set on the calibration data. Ties in F1 go to the higher
    threshold. Classes without a positive get `default`.

    Args:
        probs: probabilities `(N, C)`.
        targets: targets `(N, C)` in {1, 0, -1}.
        default: threshold of classes without a positive example.

    Returns:
        float64 thresholds `(C,)`.

    Example:
    >>> calibrate_thresholds([[0.9], [0.4], [0.2]], [[1], [1], [0]])
    array([0.3])
    """
    probs, targets = _validate(probs, targets)
    if not math.isfinite(default):
        raise UserError(f"`default` must be finite. Received: default={default}")
    thresholds = np.full(probs.shape[1], float(default))
    for c in range(probs.shape[1]):
        valid = targets[:, c] != _UNKNOWN
        scores = probs[valid, c]
        positive = targets[valid, c] == 1
        num_positive = int(positive.sum())
        if num_positive == 0:
            continue
        order = np.argsort(-scores, kind="stable")
        scores, positive = scores[order], positive[order]
        # Cut after the last index of each group of equal scores.
        last = np.flatnonzero(np.append(scores[1:] != scores[:-1], True))
        tp = np.cumsum(positive)[last]
        f1 = 2.0 * tp / (last + 1 + num_positive)
        best = int(np.argmax(f1))
        kept = scores[last[best]]
        if best + 1 < len(last):
            below = scores[last[best + 1]]
            middle = (kept + below) / 2.0
            thresholds[c] = middle if below < middle <= kept else kept
        else:
            thresholds[c] = kept
    return thresholds


def threshold_metrics(probs, targets, thresholds) -> dict[str, float]:
    """CP, CR, CF1, OP, OR, OF1 with a global or per-class threshold.

    The definitions of `csra_tf.metrics.evaluate` (docs/concepts.md, "Metrics"), with
    `prob >= thresholds[c]` predicting class `c`: per class `tp`, `n_pred` (0
    counted as 1 for CP) and `n_gt`, over the classes with a positive.

    Args:
        probs: probabilities `(N, C)`.
        targets: targets `(N, C)` in {1, 0, -1}.
        thresholds: one threshold, one per class `(C,)`, or one per entry
            `(N, C)`.

    Returns:
        A dict of Python floats `CP, CR, CF1, OP, OR, OF1` in [0, 1].
    """
    return precision_recall(probs, targets, thresholds)


def calibration_summary(probs, targets, seed: int = 0) -> dict[str, dict]:
    """CP/CR/CF1/OP/OR/OF1 at 0.5 and with calibrated per-class thresholds.

    Thresholds calibrated and scored on the same images flatter themselves, so
    besides that in-sample figure the summary gives a two-fold cross-fitted one:
    the images are split in two random halves, each half is scored with the
    thresholds calibrated on the other, and the metrics are computed over all
    images. Report the cross-fitted figure as the expected gain.

    Args:
        probs: probabilities `(N, C)` of validation images.
        targets: targets `(N, C)` in {1, 0, -1}.
        seed: seed of the split into halves.

    Returns:
        `{"threshold_0.5": metrics, "calibrated_in_sample": metrics,
        "calibrated_cross_fitted": metrics}`, each from `threshold_metrics`.
    """
    probs, targets = _validate(probs, targets)
    if len(probs) < 2:
        raise UserError(
            "Cross-fitting needs at least 2 images. "
            f"Received: probs.shape={probs.shape}"
        )
    halves = np.array_split(np.random.default_rng(seed).permutation(len(probs)), 2)
    per_entry = np.empty_like(probs)
    for scored, calibrated in ((halves[0], halves[1]), (halves[1], halves[0])):
        per_entry[scored] = calibrate_thresholds(probs[calibrated], targets[calibrated])
    return {
        "threshold_0.5": threshold_metrics(probs, targets, 0.5),
        "calibrated_in_sample": threshold_metrics(
            probs, targets, calibrate_thresholds(probs, targets)
        ),
        "calibrated_cross_fitted": threshold_metrics(probs, targets, per_entry),
    }


def _validate(probs, targets) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, np.float64)
    targets = np.asarray(targets, np.float64)
    if probs.ndim != 2 or probs.shape != targets.shape or probs.shape[0] == 0:
        raise UserError(
            "`probs` and `targets` must be non-empty (N, C) arrays of one shape. "
            f"Received: probs.shape={probs.shape}, targets.shape={targets.shape}"
        )
    if not np.all(np.isfinite(probs)):
        raise UserError("`probs` must be finite. Received: probs with NaN or inf")
    if not np.all(np.isin(targets, (-1, 0, 1))):
        raise UserError(
            "`targets` must be in {1, 0, -1}. Received: values "
            f"{sorted(set(np.unique(targets).tolist()) - {-1.0, 0.0, 1.0})[:5]}"
        )
    return probs, targets
