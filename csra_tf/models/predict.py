"""Running a model over a batched dataset: the one loop every program uses."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from csra_tf.errors import UserError
from csra_tf.metrics import sigmoid


def predict_dataset(
    predict: Callable[[tf.Tensor], object],
    dataset: tf.data.Dataset,
    verbose: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Runs `predict` on every batch of an `(images, targets)` dataset, one pass.

    Args:
        predict: called on each image batch; returns an array-like whose first
            axis is the batch (e.g. `model.predict_on_batch`).
        dataset: batched `(images, targets)`.
        verbose: 1 shows a progress bar.

    Returns:
        `(outputs, targets)`: the outputs of all batches concatenated (float32)
        and the targets.
    """
    cardinality = int(dataset.cardinality())
    progress = keras.utils.Progbar(
        cardinality if cardinality > 0 else None, verbose=verbose
    )
    outputs, targets = [], []
    for images, batch_targets in dataset:
        outputs.append(np.asarray(keras.ops.convert_to_numpy(predict(images))))
        targets.append(np.asarray(batch_targets))
        progress.add(1)
    if not outputs:
        raise UserError("The dataset is empty: nothing to predict.")
    return np.concatenate(outputs).astype(np.float32), np.concatenate(targets)


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
