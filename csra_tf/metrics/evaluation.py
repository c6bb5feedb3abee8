"""Multi-label evaluation: per-class AP, mAP, precision/recall/F1.

The definitions are in docs/concepts.md ("Metrics"). Targets follow the label
encoding (docs/concepts.md, "Labels"): `1` present, `0` absent, `-1` unknown.
Unknown entries are left out of every count.
"""

from __future__ import annotations

import warnings

import numpy as np

from csra_tf.errors import UserError

_UNKNOWN = -1.0
_TOP_K = 3
_METRIC_NAMES = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1")


def sigmoid(logits) -> np.ndarray:
    """Probabilities from logits, computed in float64.

    Args:
        logits: an array of any shape.

    Returns:
        float64 `1 / (1 + exp(-logits))`, same shape.
    """
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))


def _validate(probs, targets, probs_name: str = "probs") -> tuple:
    """Converts inputs to float64 arrays and checks them.

    Args:
        probs: Array-like `(N, C)` of scores.
        targets: Array-like `(N, C)` with entries in {-1, 0, 1}.
        probs_name: Name of the score argument, used in error messages.

    Returns:
        A tuple `(probs, targets)` of float64 NumPy arrays.
    """
    probs = np.asarray(probs)
    targets = np.asarray(targets)
    if probs.ndim != 2:
        raise UserError(
            f"`{probs_name}` must be 2-D (num_examples, num_classes). "
            f"Received: {probs_name}.shape={probs.shape}"
        )
    if targets.shape != probs.shape:
        raise UserError(
            f"`targets` must have the same shape as `{probs_name}` "
            f"{probs.shape}. Received: targets.shape={targets.shape}"
        )
    if probs.shape[0] == 0 or probs.shape[1] == 0:
        raise UserError(
            "Need at least one example and one class. "
            f"Received: {probs_name}.shape={probs.shape}"
        )
    try:
        probs = probs.astype(np.float64)
        targets = targets.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise UserError(
            f"`{probs_name}` and `targets` must be numeric. "
            f"Received: {probs_name}.dtype={probs.dtype}, "
            f"targets.dtype={targets.dtype}"
        ) from e
    if not np.all(np.isfinite(probs)):
        bad = np.argwhere(~np.isfinite(probs))[:5].tolist()
        raise UserError(
            f"`{probs_name}` must be finite. Received non-finite values at "
            f"(example, class) {bad}"
        )
    allowed = (targets == 1) | (targets == 0) | (targets == _UNKNOWN)
    if not np.all(allowed):
        bad_values = np.unique(targets[~allowed])[:5].tolist()
        raise UserError(
            "`targets` entries must be 1 (present), 0 (absent) or -1 "
            f"(unknown). Received: targets values {bad_values}"
        )
    return probs, targets


def _class_average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """AP of one class from its valid examples.

    Tied scores form one threshold, as in `sklearn.metrics.average_precision_score`:
    every positive of a tie group gets the precision at the end of the group.

    Args:
        scores: `(n,)` float scores of the valid examples.
        positive: `(n,)` bool, whether each example is a positive.

    Returns:
        The AP, or NaN when there is no positive.
    """
    num_positive = int(positive.sum())
    if num_positive == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    true_positives = np.cumsum(positive[order])
    ranks = np.arange(1, scores.size + 1)
    # The last index of each group of equal scores is a threshold.
    group_end = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    tp_at_end = true_positives[group_end]
    precision_at_end = tp_at_end / ranks[group_end]
    new_positives = np.diff(tp_at_end, prepend=0)
    return float(np.sum(new_positives * precision_at_end) / num_positive)


def _average_precision(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-class AP of validated arrays (NaN where a class has no positive)."""
    ap = np.empty(scores.shape[1], dtype=np.float64)
    for c in range(scores.shape[1]):
        valid = targets[:, c] != _UNKNOWN
        ap[c] = _class_average_precision(scores[valid, c], targets[valid, c] == 1)
    return ap


def average_precision(scores, targets) -> np.ndarray:
    """Computes the average precision of every class.

    A class's valid examples (target not `-1`) are ranked by score, highest
    first; its AP is the mean, over its positives, of the precision at the
    positive's rank. Tied scores count as one threshold, so the result equals
    `sklearn.metrics.average_precision_score` on the valid examples.

    Args:
        scores: Array-like `(N, C)` of finite scores (probabilities or logits;
            only their order matters).
        targets: Array-like `(N, C)`, `1` present, `0` absent, `-1` unknown.

    Returns:
        A float64 array `(C,)`; NaN for classes without a positive.

    Example:

    >>> average_precision([[0.9, 0.1], [0.4, 0.8]], [[1, 0], [0, -1]])
    array([ 1., nan])
    """
    scores, targets = _validate(scores, targets, probs_name="scores")
    return _average_precision(scores, targets)


def _safe_divide(numerator: float, denominator: float) -> float:
    """Returns `numerator / denominator`, or 0 when the denominator is 0."""
    return float(numerator / denominator) if denominator > 0 else 0.0


def _f1(precision: float, recall: float) -> float:
    """Harmonic mean of precision and recall (0 when both are 0)."""
    return _safe_divide(2.0 * precision * recall, precision + recall)


def _scores(
    probs: np.ndarray, targets: np.ndarray, threshold: float, has_positive: np.ndarray
) -> dict:
    """mAP and precision/recall/F1 of validated arrays.

    Args:
        probs: `(N, C)` float64 probabilities.
        targets: `(N, C)` float64 targets in {-1, 0, 1}.
        threshold: Probabilities `>= threshold` are predicted present.
        has_positive: `(C,)` bool, the classes that the means and sums run over.

    Returns:
        A dict with the keys `mAP, CP, CR, CF1, OP, OR, OF1` and `AP`.
    """
    ap = _average_precision(probs, targets)
    return {
        "mAP": float(np.mean(ap[has_positive])),
        **_precision_recall(probs, targets, threshold, has_positive),
        "AP": ap,
    }


def _precision_recall(
    probs: np.ndarray, targets: np.ndarray, threshold, has_positive: np.ndarray
) -> dict:
    """CP, CR, CF1, OP, OR, OF1 of validated arrays.

    Args:
        probs: `(N, C)` float64 probabilities.
        targets: `(N, C)` float64 targets in {-1, 0, 1}.
        threshold: a number, or an array broadcasting to `(N, C)`.
        has_positive: `(C,)` bool, the classes the per-class means (CP, CR) run
            over; the overall sums (OP, OR) run over every class, so that the
            predictions of a class without positives count as false positives.

    Returns:
        A dict of Python floats.
    """
    valid = targets != _UNKNOWN
    predicted = (probs >= threshold) & valid
    ground_truth = targets == 1
    tp = np.sum(predicted & ground_truth, axis=0)
    n_pred = np.sum(predicted, axis=0)
    n_gt = np.sum(ground_truth, axis=0)

    cp = float(np.mean(tp[has_positive] / np.maximum(n_pred[has_positive], 1)))
    cr = float(np.mean(tp[has_positive] / n_gt[has_positive]))
    op = _safe_divide(tp.sum(), n_pred.sum())
    o_r = _safe_divide(tp.sum(), n_gt.sum())
    return {
        "CP": cp,
        "CR": cr,
        "CF1": _f1(cp, cr),
        "OP": op,
        "OR": o_r,
        "OF1": _f1(op, o_r),
    }


def precision_recall(probs, targets, thresholds=0.5) -> dict[str, float]:
    """CP, CR, CF1, OP, OR, OF1 as in `evaluate`, with any thresholds.

    Args:
        probs: Array-like `(N, C)` of finite probabilities.
        targets: Array-like `(N, C)`, `1` present, `0` absent, `-1` unknown.
        thresholds: one threshold, one per class `(C,)`, or one per entry
            `(N, C)`; `prob >= threshold` predicts the class.

    Returns:
        A dict of Python floats `CP, CR, CF1, OP, OR, OF1` in [0, 1].
    """
    probs, targets = _validate(probs, targets)
    try:
        thresholds = np.broadcast_to(np.asarray(thresholds, np.float64), probs.shape)
    except ValueError as error:
        raise UserError(
            f"`thresholds` must broadcast to {probs.shape}. Received: "
            f"thresholds.shape={np.shape(thresholds)}"
        ) from error
    has_positive = np.any(targets == 1, axis=0)
    if not has_positive.any():
        raise UserError(
            "No class has a positive example. "
            f"Received: targets of shape {targets.shape} without any 1"
        )
    return _precision_recall(probs, targets, thresholds, has_positive)


def _keep_top_k(probs: np.ndarray, k: int) -> np.ndarray:
    """Keeps each row's `k` highest values and sets the others to 0.

    Ties are broken towards the lower class index.
    """
    if probs.shape[1] <= k:
        return probs.copy()
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    kept = np.zeros_like(probs)
    np.put_along_axis(kept, top, np.take_along_axis(probs, top, axis=1), axis=1)
    return kept


def evaluate(probs, targets, threshold: float = 0.5) -> dict:
    """Computes the multi-label metrics (docs/concepts.md, "Metrics").

    Entries whose target is `-1` (unknown) are left out of AP and of the
    precision/recall counts. Per class: `tp`, `n_pred` (examples with
    `prob >= threshold`) and `n_gt` (positives). Over the classes with at least
    one positive:

    - `mAP`: mean of the per-class AP (see `average_precision`).
    - `CP = mean_c tp / max(n_pred, 1)`, `CR = mean_c tp / n_gt`,
      `CF1 = 2 CP CR / (CP + CR)`.

    Over every class (a prediction of a class without positives is a false
    positive, as the metric's definition and the authors' code count it):

    - `OP = sum tp / sum n_pred`, `OR = sum tp / sum n_gt`,
      `OF1 = 2 OP OR / (OP + OR)` (each 0 when its denominator is 0).

    The `_top3` variants keep the 3 highest probabilities of each image, set the
    others to 0 and compute all of the above again. Classes without a positive
    get AP = NaN and a warning; they never make mAP NaN.

    Args:
        probs: Array-like `(N, C)` of finite probabilities.
        targets: Array-like `(N, C)`, `1` present, `0` absent, `-1` unknown.
        threshold: Probabilities `>= threshold` count as predicted present.

    Returns:
        A dict with the Python floats `mAP, CP, CR, CF1, OP, OR, OF1`, the same
        keys with the suffix `_top3`, and `AP`, a float64 array `(C,)`.

    Raises:
        ValueError: If the inputs are malformed or no class has a positive.

    Example:

    >>> probs = [[0.9, 0.2, 0.6], [0.3, 0.7, 0.1]]
    >>> targets = [[1, 0, 1], [0, 1, -1]]
    >>> evaluate(probs, targets)["mAP"]
    1.0
    """
    probs, targets = _validate(probs, targets)
    try:
        threshold = float(threshold)
    except (TypeError, ValueError) as e:
        raise UserError(
            f"`threshold` must be a number. Received: threshold={threshold!r}"
        ) from e
    if not np.isfinite(threshold):
        raise UserError(f"`threshold` must be finite. Received: threshold={threshold}")

    has_positive = np.any(targets == 1, axis=0)
    if not has_positive.any():
        raise UserError(
            "No class has a positive example, so mAP is undefined. "
            f"Received: targets of shape {targets.shape} without any 1"
        )
    if not has_positive.all():
        missing = np.flatnonzero(~has_positive).tolist()
        warnings.warn(
            f"Classes {missing} have no positive example: their AP is NaN and "
            "they are left out of mAP, CP, CR, OP and OR.",
            stacklevel=2,
        )

    results = _scores(probs, targets, threshold, has_positive)
    top3 = _scores(_keep_top_k(probs, _TOP_K), targets, threshold, has_positive)
    metrics = {name: results[name] for name in _METRIC_NAMES}
    metrics.update({f"{name}_top3": top3[name] for name in _METRIC_NAMES})
    metrics["AP"] = results["AP"]
    return metrics
