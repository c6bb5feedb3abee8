"""Inference copies of classifiers with BatchNormalization folded into convolutions.

In inference a BatchNormalization after a convolution is an affine map per
output channel, `y = (x - mean) * gamma / sqrt(var + eps) + beta`, so it folds
into the convolution: kernel columns scaled by `gamma / sqrt(var + eps)` and a
bias `beta - mean * gamma / sqrt(var + eps)`. The folded graph is what
TensorFlow's optimiser fuses best on CPU: convolution, bias, the residual
addition and ReLU become one oneDNN op, where an unfolded ResNet keeps the
addition and activation as separate passes over large feature maps. ResNet-101
inference at 448 px runs about a tenth faster (docs/benchmarks.md).

`fold_batch_norm(model)` returns such a copy; it shares every other layer with
the original (no weights are copied) and holds a snapshot of the folded
weights, so it is made again after the original trains. `accelerate(model,
for_training=False)` makes it for the SavedModel export, `csra-eval`,
`csra-predict` on `.keras` models and the side-by-side benchmark. Finding the
pairs reads how often each layer was called and read
(`keras_internals.FOLDING_NAMES`), checked before each fold.
"""

from __future__ import annotations

import keras
import numpy as np

from csra_tf.acceleration import keras_internals
from csra_tf.models import CSRAClassifier


@keras.saving.register_keras_serializable(package="csra_tf")
class FoldedBatchNormalization(keras.layers.Layer):
    """The place of a BatchNormalization folded into the convolution before it.

    Passes its input through unchanged: the normalisation now lives in that
    convolution's kernel and bias (see `fold_batch_norm`). It keeps the
    folded layer's name so the graph reads as before.

    Args:
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def call(self, inputs, training=None, mask=None):
        """Returns `inputs` unchanged.

        Args:
            inputs: the convolution's (already normalised) output.
            training: ignored (the fold is for inference).
            mask: ignored.

        Returns:
            `inputs`.
        """
        del training, mask
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config()


def _foldable_pairs(model: keras.Model) -> dict[str, keras.layers.BatchNormalization]:
    """Conv2D name -> the BatchNormalization that alone consumes its output."""
    graph_outputs = keras.tree.flatten(getattr(model, "outputs", None) or [])
    outputs = {id(tensor) for tensor in graph_outputs}
    convolutions = {
        id(layer.output): layer
        for layer in model.layers
        if type(layer) is keras.layers.Conv2D
        and layer.data_format == "channels_last"
        and layer.activation is keras.activations.linear
        and len(layer._inbound_nodes) == 1
        and len(layer._outbound_nodes) == 1
        and id(layer.output) not in outputs
    }
    pairs = {}
    for layer in model.layers:
        if (
            type(layer) is keras.layers.BatchNormalization
            and layer.axis in (-1, 3)
            and len(layer._inbound_nodes) == 1
            and id(layer.input) in convolutions
        ):
            pairs[convolutions[id(layer.input)].name] = layer
    return pairs


def _folded_conv(conv: keras.layers.Conv2D, bn: keras.layers.BatchNormalization):
    """A Conv2D with bias computing `bn(conv(x))` in inference."""
    gamma = np.asarray(bn.gamma, np.float64) if bn.scale else 1.0
    beta = np.asarray(bn.beta, np.float64) if bn.center else 0.0
    mean = np.asarray(bn.moving_mean, np.float64)
    variance = np.asarray(bn.moving_variance, np.float64)
    scale = gamma / np.sqrt(variance + bn.epsilon)
    kernel = np.asarray(conv.kernel, np.float64) * scale
    bias = beta - mean * scale
    if conv.use_bias:
        bias = bias + np.asarray(conv.bias, np.float64) * scale
    folded = keras.layers.Conv2D.from_config({**conv.get_config(), "use_bias": True})
    folded.build(conv.input.shape)
    folded.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return folded


def _fold_functional(model: keras.Model) -> tuple[keras.Model, int]:
    """A functional model with its foldable pairs folded, and their number."""
    absent = keras_internals.missing_names(keras_internals.FOLDING_NAMES, model)
    if absent:
        keras_internals.warn_off(
            "BatchNorm folding",
            keras_internals.describe_missing(absent),
            "Inference runs the model unfolded (same results).",
        )
        return model, 0
    pairs = _foldable_pairs(model)
    folded_bns = {bn.name for bn in pairs.values()}
    nested = {
        layer.name: _fold_functional(layer)
        for layer in model.layers
        if isinstance(layer, keras.Model)
    }
    count = len(pairs) + sum(n for _, n in nested.values())
    if not count:
        return model, 0

    def clone(layer):
        if layer.name in pairs:
            return _folded_conv(layer, pairs[layer.name])
        if layer.name in folded_bns:
            return FoldedBatchNormalization(name=layer.name, dtype=layer.dtype_policy)
        if layer.name in nested:
            return nested[layer.name][0]
        return layer  # shared with the original model

    try:
        return keras.models.clone_model(model, clone_function=clone), count
    except (ValueError, TypeError, NotImplementedError):
        return model, 0  # a model Keras cannot rebuild (subclassed): left as it is


def fold_batch_norm(model: keras.Model) -> keras.Model:
    """An inference copy of `model` with BatchNormalization folded into convolutions.

    Every `BatchNormalization` whose only input is a linear, channels-last
    `Conv2D` used by nothing else is folded into that convolution (nested
    functional models, such as keras-hub backbones, included). Other layers
    are shared with `model`, not copied. The copy computes the same outputs as
    `model(x, training=False)` up to float rounding; it is for inference only
    (its folded convolutions hold a snapshot of the statistics, and training
    it would not update them).

    Args:
        model: a `CSRAClassifier` or a functional Keras model.

    Returns:
        The folded copy (a `CSRAClassifier` for a `CSRAClassifier`), or `model`
        itself when nothing folds (no such pair, or a subclassed model).

    Example:
    >>> from csra_tf.models import build_classifier
    >>> model = build_classifier("resnet_tiny", num_classes=3, image_size=32)
    >>> folded = fold_batch_norm(model)
    >>> folded is not model and folded.head is model.head
    True
    """
    if isinstance(model, CSRAClassifier):
        backbone, count = _fold_functional(model.backbone)
        if not count:
            return model
        return CSRAClassifier(
            backbone, model.head, dropout=model.dropout, name=model.name
        )
    return _fold_functional(model)[0]
