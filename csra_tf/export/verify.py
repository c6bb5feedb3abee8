"""Verifying exports: their outputs against Keras (max |delta p|, mAP)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from csra_tf.errors import UserError
from csra_tf.metrics import evaluate, sigmoid


def collect_outputs(
    predict: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    on_batch: Callable[[int], object] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Runs `predict` over `(images, targets)` batches.

    Args:
        predict: maps float pixels `(B, S, S, 3)` to named outputs, such as
            `{"logits", "probabilities"}`, each `(B, C)`.
        batches: `(images, targets)` pairs (NumPy or tensors).
        on_batch: called with each batch's size (for progress bars).

    Returns:
        `(outputs, targets)`: each output concatenated over the batches, and
        the targets, float32 `(N, C)`.
    """
    outputs, targets = {}, []
    for images, batch_targets in batches:
        images = np.asarray(images, np.float32)
        for name, value in predict(images).items():
            outputs.setdefault(name, []).append(np.asarray(value, np.float32))
        targets.append(np.asarray(batch_targets, np.float32))
        if on_batch is not None:
            on_batch(len(images))
    if not targets:
        raise UserError("No images to verify on: the evaluation data is empty.")
    return {k: np.concatenate(v) for k, v in outputs.items()}, np.concatenate(targets)


def compare(
    reference: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    targets: np.ndarray,
) -> dict[str, float]:
    """Scores an export's outputs against the reference model's.

    mAP ranks by the `logits` output (through a float64 sigmoid): a ranking
    needs their resolution, since a full-integer model's `probabilities`
    come in steps of 1/256 (and float32 ones saturate at 1 for logits above
    about 17), which ties scores. `mAP_probabilities` ranks by the
    `probabilities` output as it is.

    Args:
        reference: the Keras model's `logits` and `probabilities`, `(N, C)`.
        outputs: the export's `logits` and `probabilities`, `(N, C)`.
        targets: targets `(N, C)` in {1, 0, -1}.

    Returns:
        `max_abs_delta_probability` (max over all entries of |probabilities -
        reference probabilities|), `mAP` and `mAP_probabilities` (in [0, 1],
        `csra_tf.metrics.evaluate`).
    """
    probs = np.asarray(outputs["probabilities"], np.float64)
    reference_probs = np.asarray(reference["probabilities"], np.float64)
    if reference_probs.shape != probs.shape:
        raise UserError(
            "Reference and export probabilities differ in shape. Received: "
            f"reference.shape={reference_probs.shape}, probs.shape={probs.shape}"
        )
    ranking = sigmoid(outputs["logits"])
    return {
        "max_abs_delta_probability": float(np.max(np.abs(probs - reference_probs))),
        "mAP": float(evaluate(ranking, targets)["mAP"]),
        "mAP_probabilities": float(evaluate(probs, targets)["mAP"]),
    }
