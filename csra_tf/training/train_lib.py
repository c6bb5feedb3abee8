"""A whole training run: data, model, optimiser, fit, evaluation, artifacts."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os

import keras
import tensorflow as tf
from absl import logging

from csra_tf import backbones, run_folder
from csra_tf.acceleration import accelerate
from csra_tf.config import TrainConfig
from csra_tf.data import Source, build_dataset
from csra_tf.errors import UserError
from csra_tf.metrics import MeanAveragePrecision, evaluate
from csra_tf.models import CSRAClassifier, build_classifier, predict_probabilities
from csra_tf.optimization.losses import MaskedBinaryCrossentropy
from csra_tf.optimization.optimizer import MultiRateSGD
from csra_tf.optimization.schedules import WarmupCosineDecay, WarmupStepDecay
from csra_tf.training.callbacks import create_callbacks
from csra_tf.training.checkpoints import ResumableBackup
from csra_tf.training.strategy import create_strategy


def create_schedule(config: TrainConfig, steps_per_epoch: int):
    """Builds the learning-rate schedule of `config` in optimizer steps.

    Args:
        config: the run's configuration.
        steps_per_epoch: optimizer steps per epoch.

    Returns:
        A `keras.optimizers.schedules.LearningRateSchedule`.
    """
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    total = config.epochs * steps_per_epoch
    if config.lr_schedule == "cosine":
        return WarmupCosineDecay(config.lr, min(warmup, total - 1), total)
    decay = max(1, int(round(config.decay_epochs * steps_per_epoch)))
    return WarmupStepDecay(config.lr, warmup, decay, config.decay_rate)


def create_optimizer(
    config: TrainConfig, steps_per_epoch: int, model: CSRAClassifier
) -> MultiRateSGD:
    """SGD with the head at `head_lr_multiplier` x the backbone learning rate.

    Args:
        config: the run's configuration.
        steps_per_epoch: optimizer steps per epoch.
        model: the classifier; the variables of `model.head` get the head rate.

    Returns:
        A `MultiRateSGD`.
    """
    return MultiRateSGD(
        learning_rate=create_schedule(config, steps_per_epoch),
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        lr_multipliers={
            variable.path: config.head_lr_multiplier
            for variable in model.head.trainable_variables
        },
    )


@contextlib.contextmanager
def dtype_policy(mixed_precision: bool):
    """Sets Keras's global dtype policy for the block, then restores it.

    Args:
        mixed_precision: use `mixed_float16` on GPU (Keras adds loss scaling) or
            `mixed_bfloat16` on CPU; False keeps `float32`.

    Yields:
        The policy name in force.
    """
    previous = keras.config.dtype_policy()
    if mixed_precision:
        gpus = tf.config.list_logical_devices("GPU")
        keras.config.set_dtype_policy("mixed_float16" if gpus else "mixed_bfloat16")
    else:
        keras.config.set_dtype_policy("float32")
    try:
        yield keras.config.dtype_policy().name
    finally:
        keras.config.set_dtype_policy(previous)


@dataclasses.dataclass(frozen=True)
class PreparedRun:
    """What every training path sets up before building the model.

    Args:
        train_source: training `Source`.
        val_source: validation `Source`.
        class_names: class names, in target order.
        bad_records: per-split counts of skipped bad records.
        steps_per_epoch: optimizer steps per epoch.
    """

    train_source: Source
    val_source: Source
    class_names: list[str]
    bad_records: dict[str, dict[str, int]]
    steps_per_epoch: int


def prepare_run(config: TrainConfig, is_chief: bool = True) -> PreparedRun:
    """Checks/saves the workdir's config, loads the data, saves the class names.

    Args:
        config: the run's configuration.
        is_chief: only the chief writes into the workdir.

    Returns:
        A `PreparedRun`.
    """
    backbones.check_name(config.backbone)
    if is_chief:
        run_folder.check_resumable(config)
        run_folder.write_config(config)
    keras.utils.set_random_seed(config.seed)
    train_source, val_source = run_folder.load_sources(config)
    class_names = list(train_source.class_names)
    bad_records = {
        "train": dict(train_source.bad_records),
        "val": dict(val_source.bad_records),
    }
    if is_chief:
        run_folder.write_class_names(config.workdir, class_names)
        for split, counts in bad_records.items():
            if counts:
                logging.warning("Skipped bad %s records: %s", split, counts)
    steps_per_epoch = config.steps_per_epoch
    if steps_per_epoch is None:
        if not train_source.num_examples:
            raise UserError(
                "The training set size is unknown; set steps_per_epoch. "
                f"Received: dataset={config.dataset}"
            )
        steps_per_epoch = math.ceil(train_source.num_examples / config.batch_size)
    return PreparedRun(
        train_source, val_source, class_names, bad_records, steps_per_epoch
    )


def training_dataset(
    config: TrainConfig,
    source: Source,
    input_context: tf.distribute.InputContext | None = None,
    start_batch: int = 0,
) -> tf.data.Dataset:
    """The endless, augmented, batched training stream of `config`.

    Args:
        config: the run's configuration.
        source: the training `Source`.
        input_context: per-worker sharding and batch size (multi-worker).
        start_batch: the stream's first batch (a resumed run's position), with
            the order and augmentation it has in the whole stream.

    Returns:
        An endless `tf.data.Dataset` of `(images, targets)` batches.
    """
    return build_dataset(
        source,
        image_size=config.image_size,
        batch_size=config.batch_size,
        training=True,
        seed=config.seed,
        unknown_as=config.unknown_as,
        augment_mode=config.augment,
        randaugment=config.randaugment,
        randaugment_magnitude=config.randaugment_magnitude,
        input_context=input_context,
        repeat=True,
        start_batch=start_batch,
    )


def build_model(config: TrainConfig, num_classes: int) -> CSRAClassifier:
    """`build_classifier` with the model settings of `config`.

    Args:
        config: the run's configuration.
        num_classes: number of classes.

    Returns:
        The classifier (uncompiled).
    """
    return build_classifier(
        config.backbone,
        num_classes=num_classes,
        head=config.head,
        num_heads=config.num_heads,
        lam=config.lam,
        image_size=config.image_size,
        weights=config.weights,
        pixel_normalization=config.pixel_normalization,
        bn_momentum=config.bn_momentum,
        dropout=config.dropout,
        temperatures=config.head_temperatures(),
        normalize=config.normalize,
    )


def _fit_segments(position: tuple[int, int], epochs: int) -> list[tuple[int, int, int]]:
    """The `fit` calls that finish a run from a backup position.

    Args:
        position: `(finished epochs, finished steps of the next epoch)`.
        epochs: the run's epochs.

    Returns:
        `(initial_epoch, end_epoch, steps already done in the first epoch)` per
        call: the rest of a partial epoch alone (its `fit` has fewer steps), then
        the whole epochs.
    """
    epoch, step = position
    segments = []
    if step and epoch < epochs:
        segments.append((epoch, epoch + 1, step))
        epoch += 1
    if epoch < epochs:
        segments.append((epoch, epochs, 0))
    return segments


def train(config: TrainConfig, verbose: int | str = "auto") -> dict:
    """Trains, evaluates and saves a classifier as described by `config`.

    The workdir receives `config.json`, `classes.json`, `checkpoints/best.keras`,
    `backup/` (deleted when the run completes), `tensorboard/`, `history.csv`,
    `model.keras` (final weights) and `metrics.json` (`csra_tf.run_folder`). An
    interrupted run started again with the same config resumes from its last
    backup (the end of an epoch, or every `backup_every_steps` steps), with the
    data order and augmentation it would have had.

    Args:
        config: the run's configuration.
        verbose: Keras `fit` verbosity.

    Returns:
        The `csra_tf.metrics.evaluate` dict of the final model on validation data.
    """
    run = prepare_run(config)
    class_names, val_source = run.class_names, run.val_source
    steps_per_epoch = run.steps_per_epoch
    val_data = build_dataset(
        val_source,
        image_size=config.image_size,
        batch_size=config.batch_size,
        training=False,
    )

    # The exact mAP metric keeps every score of the epoch; under XLA its buffers
    # need a fixed size: the larger of one training epoch and the validation set.
    metric_capacity = (
        max(steps_per_epoch * config.batch_size, val_source.num_examples or 0)
        if config.jit_compile
        else None
    )
    strategy = create_strategy()
    with strategy.scope(), dtype_policy(config.mixed_precision):
        model = accelerate(build_model(config, len(class_names)), for_training=True)
        model.compile(
            optimizer=create_optimizer(config, steps_per_epoch, model),
            loss=MaskedBinaryCrossentropy(),
            metrics=[
                MeanAveragePrecision(
                    num_classes=len(class_names), capacity=metric_capacity
                )
            ],
            jit_compile=config.jit_compile,
        )
    callbacks = create_callbacks(
        config.workdir, backup_every_steps=config.backup_every_steps
    )
    backup = next(c for c in callbacks if isinstance(c, ResumableBackup))
    if message := backup.resume_message():
        logging.info(message)
    for first_epoch, end_epoch, skip_steps in _fit_segments(
        backup.position(), config.epochs
    ):
        # A run resumed mid-epoch first finishes that epoch from its step, then
        # trains whole epochs; the stream restarts at the batch it had reached.
        backup.start_epoch_at_step(skip_steps)
        model.fit(
            training_dataset(
                config,
                run.train_source,
                start_batch=first_epoch * steps_per_epoch + skip_steps,
            ),
            initial_epoch=first_epoch,
            epochs=end_epoch,
            steps_per_epoch=steps_per_epoch - skip_steps,
            validation_data=val_data,
            callbacks=callbacks,
            verbose=verbose,
        )
    run_folder.save_model(model, os.path.join(config.workdir, run_folder.MODEL_FILE))
    backup.mark_completed()

    logging.info(
        "Evaluating the final model on %s validation images.", val_source.num_examples
    )
    probs, targets = predict_probabilities(model, val_data)
    metrics = evaluate(probs, targets)
    run_folder.write_metrics(
        config.workdir,
        metrics,
        class_names,
        extra={"bad_records": run.bad_records},
    )
    return metrics
