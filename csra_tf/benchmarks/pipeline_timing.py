"""Input-pipeline benchmark: is training waiting for JPEG decoding?

Measures, on the embedded shapes data, (1) how many images per second the
training pipeline decodes and augments on its own, and (2) the training step
time of the default model when fed by that pipeline versus by the same images
already decoded and resized in memory. The two step-time measurements are
interleaved, round by round, so that load from other processes affects both
alike; the medians over rounds are compared.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from csra_tf.acceleration import accelerate
from csra_tf.data import build_dataset, shapes
from csra_tf.models import build_classifier
from csra_tf.optimization import MaskedBinaryCrossentropy


@dataclasses.dataclass(frozen=True)
class PipelineBenchmark:
    """The figures of `benchmark_input_pipeline`.

    Args:
        pipeline_images_per_s: Decode + augment throughput of the training
            pipeline alone (images per second).
        randaugment_images_per_s: The same with RandAugment on.
        jpeg_step_ms: Median training step time fed by the JPEG pipeline.
        memory_step_ms: Median training step time fed by in-memory tensors.
        jpeg_round_ms: Per-round mean step times, JPEG pipeline.
        memory_round_ms: Per-round mean step times, in-memory tensors.
    """

    pipeline_images_per_s: float
    randaugment_images_per_s: float
    jpeg_step_ms: float
    memory_step_ms: float
    jpeg_round_ms: list[float]
    memory_round_ms: list[float]

    @property
    def step_time_ratio(self) -> float:
        """JPEG-pipeline step time over in-memory step time (1.0: no cost)."""
        return self.jpeg_step_ms / self.memory_step_ms

    def summary(self) -> str:
        """The figures as a few lines of text."""
        rounds = ", ".join(
            f"{a:.1f}/{b:.1f}"
            for a, b in zip(self.jpeg_round_ms, self.memory_round_ms, strict=True)
        )
        return "\n".join(
            [
                f"decode+augment:        {self.pipeline_images_per_s:8.0f} images/s",
                f"  with RandAugment:    {self.randaugment_images_per_s:8.0f} images/s",
                f"train step, JPEG:      {self.jpeg_step_ms:8.1f} ms (median)",
                f"train step, in memory: {self.memory_step_ms:8.1f} ms (median)",
                f"ratio JPEG / memory:   {self.step_time_ratio:8.2f}",
                f"rounds (JPEG/memory ms): {rounds}",
            ]
        )


def benchmark_input_pipeline(
    data_dir: str | os.PathLike,
    num_images: int = 1024,
    image_size: int = 64,
    batch_size: int = 32,
    rounds: int = 5,
    steps_per_round: int = 20,
    throughput_batches: int = 40,
    seed: int = 0,
) -> PipelineBenchmark:
    """Benchmarks the training input pipeline on the embedded shapes data.

    Args:
        data_dir: Where the shapes data is (or is generated).
        num_images: The number of training images to generate and read.
        image_size: The image and model input side.
        batch_size: The batch size.
        rounds: The number of interleaved rounds of step-time measurement.
        steps_per_round: Training steps timed per round and per feed.
        throughput_batches: Batches timed for the pipeline throughput.
        seed: The seed of the data, the pipeline and the model.

    Returns:
        The measured figures.
    """
    source = shapes(
        data_dir,
        "train",
        image_size=image_size,
        num_train=num_images,
        num_val=batch_size,
        seed=seed,
        progress=False,
    )

    def jpeg_batches(randaugment=False):
        return build_dataset(
            source, image_size, batch_size, True, seed=seed, randaugment=randaugment
        ).repeat()

    pipeline_rate = _images_per_second(jpeg_batches(), throughput_batches, batch_size)
    randaugment_rate = _images_per_second(
        jpeg_batches(randaugment=True), throughput_batches // 2, batch_size
    )

    images, targets = _cached(source, image_size)
    memory = (
        tf.data.Dataset.from_tensor_slices((images, targets))
        .shuffle(len(targets), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size, drop_remainder=True)
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )

    keras.utils.set_random_seed(seed)
    model = accelerate(
        build_classifier("tiny", source.num_classes, image_size=image_size),
        for_training=True,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
        loss=MaskedBinaryCrossentropy(),
        jit_compile=False,
    )
    feeds = {"jpeg": iter(jpeg_batches()), "memory": iter(memory)}
    for iterator in feeds.values():  # warm up: tracing, buffers, threads
        _time_steps(model, iterator, 3)
    per_round = {name: [] for name in feeds}
    for _ in range(rounds):
        for name, iterator in feeds.items():
            per_round[name].append(_time_steps(model, iterator, steps_per_round))
    return PipelineBenchmark(
        pipeline_images_per_s=pipeline_rate,
        randaugment_images_per_s=randaugment_rate,
        jpeg_step_ms=statistics.median(per_round["jpeg"]),
        memory_step_ms=statistics.median(per_round["memory"]),
        jpeg_round_ms=per_round["jpeg"],
        memory_round_ms=per_round["memory"],
    )


def _images_per_second(
    batches: tf.data.Dataset, num_batches: int, batch_size: int
) -> float:
    """Pulls batches through a pipeline; returns its steady-state rate."""
    iterator = iter(batches)
    for _ in range(3):  # warm up
        next(iterator)
    start = time.perf_counter()
    for _ in range(num_batches):
        next(iterator)
    return num_batches * batch_size / (time.perf_counter() - start)


def _cached(source, image_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """All of a source's images, decoded and resized once, as tensors."""
    batches = list(build_dataset(source, image_size, 256, training=False))
    images = np.concatenate([x.numpy() for x, _ in batches])
    targets = np.concatenate([y.numpy() for _, y in batches])
    return tf.constant(images), tf.constant(targets)


def _time_steps(model: keras.Model, iterator, num_steps: int) -> float:
    """Mean wall time of `num_steps` training steps (fetch included), in ms."""
    start = time.perf_counter()
    for _ in range(num_steps):
        x, y = next(iterator)
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / num_steps * 1000.0
