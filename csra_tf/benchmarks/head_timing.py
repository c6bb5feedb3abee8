"""Measures what the CSRA head adds to a backbone's inference and training time."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from csra_tf import backbones
from csra_tf.acceleration import accelerate
from csra_tf.models import build_classifier
from csra_tf.optimization.losses import MaskedBinaryCrossentropy
from csra_tf.optimization.optimizer import MultiRateSGD


@dataclasses.dataclass(frozen=True)
class HeadTiming:
    """Median step times of one head configuration, in milliseconds.

    Args:
        name: e.g. `"gap"`, `"csra_h8"`.
        inference_ms: forward pass of the whole model, one batch.
        train_ms: one optimizer step of the whole model, one batch.
        head_only_ms: forward pass of the head alone on precomputed features.
        head_train_ms: forward + backward pass of the head alone (gradients for
            its weights and its input features).
    """

    name: str
    inference_ms: float
    train_ms: float
    head_only_ms: float
    head_train_ms: float


def _median_ms(fn, steps: int) -> float:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(1000.0 * (time.perf_counter() - start))
    return statistics.median(times)


def benchmark_heads(
    backbone: str,
    image_size: int,
    batch_size: int,
    num_classes: int = 80,
    head_configs: Sequence[tuple[str, int]] = (("gap", 1), ("csra", 1), ("csra", 8)),
    rounds: int = 3,
    steps_per_round: int = 5,
    jit_compile: bool = False,
    seed: int = 0,
    **backbone_overrides,
) -> list[HeadTiming]:
    """Times each head on one shared backbone, interleaving the configurations.

    Every round times each configuration in turn (inference, training step, head
    alone), so drifts of the machine's speed hit all of them alike; the medians
    over all rounds are reported.

    Args:
        backbone: a registered backbone name, e.g. `"resnet50"`.
        image_size: input side.
        batch_size: images per step.
        num_classes: classes of the head.
        head_configs: `(head, num_heads)` pairs; the first is the reference.
        rounds: interleaved rounds.
        steps_per_round: timed steps per round, configuration and kind.
        jit_compile: compile the steps with XLA.
        seed: seed of weights and inputs.
        **backbone_overrides: passed to `csra_tf.backbones.create`.

    Returns:
        One `HeadTiming` per configuration, in `head_configs` order.
    """
    keras.utils.set_random_seed(seed)
    shared = backbones.create(backbone, image_size=image_size, **backbone_overrides)
    rng = np.random.default_rng(seed)
    images = tf.constant(
        rng.uniform(0, 255, (batch_size, image_size, image_size, 3)), tf.float32
    )
    targets = tf.constant(rng.integers(0, 2, (batch_size, num_classes)), tf.float32)
    features = shared(images)
    loss_fn = MaskedBinaryCrossentropy()

    runners = []
    for head, num_heads in head_configs:
        model = accelerate(
            build_classifier(
                shared,
                num_classes,
                head=head,
                num_heads=num_heads,
                image_size=image_size,
            ),
            for_training=True,
        )
        head_layer = model.head
        optimizer = MultiRateSGD(
            0.001, lr_multipliers={v.path: 10.0 for v in head_layer.trainable_variables}
        )

        @tf.function(jit_compile=jit_compile)
        def infer(model=model):
            return model(images, training=False)

        @tf.function(jit_compile=jit_compile)
        def train_step(model=model, optimizer=optimizer):
            with tf.GradientTape() as tape:
                loss = loss_fn(targets, model(images, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(
                zip(grads, model.trainable_variables, strict=True)
            )
            return loss

        @tf.function(jit_compile=jit_compile)
        def head_only(head_layer=head_layer):
            return head_layer(features)

        @tf.function(jit_compile=jit_compile)
        def head_train(head_layer=head_layer):
            with tf.GradientTape() as tape:
                tape.watch(features)
                logits = head_layer(features)
                loss = loss_fn(targets, logits)
            grads = tape.gradient(loss, [features, *head_layer.trainable_variables])
            return tf.add_n([tf.reduce_sum(g) for g in grads])

        for fn in (infer, train_step, head_only, head_train):
            fn()  # trace and warm up
        name = head if head == "gap" else f"{head}_h{num_heads}"
        runners.append((name, infer, train_step, head_only, head_train))

    samples = {name: ([], [], [], []) for name, *_ in runners}
    for _ in range(rounds):
        for name, *fns in runners:
            for store, fn in zip(samples[name], fns, strict=True):
                store.append(
                    _median_ms(lambda fn=fn: np.asarray(fn()), steps_per_round)
                )
    return [
        HeadTiming(name, *(statistics.median(values) for values in samples[name]))
        for name, *_ in runners
    ]


def format_timings(timings: Sequence[HeadTiming], batch_size: int) -> str:
    """Step times, their ratios to the first (reference) head, and head overheads.

    The whole-model ratios are what a user sees, but on a shared machine their
    noise can exceed the head's cost; the overhead columns (`+infer %`,
    `+train %`) add only the measured difference of the heads alone to the
    reference model's step time, which is far steadier.

    Args:
        timings: results of `benchmark_heads`.
        batch_size: images per step, for images/s.

    Returns:
        The table as text.
    """
    base = timings[0]
    rows = [
        f"{'head':10s}{'infer ms':>10s}{'x ref':>8s}{'img/s':>9s}"
        f"{'train ms':>10s}{'x ref':>8s}{'img/s':>9s}{'head ms':>9s}"
        f"{'head fb ms':>11s}{'+infer %':>9s}{'+train %':>9s}"
    ]
    for t in timings:
        infer_ratio = t.inference_ms / base.inference_ms
        rows.append(
            f"{t.name:10s}{t.inference_ms:10.2f}{infer_ratio:8.3f}"
            f"{1000 * batch_size / t.inference_ms:9.1f}{t.train_ms:10.2f}"
            f"{t.train_ms / base.train_ms:8.3f}{1000 * batch_size / t.train_ms:9.1f}"
            f"{t.head_only_ms:9.3f}{t.head_train_ms:11.3f}"
            f"{100 * (t.head_only_ms - base.head_only_ms) / base.inference_ms:9.2f}"
            f"{100 * (t.head_train_ms - base.head_train_ms) / base.train_ms:9.2f}"
        )
    return "\n".join(rows)
