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

import keras
import numpy as np

from csra_tf.errors import UserError
from csra_tf.layers import AveragePoolingHead, AvgMaxClassScores
from csra_tf.models import CSRAClassifier

_POOLINGS = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalAveragePooling1D)


def with_max_pooling(model: keras.Model, lam: float) -> keras.Model:
    """Adds training-free max pooling to a global-average-pooling classifier.

    The classifier's head must be `GlobalAveragePooling{1,2}D` (possibly inside
    a nested backbone model), optionally `Dropout`, then the output `Dense`: our
    `build_classifier(..., head="gap")` (found through its `.backbone` and
    `.head`), a keras-cv `ImageClassifier`, or a
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
    """The activation of the classifier's output (`linear` for logits).

    Args:
        model: a classifier accepted by `with_max_pooling`.

    Returns:
        The Keras activation function.
    """
    if isinstance(model, CSRAClassifier):
        return keras.activations.linear
    dense, _ = _locate_head(model)
    return dense.activation


def _with_head(model, lam, output_mode):
    suffix = "avg_max" if output_mode == "scores" else "pooled_scores"
    if isinstance(model, CSRAClassifier):
        if not isinstance(model.head, AveragePoolingHead):
            raise UserError(
                "Training-free max pooling needs a global-average-pooling + Dense "
                "head (build_classifier(..., head='gap')). Received: head="
                f"{type(model.head).__name__}"
            )
        layer = AvgMaxClassScores(
            model.head.num_classes,
            lam=lam,
            output_mode=output_mode,
            name=model.head.name,
        )
        result = CSRAClassifier(
            model.backbone, layer, dropout=model.dropout, name=f"{model.name}_{suffix}"
        )
        layer.set_weights([np.asarray(w, np.float32) for w in model.head.get_weights()])
        return result
    # A foreign model (keras.applications, keras-cv): find the head in its graph.
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
        raise UserError(
            "with_max_pooling needs a built functional model with one output. "
            f"Received: model={model.name}"
        )
    dense, inputs = _producer(outputs[0])
    if not isinstance(dense, keras.layers.Dense):
        raise UserError(
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
                raise UserError(
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
            raise UserError(
                "Expected GlobalAveragePooling (optionally followed by Dropout) "
                "before the output Dense. Received: layer="
                f"{getattr(operation, 'name', None)} ({type(operation).__name__})"
            )
