"""What each backbone costs under the CSRA head: parameters, FLOPs, CPU speed.

FLOPs are counted from the traced inference graph, without running it: every
matrix product (`MatMul`, `BatchMatMulV2`, two-operand `Einsum`) and
convolution (`Conv2D`, `DepthwiseConv2dNative`) contributes two FLOPs per
multiply-add, from the static shapes of its operands. Element-wise work
(normalisation, activations, softmax, additions) is not counted, as in the
FLOP figures papers quote for these backbones (which count one multiply-add as
one FLOP: halve ours to compare).
"""

from __future__ import annotations

import dataclasses
import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from csra_tf import backbones
from csra_tf.acceleration import accelerate
from csra_tf.errors import UserError
from csra_tf.models import build_classifier
from csra_tf.optimization.losses import MaskedBinaryCrossentropy
from csra_tf.optimization.optimizer import MultiRateSGD

_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall", "While", "If")
"""Graph ops whose bodies live in other graphs; the counter refuses them."""


@dataclasses.dataclass(frozen=True)
class BackboneCosts:
    """Costs of one backbone with an 80-class CSRA head.

    Args:
        name: the registered backbone name.
        parameters: weights of the whole classifier (backbone and head).
        gflops: image side -> GFLOPs of one image's forward pass (a
            multiply-add is 2 FLOPs); None where the side is not valid for
            the backbone.
        inference_img_s: image side -> images/s of the inference model.
        train_img_s: image side -> images/s of SGD training steps.
        notes: why a size or a timing is missing.
    """

    name: str
    parameters: int
    gflops: dict[int, float | None]
    inference_img_s: dict[int, float]
    train_img_s: dict[int, float]
    notes: tuple[str, ...] = ()


def count_parameters(model: keras.Model) -> int:
    """Number of scalar weights of `model`, trainable or not.

    Args:
        model: a built Keras model.

    Returns:
        The sum of the sizes of its distinct variables.
    """
    unique = {id(v): v for v in model.weights}
    return int(sum(math.prod(v.shape) for v in unique.values()))


def _static(shape: tf.TensorShape, op: tf.Operation) -> list[int]:
    if not shape.is_fully_defined():
        raise ValueError(
            f"Cannot count FLOPs of {op.type} op {op.name}: its shape {shape} "
            "is not static."
        )
    return shape.as_list()


def _einsum_flops(op: tf.Operation) -> int:
    equation = op.get_attr("equation").decode()
    inputs, _ = equation.replace(" ", "").split("->")
    terms = inputs.split(",")
    if len(terms) != 2 or "..." in equation:
        raise ValueError(
            f"Cannot count FLOPs of einsum {equation!r} (op {op.name}): "
            "only two operands without ellipsis are counted."
        )
    sizes = {}
    for term, tensor in zip(terms, op.inputs, strict=True):
        for letter, size in zip(term, _static(tensor.shape, op), strict=True):
            sizes[letter] = max(size, sizes.get(letter, 1))
    return 2 * math.prod(sizes.values())


def _op_flops(op: tf.Operation) -> int:
    kind = op.type
    if kind == "MatMul":
        a = _static(op.inputs[0].shape, op)
        inner = a[0] if op.get_attr("transpose_a") else a[1]
        return 2 * math.prod(_static(op.outputs[0].shape, op)) * inner
    if kind in ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
        a = _static(op.inputs[0].shape, op)
        inner = a[-2] if op.get_attr("adj_x") else a[-1]
        return 2 * math.prod(_static(op.outputs[0].shape, op)) * inner
    if kind == "Einsum":
        return _einsum_flops(op)
    if kind == "Conv2D":
        height, width, fan_in, _ = _static(op.inputs[1].shape, op)
        out = math.prod(_static(op.outputs[0].shape, op))
        return 2 * out * height * width * fan_in
    if kind == "DepthwiseConv2dNative":
        height, width, _, _ = _static(op.inputs[1].shape, op)
        return 2 * math.prod(_static(op.outputs[0].shape, op)) * height * width
    if kind in _CALL_OPS:
        raise ValueError(
            f"Cannot count FLOPs inside {kind} op {op.name}: its body is another graph."
        )
    return 0


def count_flops(model: keras.Model, image_size: int, batch_size: int = 1) -> int:
    """FLOPs of one inference forward pass, counted from the traced graph.

    The model is traced, not run: each matrix product and convolution
    contributes `2 * multiply-adds` from its static shapes; element-wise ops
    count zero.

    Args:
        model: a model taking `(B, image_size, image_size, 3)` images.
        image_size: input side.
        batch_size: images in the traced batch.

    Returns:
        The FLOPs of the whole batch.

    Raises:
        ValueError: when the graph has an op whose cost cannot be read from
            static shapes (a nested function call, a dynamic shape).

    Example:
    >>> dense = keras.Sequential([keras.Input((2, 2, 3)), keras.layers.Dense(4)])
    >>> count_flops(dense, image_size=2)
    96
    """

    def forward(images):
        return model(images, training=False)

    spec = tf.TensorSpec((batch_size, image_size, image_size, 3), tf.float32)
    graph = tf.function(forward, autograph=False).get_concrete_function(spec).graph
    return sum(_op_flops(op) for op in graph.get_operations())


def _median_seconds(fn: Callable[[], object], warmup: int, steps: int) -> float:
    for _ in range(warmup):
        np.asarray(fn())
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        np.asarray(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_classifier(
    model: keras.Model,
    image_size: int,
    batch_size: int = 1,
    warmup: int = 2,
    steps: int = 5,
    seed: int = 0,
) -> tuple[float, float]:
    """Images/s of inference and of SGD training steps, as the programs run them.

    The model gets the training speed paths in place
    (`accelerate(model, for_training=True)`) and inference runs on
    `accelerate(model, for_training=False)`. One training step is the forward
    pass, `MaskedBinaryCrossentropy` and a `MultiRateSGD` update with the
    head at 10x the backbone's learning rate. Steps run as `tf.function`s;
    the first call (tracing) is a warm-up step.

    Args:
        model: a `CSRAClassifier` (or any model with `.head`) taking
            `(B, image_size, image_size, 3)` pixels and returning logits.
        image_size: input side.
        batch_size: images per step.
        warmup: untimed steps before timing (at least 1).
        steps: timed steps; the median is reported.
        seed: seed of the random images and labels.

    Returns:
        `(inference images/s, training images/s)`.

    Raises:
        UserError: for `warmup < 1`, `steps < 1` or `batch_size < 1`.
    """
    for label, value in (
        ("warmup", warmup),
        ("steps", steps),
        ("batch_size", batch_size),
    ):
        if value < 1:
            raise UserError(f"`{label}` must be at least 1. Received: {label}={value}")
    rng = np.random.default_rng(seed)
    images = tf.constant(
        rng.uniform(0, 255, (batch_size, image_size, image_size, 3)), tf.float32
    )
    num_classes = model.output_shape[-1]
    targets = tf.constant(rng.integers(0, 2, (batch_size, num_classes)), tf.float32)
    trained = accelerate(model, for_training=True)
    inference_model = accelerate(trained, for_training=False)
    loss_fn = MaskedBinaryCrossentropy()
    optimizer = MultiRateSGD(
        0.001,
        momentum=0.9,
        lr_multipliers={v.path: 10.0 for v in trained.head.trainable_variables},
    )

    @tf.function(autograph=False)
    def infer():
        return inference_model(images, training=False)

    @tf.function(autograph=False)
    def train_step():
        with tf.GradientTape() as tape:
            loss = loss_fn(targets, trained(images, training=True))
        variables = trained.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    inference_s = _median_seconds(infer, warmup, steps)
    train_s = _median_seconds(train_step, warmup, steps)
    return batch_size / inference_s, batch_size / train_s


def measure_backbone(
    name: str,
    flop_sizes: Sequence[int] = (224, 448),
    timing_sizes: Sequence[int] = (224,),
    num_classes: int = 80,
    batch_size: int = 1,
    warmup: int = 2,
    steps: int = 5,
    skip_timing_over_gflops: float | None = None,
    progress: Callable[[str], None] = logging.info,
    **backbone_overrides,
) -> BackboneCosts:
    """Parameters, GFLOPs and CPU images/s of one backbone with a CSRA head.

    The classifier (random weights, never downloaded) is built once per size.
    A size the backbone rejects (e.g. not a multiple of its patch or window)
    gets no figures and a note.

    Args:
        name: a registered backbone name (`csra_tf.backbones.available()`).
        flop_sizes: image sides whose FLOPs are counted.
        timing_sizes: image sides that are also timed.
        num_classes: classes of the CSRA head (80 = COCO).
        batch_size: images per timed step.
        warmup: untimed steps before timing.
        steps: timed steps (median reported).
        skip_timing_over_gflops: no timing at a size whose count exceeds this
            many GFLOPs per image; None times every timing size.
        progress: called with a line of text before each stage.
        **backbone_overrides: architecture arguments of the backbone
            (e.g. smaller widths for a test).

    Returns:
        A `BackboneCosts`; `parameters` are those of the first valid size
        (position tables aside, they do not depend on the size).

    Raises:
        UserError: when `name` is unknown or no size is valid for it.
    """
    backbones.check_name(name)
    gflops, inference, train, notes = {}, {}, {}, []
    parameters = None
    for size in sorted(set(flop_sizes) | set(timing_sizes)):
        progress(f"{name} @ {size}: building")
        try:
            backbone = backbones.create(name, image_size=size, **backbone_overrides)
        except UserError as error:
            gflops[size] = None
            notes.append(f"{size} px: {error}")
            continue
        model = build_classifier(backbone, num_classes, image_size=size)
        del backbone
        if parameters is None:
            parameters = count_parameters(model)
        progress(f"{name} @ {size}: counting FLOPs")
        gflops[size] = count_flops(model, size) / 1e9
        too_costly = (
            skip_timing_over_gflops is not None
            and gflops[size] > skip_timing_over_gflops
        )
        if size in timing_sizes and too_costly:
            notes.append(
                f"{size} px not timed: over {skip_timing_over_gflops:g} GFLOPs"
            )
        elif size in timing_sizes:
            progress(f"{name} @ {size}: timing")
            inference[size], train[size] = time_classifier(
                model, size, batch_size=batch_size, warmup=warmup, steps=steps
            )
        # Free this size's weights before the next size is built.
        del model
        keras.backend.clear_session()
        gc.collect()
    if parameters is None:
        raise UserError(f"No image size is valid for {name}: {'; '.join(notes)}")
    return BackboneCosts(name, parameters, gflops, inference, train, tuple(notes))


def format_markdown(
    costs: Sequence[BackboneCosts],
    flop_sizes: Sequence[int],
    timing_sizes: Sequence[int],
) -> str:
    """The costs as a Markdown table, one row per backbone.

    Args:
        costs: results of `measure_backbone`.
        flop_sizes: sides with a GFLOPs column.
        timing_sizes: sides with inference and training img/s columns.

    Returns:
        The table; a missing figure is an empty cell.
    """
    header = ["backbone", "parameters (M)"]
    header += [f"GFLOPs @{s}" for s in flop_sizes]
    for s in timing_sizes:
        header += [f"infer img/s @{s}", f"train img/s @{s}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def cell(table, size, fmt):
        value = table.get(size)
        return "" if value is None else format(value, fmt)

    for c in costs:
        row = [f"`{c.name}`", f"{c.parameters / 1e6:.1f}"]
        row += [cell(c.gflops, s, ".1f") for s in flop_sizes]
        for s in timing_sizes:
            row += [cell(c.inference_img_s, s, ".2f"), cell(c.train_img_s, s, ".2f")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
