"""Training-free max pooling on a trained average-pooling classifier.

Zhu & Wu, ICCV 2021, Fig. 1 and Table 1: a classifier whose head is global
average pooling + a fully connected layer `(W, b)` gets better multi-label scores,
without any training, by applying the same classifier at every location `l` of
the feature map and adding a fraction of the max over locations:

    s[l] = x_l W + b,    y = mean_l s[l] + lam * max_l s[l],

followed by the classifier's own activation. With `lam = 0` this is the
original model, because `mean_l (x_l W + b) = (mean_l x_l) W + b`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from csra_tf.metrics import evaluate, sigmoid

OUTPUT_MODES = ("scores", "pooled")
_POOLINGS = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalAveragePooling1D)


@keras.saving.register_keras_serializable(package="csra_tf")
class AvgMaxClassScores(keras.layers.Layer):
    """A linear classifier applied at every location, average + lam * max pooled.

    For features `x_l` (the locations of a map, or tokens) and kernel `W`, bias
    `b`: `s[l] = x_l W + b`, `y = activation(mean_l s[l] + lam * max_l s[l])`.
    Built from a trained `Dense` by `with_max_pooling`, which copies its kernel
    and bias in. Scores are computed in float32.

    Args:
        units: number of classes `C`.
        lam: weight of the max-pooled scores (0 gives average pooling).
        use_bias: whether the classifier has a bias `b`.
        activation: applied to the pooled scores (e.g. `"softmax"` for an
            ImageNet model, None for logits).
        output_mode: `"scores"` returns `activation(y)`, `(B, C)`; `"pooled"`
            returns the two pooled scores before activation, stacked as
            `(B, 2, C)` = `[mean_l s[l], max_l s[l]]`, so many `lam` can be
            tried from one pass over the data.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Input: a feature map `(B, h, w, d)` or tokens `(B, N, d)`.

    Example:
    >>> import numpy as np
    >>> layer = AvgMaxClassScores(units=5, lam=0.2)
    >>> layer(np.ones((2, 7, 7, 16), "float32")).shape
    TensorShape([2, 5])
    """

    def __init__(
        self,
        units: int,
        lam: float = 0.0,
        use_bias: bool = True,
        activation=None,
        output_mode: str = "scores",
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"`units` must be >= 1. Received: units={units}")
        if not math.isfinite(lam) or lam < 0:
            raise ValueError(f"`lam` must be finite and >= 0. Received: lam={lam}")
        if output_mode not in OUTPUT_MODES:
            raise ValueError(
                f"`output_mode` must be one of {OUTPUT_MODES}. "
                f"Received: output_mode={output_mode}"
            )
        self.units = int(units)
        self.lam = float(lam)
        self.use_bias = use_bias
        self.activation = keras.activations.get(activation)
        self.output_mode = output_mode

    def build(self, input_shape):
        if len(input_shape) not in (3, 4) or input_shape[-1] is None:
            raise ValueError(
                "AvgMaxClassScores expects (B, h, w, d) or (B, N, d) with a known "
                f"d. Received: input_shape={input_shape}"
            )
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.units), dtype="float32"
        )
        self.bias = (
            self.add_weight(
                name="bias", shape=(self.units,), initializer="zeros", dtype="float32"
            )
            if self.use_bias
            else None
        )

    def call(self, features):
        features = ops.cast(features, "float32")
        depth = ops.shape(features)[-1]
        locations = ops.reshape(features, (ops.shape(features)[0], -1, depth))
        scores = ops.matmul(locations, self.kernel)
        if self.use_bias:
            scores = scores + self.bias
        average, maximum = ops.mean(scores, axis=1), ops.max(scores, axis=1)
        if self.output_mode == "pooled":
            return ops.stack([average, maximum], axis=1)
        return self.activation(average + self.lam * maximum)

    def compute_output_shape(self, input_shape):
        if self.output_mode == "pooled":
            return (input_shape[0], 2, self.units)
        return (input_shape[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            lam=self.lam,
            use_bias=self.use_bias,
            activation=keras.activations.serialize(self.activation),
            output_mode=self.output_mode,
        )
        return config


def with_max_pooling(model: keras.Model, lam: float) -> keras.Model:
    """Adds training-free max pooling to a global-average-pooling classifier.

    The classifier's head must be `GlobalAveragePooling{1,2}D` (possibly inside
    a nested backbone model), optionally `Dropout`, then the output `Dense`: our
    `build_classifier(..., head="gap")`, a keras-cv `ImageClassifier`, or a
    `keras.applications` model with its top (ResNet, MobileNetV2, EfficientNet).
    The returned model shares the original's layers up to the feature map, and
    scores `activation(mean_l s[l] + lam * max_l s[l])` with
    `s[l] = x_l W + b` from the Dense's kernel `W` and bias `b` (copied into an
    `AvgMaxClassScores` layer, so it saves and loads as `.keras`).

    Args:
        model: the trained classifier.
        lam: weight of the max-pooled scores; 0 reproduces `model`.

    Returns:
        A `keras.Model` with the same inputs and output shape as `model`.

    Example:
    >>> from csra_tf.models import build_classifier
    >>> base = build_classifier("tiny", num_classes=5, head="gap", image_size=32)
    >>> with_max_pooling(base, lam=0.1).output_shape
    (None, 5)
    """
    return _with_head(model, lam=lam, output_mode="scores")


def pooled_scores_model(model: keras.Model) -> keras.Model:
    """The model's average- and max-pooled class scores, before activation.

    Args:
        model: a classifier accepted by `with_max_pooling`.

    Returns:
        A `keras.Model` returning `(B, 2, C)`: `[mean_l s[l], max_l s[l]]`.
    """
    return _with_head(model, lam=0.0, output_mode="pooled")


def head_activation(model: keras.Model):
    """The activation of the classifier's output Dense (`linear` for logits).

    Args:
        model: a classifier accepted by `with_max_pooling`.

    Returns:
        The Keras activation function.
    """
    dense, _ = _locate_head(model)
    return dense.activation


def pooled_class_scores(
    model: keras.Model, dataset: tf.data.Dataset, verbose: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs the backbone once over a dataset and keeps both pooled scores.

    Args:
        model: a classifier accepted by `with_max_pooling`.
        dataset: batched `(images, targets)`.
        verbose: 1 shows a progress bar.

    Returns:
        `(average, maximum, targets)`: float32 `(N, C)` pooled scores before
        the activation, and the targets.
    """
    pooled = pooled_scores_model(model)
    cardinality = int(dataset.cardinality())
    progress = keras.utils.Progbar(
        cardinality if cardinality > 0 else None, verbose=verbose
    )
    scores, targets = [], []
    for images, batch_targets in dataset:
        scores.append(np.asarray(pooled.predict_on_batch(images), np.float32))
        targets.append(np.asarray(batch_targets))
        progress.add(1)
    scores = np.concatenate(scores)
    return scores[:, 0], scores[:, 1], np.concatenate(targets)


def scores_to_probabilities(scores: np.ndarray, activation=None) -> np.ndarray:
    """Turns pooled scores into probabilities for the metrics.

    Args:
        scores: `(N, C)` scores before the head's activation.
        activation: the head's activation; None or linear means the model
            returns logits, which get the sigmoid (multi-label).

    Returns:
        float32 `(N, C)` probabilities.
    """
    activation = keras.activations.get(activation)
    if activation is keras.activations.linear:
        return sigmoid(scores).astype(np.float32)
    out = activation(ops.convert_to_tensor(np.asarray(scores, np.float32)))
    return np.asarray(ops.convert_to_numpy(out), np.float32)


def map_by_lambda(
    average: np.ndarray,
    maximum: np.ndarray,
    targets: np.ndarray,
    lams: Sequence[float],
    activation=None,
) -> dict[float, float]:
    """mAP of `activation(average + lam * maximum)` for every `lam`.

    Args:
        average: `(N, C)` average-pooled scores (from `pooled_class_scores`).
        maximum: `(N, C)` max-pooled scores.
        targets: `(N, C)` targets (1, 0, -1 unknown).
        lams: the values of `lam` to score.
        activation: the head's activation (see `scores_to_probabilities`).

    Returns:
        `{lam: mAP}` in the order of `lams`, mAP as a fraction.
    """
    return {
        float(lam): evaluate(
            scores_to_probabilities(average + lam * maximum, activation), targets
        )["mAP"]
        for lam in lams
    }


def _with_head(model, lam, output_mode):
    dense, features = _locate_head(model)
    layer = AvgMaxClassScores(
        dense.units,
        lam=lam,
        use_bias=dense.use_bias,
        activation=dense.activation,
        output_mode=output_mode,
        name=dense.name,
    )
    outputs = layer(features)
    layer.set_weights([np.asarray(w, np.float32) for w in dense.get_weights()])
    suffix = "avg_max" if output_mode == "scores" else "pooled_scores"
    return keras.Model(_input_structure(model), outputs, name=f"{model.name}_{suffix}")


def _input_structure(model):
    inputs = list(model.inputs)
    return inputs[0] if len(inputs) == 1 else inputs


def _producer(tensor):
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None, []
    operation, node_index, _ = history
    return operation, list(operation._inbound_nodes[node_index].input_tensors)


def _locate_head(model):
    """The output Dense and the feature map (a tensor of `model`'s graph)."""
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1:
        raise ValueError(
            "with_max_pooling needs a built functional model with one output. "
            f"Received: model={model.name}"
        )
    dense, inputs = _producer(outputs[0])
    if not isinstance(dense, keras.layers.Dense):
        raise ValueError(
            "The model's output must come from a Dense layer (global average "
            "pooling + Dense head). Received: output layer="
            f"{getattr(dense, 'name', None)} ({type(dense).__name__})"
        )
    return dense, _feature_map(inputs[0])


def _feature_map(tensor):
    """Walks back from the Dense input to the tensor the average pooling reads."""
    while True:
        operation, inputs = _producer(tensor)
        if isinstance(operation, keras.layers.Dropout):
            tensor = inputs[0]
        elif isinstance(operation, _POOLINGS):
            if operation.keepdims:
                raise ValueError(
                    "Global average pooling with keepdims=True is not supported. "
                    f"Received: layer={operation.name}"
                )
            return inputs[0]
        elif isinstance(operation, keras.Model) and len(operation.outputs) == 1:
            # The pooling is inside a nested model: expose its feature map and
            # call that sub-graph on the tensors the nested model was called on.
            inner = _feature_map(operation.outputs[0])
            extractor = keras.Model(
                _input_structure(operation), inner, name=operation.name
            )
            return extractor(inputs[0] if len(inputs) == 1 else inputs)
        else:
            raise ValueError(
                "Expected GlobalAveragePooling (optionally followed by Dropout) "
                "before the output Dense. Received: layer="
                f"{getattr(operation, 'name', None)} ({type(operation).__name__})"
            )
