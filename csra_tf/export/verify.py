"""Verifying exports: their outputs against Keras (max |delta p|, mAP)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from csra_tf.errors import UserError
from csra_tf.metrics import evaluate, sigmoid


def compare(
    reference: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    targets: np.ndarray,
) -> dict[str, float]:
    """Scores an export's outputs against the reference model's.

    mAP ranks by the `logits` output (through a float64 sigmoid): a ranking
    needs their resolution, since float32 probabilities saturate at 1 for
    logits above about 17, which ties scores. `mAP_probabilities` ranks by
    the `probabilities` as they are (for a `.tflite` file, whose one output
    is `logits`, their float32 sigmoid from `TFLiteModel`).

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
