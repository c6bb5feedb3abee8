"""Running a model over a batched dataset: the one loop every program uses."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import keras
import numpy as np
import tensorflow as tf

from csra_tf.errors import UserError
from csra_tf.metrics import sigmoid

_SINGLE = "__output__"
"""The key of a `predict` that returns one array rather than a mapping."""


def predict_dataset(
    predict: Callable[[object], object],
    batches: tf.data.Dataset | Iterable,
    verbose: int = 1,
    on_batch: Callable[[int], object] | None = None,
) -> tuple[np.ndarray | dict[str, np.ndarray], np.ndarray]:
    """Runs `predict` on every batch of `(images, targets)`, one pass.

    Args:
        predict: called on each image batch; returns an array-like whose first
            axis is the batch (e.g. `model.predict_on_batch`), or a mapping of
            such outputs (e.g. an exported model's `{"logits",
            "probabilities"}`).
        batches: a batched `tf.data.Dataset` of `(images, targets)`, or any
            iterable of such pairs (NumPy batches).
        verbose: 1 shows a progress bar (for a dataset of known size).
        on_batch: also called with each batch's size (e.g. another progress
            bar's `update`).

    Returns:
        `(outputs, targets)`: the outputs of all batches concatenated, float32
        (a dict of them when `predict` returns a mapping), and the targets.

    Raises:
        UserError: when there is no batch.
    """
    cardinality = (
        int(batches.cardinality()) if isinstance(batches, tf.data.Dataset) else -1
    )
    progress = keras.utils.Progbar(
        cardinality if cardinality > 0 else None,
        verbose=verbose if isinstance(batches, tf.data.Dataset) else 0,
    )
    outputs: dict[str, list] = {}
    targets = []
    for images, batch_targets in batches:
        result = predict(images)
        named = result if isinstance(result, Mapping) else {_SINGLE: result}
        for name, value in named.items():
            array = np.asarray(keras.ops.convert_to_numpy(value), np.float32)
            outputs.setdefault(name, []).append(array)
        targets.append(np.asarray(batch_targets, np.float32))
        progress.add(1)
        if on_batch is not None:
            on_batch(len(targets[-1]))
    if not targets:
        raise UserError("The dataset is empty: nothing to predict.")
    joined = {name: np.concatenate(values) for name, values in outputs.items()}
    return joined.pop(_SINGLE) if _SINGLE in joined else joined, np.concatenate(targets)


def predict_probabilities(
    model: keras.Model, dataset: tf.data.Dataset, verbose: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid probabilities of a logits model over a batched dataset.

    Args:
        model: a classifier returning logits.
        dataset: batched `(images, targets)`.
        verbose: 1 shows a progress bar.

    Returns:
        `(probabilities, targets)`, both float32 `(N, C)`.
    """
    logits, targets = predict_dataset(model.predict_on_batch, dataset, verbose)
    return sigmoid(logits).astype(np.float32), targets
