"""Dense and EinsumDense layers as one 2-D matmul that oneDNN fuses.

Keras computes `Dense` on a `(B, N, d)` input (the token MLPs of a ViT) as a
batched matmul followed by separate bias and activation ops, and `EinsumDense`
(the query, key, value and output projections of `MultiHeadAttention`) through
`einsum`. On CPU grappler fuses neither. The same product written as a 2-D
`MatMul` + `BiasAdd` (+ activation) on flattened tokens becomes one oneDNN
`_FusedMatMul`, GELU included (docs/benchmarks.md). While training, an exact
GELU runs as `xla_kernels.gelu` instead (one XLA kernel forward, one for the
gradient), since the matmul can then not absorb it: its input is kept for the
gradient.

`use_fused_dense(model)` gives every eligible layer of a model (nested models
and layers included) such a call. Outputs are the same products up to float
rounding; the layers keep their class, configuration and weights, so saved
models are unchanged. It uses no private Keras name. The fusion is oneDNN's and
was measured on CPU only, so `accelerate` applies it on CPU only.
"""

from __future__ import annotations

import math
import re

import keras
import tensorflow as tf

from csra_tf.acceleration.layer_walk import switch_method
from csra_tf.acceleration.xla_kernels import gelu


def _plain(layer) -> bool:
    return (
        getattr(layer, "quantization_mode", None) is None
        and not getattr(layer, "lora_enabled", False)
        and layer.built
    )


def matmul_split(equation: str, bias_axes: str | None) -> tuple[int, int] | None:
    """How an EinsumDense equation reads as one matmul, if it does.

    An equation `P C, C O -> P O` (the input's trailing axes `C` contracted
    with the kernel's leading axes, the kernel's other axes `O` appended) is
    `reshape(x, [-1, |C|]) @ reshape(kernel, [|C|, |O|])`; a bias on exactly
    the axes `O` is then one bias vector.

    Args:
        equation: an EinsumDense equation, e.g. `"abc,cde->abde"`.
        bias_axes: the layer's bias axes, or None.

    Returns:
        `(number of contracted axes, number of kernel output axes)`, or None
        when the equation is not of that form.

    Example:
    >>> matmul_split("abc,cde->abde", "de")
    (1, 2)
    >>> matmul_split("abcd,cde->abe", "e")
    (2, 1)
    >>> matmul_split("ab,bc->ac", None)
    (1, 1)
    >>> matmul_split("abc,cd->abd", "b") is None
    True
    """
    match = re.fullmatch(r"(\w+),(\w+)->(\w+)", equation.replace(" ", ""))
    if match is None:
        return None
    lhs, rhs, out = match.groups()
    if any(len(set(axes)) != len(axes) for axes in (lhs, rhs, out)):
        return None  # an axis repeated within one operand (a trace, a diagonal)
    contracted = "".join(c for c in lhs if c in rhs)
    kept = lhs[: len(lhs) - len(contracted)]
    kernel_out = rhs[len(contracted) :]
    if not contracted or lhs != kept + contracted or rhs != contracted + kernel_out:
        return None
    if out != kept + kernel_out:
        return None
    if bias_axes and bias_axes != kernel_out:
        return None
    return len(contracted), len(kernel_out)


def _matmul_shaped(layer) -> bool:
    return _plain(layer) and matmul_split(layer.equation, layer.bias_axes) is not None


def _flat_matmul(
    layer, inputs, num_contracted: int, kernel_shape, training
) -> tf.Tensor:
    """`inputs` x `layer.kernel` over the trailing axes, as one 2-D MatMul."""
    inputs = tf.convert_to_tensor(inputs)
    depth = math.prod(kernel_shape[:num_contracted])
    width = math.prod(kernel_shape[num_contracted:])
    x = tf.reshape(inputs, [-1, depth])
    kernel = tf.reshape(tf.cast(layer.kernel, x.dtype), [depth, width])
    y = tf.matmul(x, kernel)
    if layer.bias is not None:
        y = tf.nn.bias_add(y, tf.reshape(tf.cast(layer.bias, y.dtype), [width]))
    if training is True and layer.activation is keras.activations.gelu:
        y = gelu(y)
    elif layer.activation is not None:
        y = layer.activation(y)
    kept = inputs.shape[: inputs.shape.rank - num_contracted]
    out_shape = tf.concat(
        [tf.shape(inputs)[: kept.rank], tf.constant(kernel_shape[num_contracted:])],
        axis=0,
    )
    outputs = tf.reshape(y, out_shape)
    outputs.set_shape(kept.concatenate(kernel_shape[num_contracted:]))
    return outputs


def _dense_call(self, inputs, training=None):
    """Dense.call as a 2-D MatMul + BiasAdd + activation for > 2-D inputs."""
    if len(inputs.shape) <= 2 or not _plain(self):
        return keras.layers.Dense.call(self, inputs, training=training)
    return _flat_matmul(self, inputs, 1, tuple(self.kernel.shape), training)


def _einsum_dense_call(self, inputs, training=None):
    """EinsumDense.call as a 2-D MatMul + BiasAdd + activation."""
    split = matmul_split(self.equation, self.bias_axes)
    if split is None or not _plain(self):
        return keras.layers.EinsumDense.call(self, inputs, training=training)
    return _flat_matmul(self, inputs, split[0], tuple(self.kernel.shape), training)


def use_fused_dense(model: keras.layers.Layer) -> int:
    """Runs the eligible Dense / EinsumDense layers of `model` as 2-D matmuls.

    Eligible: plain `keras.layers.Dense`, and `keras.layers.EinsumDense`
    whose equation is a matmul over trailing axes (`matmul_split`), neither
    quantised nor with LoRA. Dense on 2-D inputs keeps Keras's call.

    Args:
        model: a model or layer; every layer `walk_layers` reaches is searched.

    Returns:
        The number of layers switched.

    Example:
    >>> from csra_tf import backbones
    >>> use_fused_dense(backbones.create("vit_tiny", image_size=32)) > 0
    True
    """
    return switch_method(
        model, keras.layers.Dense, _dense_call, "fused Dense", eligible=_plain
    ) + switch_method(
        model,
        keras.layers.EinsumDense,
        _einsum_dense_call,
        "fused Dense",
        eligible=_matmul_shaped,
    )
