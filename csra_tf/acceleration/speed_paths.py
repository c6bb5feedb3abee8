"""Which speed paths run where, and `accelerate`, the one way to apply them.

A model is what its owner built; the programs (training, evaluation, predict,
export, the benchmarks) opt into the speed paths by calling
`accelerate(model, for_training=...)`, as they opt into `jit_compile` or a
dtype policy. Every path gives Keras's results up to float rounding.

| speed path | what it does | training | inference | devices |
|---|---|---|---|---|
| BatchNorm folding | a copy, BatchNorm inside the convolutions | | yes | all |
| fused BatchNorm | BatchNormalization on `FusedBatchNormV3` | yes | yes | CPU |
| fused Dense | Dense / EinsumDense as one 2-D MatMul (*) | yes | yes | CPU |
| XLA LayerNorm | LayerNormalization, one XLA kernel per direction | yes | | CPU |
| matmul attention | MultiHeadAttention's core as batched matmuls | yes | | CPU |
| Swin MLP GELU | keras-hub's Swin MLP with its GELU as one XLA kernel | yes | | CPU |

(*) with an exact GELU as one XLA kernel while training.

Every timing behind these paths was taken on CPUs (docs/benchmarks.md); none
on a GPU. The kernel-level paths are therefore applied on CPU only: with a GPU
in the process, the model keeps Keras's own calls. The XLA kernels were also
run inside a jit-compiled bfloat16 training step (the GPU recipe), but on a
CPU and for their values, not timed on a GPU. Folding is applied on every
device: it removes the normalisation's arithmetic rather than choosing a
kernel, and an export must not depend on the machine that wrote it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import tensorflow as tf
from absl import logging

from csra_tf.acceleration.batch_norm_folding import fold_batch_norm
from csra_tf.acceleration.fused_batch_norm import use_fused_batch_norm
from csra_tf.acceleration.fused_dense import use_fused_dense
from csra_tf.acceleration.fused_layer_norm import use_fused_layer_norm
from csra_tf.acceleration.matmul_attention import use_matmul_attention
from csra_tf.acceleration.swin_mlp import use_swin_mlp_gelu
from csra_tf.errors import UserError

DEVICES = ("CPU", "GPU")


@dataclasses.dataclass(frozen=True)
class _SpeedPath:
    name: str
    apply: Callable[[keras.layers.Layer], int]
    devices: tuple[str, ...]
    training: bool
    inference: bool


_SWITCHES = (
    _SpeedPath("fused BatchNorm", use_fused_batch_norm, ("CPU",), True, True),
    _SpeedPath("fused Dense", use_fused_dense, ("CPU",), True, True),
    _SpeedPath("XLA LayerNorm", use_fused_layer_norm, ("CPU",), True, False),
    _SpeedPath("matmul attention", use_matmul_attention, ("CPU",), True, False),
    _SpeedPath("Swin MLP GELU", use_swin_mlp_gelu, ("CPU",), True, False),
)
"""The paths that switch layer calls, in the order they are applied."""

_FOLDING_DEVICES = DEVICES


def local_device() -> str:
    """`"GPU"` when this process sees a GPU, else `"CPU"`.

    Returns:
        The device `accelerate` tunes for by default.
    """
    return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"


def accelerate(
    model: keras.Model, for_training: bool, device: str | None = None
) -> keras.Model:
    """The model to run, on the speed paths measured for this use and device.

    For training, the eligible layers of `model` get faster calls in place
    (their class, configuration and weights unchanged, so `model.save` writes
    plain Keras) and `model` itself is returned. For inference, the result is
    an inference copy with BatchNormalization folded into the convolutions
    (`fold_batch_norm`; `model` itself when nothing folds), whose other layers,
    shared with `model`, get the inference paths in place. Outputs and
    gradients are Keras's up to float rounding. A path whose Keras internals
    are missing keeps Keras's own calls and warns once. See the module's table
    for which path runs where.

    Args:
        model: a `CSRAClassifier` or any Keras model.
        for_training: True for a model about to be trained (its `fit` still
            evaluates with Keras's inference calls where a path is training-only);
            False for one that only infers (never train the result).
        device: `"CPU"` or `"GPU"`, the device the model runs on; default
            `local_device()`.

    Returns:
        The model to run: `model` for training, the folded copy (or `model`)
        for inference.

    Raises:
        UserError: when `model` is not a Keras model, `for_training` is not a
            bool or `device` is unknown.

    Example:
    >>> from csra_tf.models import build_classifier
    >>> model = build_classifier("resnet_tiny", num_classes=3, image_size=32)
    >>> accelerate(model, for_training=True, device="CPU") is model
    True
    >>> folded = accelerate(model, for_training=False)
    >>> folded is not model and folded.head is model.head
    True
    """
    if not isinstance(model, keras.Model):
        raise UserError(
            f"`model` must be a keras.Model. Received: model={type(model).__name__}"
        )
    if not isinstance(for_training, bool):
        raise UserError(
            "`for_training` must be True or False. "
            f"Received: for_training={for_training!r}"
        )
    device = local_device() if device is None else device
    if device not in DEVICES:
        raise UserError(
            f"`device` must be one of {DEVICES}. Received: device={device!r}"
        )
    applied = {}
    if not for_training and device in _FOLDING_DEVICES:
        folded = fold_batch_norm(model)
        if folded is not model:
            applied["BatchNorm folding"] = "copy"
        model = folded
    for path in _SWITCHES:
        wanted = path.training if for_training else path.inference
        if wanted and device in path.devices:
            applied[path.name] = path.apply(model)
    logging.debug(
        "Speed paths for %s on %s: %s",
        "training" if for_training else "inference",
        device,
        ", ".join(f"{name} ({count})" for name, count in applied.items()) or "none",
    )
    return model
