"""Training on several machines: a custom loop under MultiWorkerMirroredStrategy.

Keras 3.15's `model.fit` fails under `tf.distribute.MultiWorkerMirroredStrategy`
before its first step (docs/architecture.md, "Training"), so
`train_multi_worker` runs the same training as `train_lib.train` with its own
loop: a `strategy.run` step inside a `tf.function`, over one input pipeline per
worker.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile

import keras
import tensorflow as tf
from absl import logging

from csra_tf import run_folder
from csra_tf.acceleration import accelerate
from csra_tf.config import TrainConfig
from csra_tf.data import build_dataset
from csra_tf.errors import UserError
from csra_tf.metrics import evaluate
from csra_tf.models import predict_probabilities
from csra_tf.optimization.losses import MaskedBinaryCrossentropy
from csra_tf.training.checkpoints import NonFiniteLossError
from csra_tf.training.train_lib import (
    build_model,
    create_optimizer,
    dtype_policy,
    prepare_run,
    training_dataset,
)

# Dtypes that collective all-reduce handles; other variables travel as int64.
_REDUCIBLE_DTYPES = (
    tf.bfloat16,
    tf.float16,
    tf.float32,
    tf.float64,
    tf.int32,
    tf.int64,
)


def train_multi_worker(
    config: TrainConfig,
    strategy: tf.distribute.MultiWorkerMirroredStrategy,
    is_chief: bool,
    verbose: int = 1,
) -> dict:
    """Trains, evaluates and saves a classifier on all workers of `strategy`.

    Every worker of the cluster calls this function with the same `config`. The
    model, the optimizer (`create_optimizer`) and the loss are built in
    `strategy.scope()`; each worker reads its own shard of the training data
    (`strategy.distribute_datasets_from_function`), and the per-example losses of
    a replica are summed and divided by the global batch size
    (`config.batch_size`), so the all-reduced gradients are those of the mean
    loss over the global batch.

    After each epoch the model, the optimizer and the epoch counter are saved
    by a `tf.train.CheckpointManager`: the chief's goes to `<workdir>/backup`;
    the others write into a temporary folder that they delete at once (all
    workers must take part in a save). At start the chief restores its latest
    checkpoint and broadcasts the state to all workers, so a killed run started
    again with the same config resumes after its last finished epoch, also when
    the workers do not share a file system.

    Only the chief writes into its workdir: `config.json`, `classes.json`,
    `model.keras` and `metrics.json` (on validation data, computed by the chief
    alone); `backup/` is deleted when the run completes. The other workers leave
    their workdirs untouched, except that with `dataset="shapes"` and an empty
    `data_dir` each worker generates the images under its own `<workdir>/data`:
    give all workers one `data_dir` instead.

    Mixed precision works as in `train` (under `mixed_float16` the optimizer is
    a `LossScaleOptimizer`); XLA (`config.jit_compile`) does not.

    Args:
        config: the run's configuration, the same on every worker.
            `config.batch_size` is the global batch size; it must be a multiple
            of `strategy.num_replicas_in_sync`.
        strategy: the cluster's strategy, created at the start of the program
            (TensorFlow requires it before other ops run).
        is_chief: whether this worker is the chief (the `"chief"` task, or
            worker 0 when the cluster has none).
        verbose: 1 shows a progress bar per epoch on the chief, 0 is silent.

    Returns:
        On the chief, the `csra_tf.metrics.evaluate` dict of the final model on
        validation data; `{}` on the other workers.

    Raises:
        ValueError: if `config.jit_compile` is set, if the batch size does not
            split evenly across the replicas, or if the chief's workdir holds a
            run with another config.
        NonFiniteLossError: when the training loss becomes NaN or infinite (on
            every worker; the last backup is kept).

    Example:

    >>> strategy = tf.distribute.MultiWorkerMirroredStrategy()  # doctest: +SKIP
    >>> metrics = train_multi_worker(  # doctest: +SKIP
    ...     TrainConfig(workdir="runs/shapes"), strategy, is_chief=True
    ... )

    (Not run as a doctest: it needs a cluster, one process per worker with its
    `TF_CONFIG`.)
    """
    if config.jit_compile:
        raise UserError(
            "Multi-worker training does not support XLA: BatchNormalization "
            "synchronises its statistics across replicas inside the step, which "
            "a jit-compiled function cannot hold. Received: jit_compile=True"
        )
    if config.batch_size % strategy.num_replicas_in_sync:
        raise UserError(
            "The global batch size must be a multiple of the number of replicas "
            f"({strategy.num_replicas_in_sync}). "
            f"Received: batch_size={config.batch_size}"
        )
    run = prepare_run(config, is_chief=is_chief)
    class_names, val_source = run.class_names, run.val_source
    bad_records, steps_per_epoch = run.bad_records, run.steps_per_epoch

    with strategy.scope(), dtype_policy(config.mixed_precision):
        model = accelerate(build_model(config, len(class_names)), for_training=True)
        # As in train(): compile wraps the optimizer in a LossScaleOptimizer
        # under mixed_float16, and model.keras then holds the optimizer.
        model.compile(
            optimizer=create_optimizer(config, steps_per_epoch, model),
            loss=MaskedBinaryCrossentropy(),
        )
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)
        loss_fn = MaskedBinaryCrossentropy(reduction=None)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        # Steps done in the epoch after `epoch` finished ones (mid-epoch backups).
        step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")

    backup_dir = os.path.join(config.workdir, run_folder.BACKUP_DIR)
    write_dir = backup_dir if is_chief else tempfile.mkdtemp(prefix="csra_backup_")
    checkpoint = tf.train.Checkpoint(
        model=model, optimizer=optimizer, epoch=epoch, step=step_in_epoch
    )
    manager = tf.train.CheckpointManager(checkpoint, write_dir, max_to_keep=1)
    try:
        if is_chief and manager.latest_checkpoint:
            status = checkpoint.restore(manager.latest_checkpoint)
            status.assert_existing_objects_matched()
            logging.info(
                "Resuming at epoch %d, step %d, from the backup %s.",
                int(epoch.numpy()) + 1,
                int(step_in_epoch.numpy()),
                manager.latest_checkpoint,
            )
        state = _unique(
            list(model.variables) + list(optimizer.variables) + [epoch, step_in_epoch]
        )
        _broadcast_from_chief(strategy, state)
        first_epoch, first_step = int(epoch.numpy()), int(step_in_epoch.numpy())
        # The stream restarts at the batch the backup had reached, with the
        # order and augmentation it has in the whole stream.
        start_batch = first_epoch * steps_per_epoch + first_step
        train_data = strategy.distribute_datasets_from_function(
            lambda input_context: training_dataset(
                config, run.train_source, input_context, start_batch=start_batch
            )
        )

        train_step = _make_train_step(
            strategy, model, optimizer, loss_fn, config.batch_size
        )
        iterator = iter(train_data)
        verbose = verbose if is_chief else 0
        every = config.backup_every_steps
        for epoch_index in range(first_epoch, config.epochs):
            if verbose:
                print(f"Epoch {epoch_index + 1}/{config.epochs}")
            progress = keras.utils.Progbar(steps_per_epoch, verbose=verbose)
            start = first_step if epoch_index == first_epoch else 0
            for step in range(start, steps_per_epoch):
                loss = float(train_step(iterator))
                if not math.isfinite(loss):
                    raise NonFiniteLossError(
                        f"The training loss became {loss} at epoch "
                        f"{epoch_index + 1}, step {step + 1}. Training stopped; the "
                        f"last good epoch is kept in {backup_dir}. Lower --lr or "
                        "check the data."
                    )
                progress.update(step + 1, [("loss", loss)])
                if every and (step + 1) % every == 0 and step + 1 < steps_per_epoch:
                    step_in_epoch.assign(step + 1)
                    manager.save()
                    if not is_chief:
                        shutil.rmtree(write_dir, ignore_errors=True)
            epoch.assign(epoch_index + 1)
            step_in_epoch.assign(0)
            manager.save()
            if not is_chief:
                shutil.rmtree(write_dir, ignore_errors=True)
    finally:
        if not is_chief:
            shutil.rmtree(write_dir, ignore_errors=True)
    if not is_chief:
        return {}

    model_path = os.path.join(config.workdir, run_folder.MODEL_FILE)
    run_folder.save_model(model, model_path)
    shutil.rmtree(backup_dir, ignore_errors=True)

    logging.info(
        "Evaluating the final model on %s validation images.", val_source.num_examples
    )
    # A copy outside the strategy: the chief predicts alone, with no collectives.
    local_model = accelerate(run_folder.load_model(model_path), for_training=False)
    val_data = build_dataset(
        val_source,
        image_size=config.image_size,
        batch_size=config.batch_size,
        training=False,
    )
    probs, targets = predict_probabilities(local_model, val_data, verbose=verbose)
    metrics = evaluate(probs, targets)
    run_folder.write_metrics(
        config.workdir,
        metrics,
        class_names,
        extra={"bad_records": bad_records},
    )
    return metrics


def _make_train_step(
    strategy: tf.distribute.Strategy,
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    loss_fn: keras.losses.Loss,
    global_batch_size: int,
):
    """Returns a `tf.function` that takes one distributed batch from an iterator.

    Args:
        strategy: the strategy the model and optimizer were built under.
        model: the classifier (logits).
        optimizer: the optimizer; it all-reduces (sums) the replicas' gradients
            and, as a `LossScaleOptimizer`, unscales them.
        loss_fn: a loss returning per-example values (`reduction=None`).
        global_batch_size: the number of examples per step over all replicas.

    Returns:
        A function `iterator -> scalar loss` (the mean over the global batch).
    """

    def replica_step(images, targets):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            per_example = loss_fn(targets, logits)
            loss = tf.nn.compute_average_loss(
                per_example, global_batch_size=global_batch_size
            )
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled_loss = optimizer.scale_loss(loss)
        variables = model.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss

    @tf.function
    def train_step(iterator):
        images, targets = next(iterator)
        losses = strategy.run(replica_step, args=(images, targets))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    return train_step


def _broadcast_from_chief(
    strategy: tf.distribute.Strategy, variables: list[tf.Variable]
) -> None:
    """Gives every replica the values that replica 0 (on the chief) holds.

    An all-reduce sum in which every replica but the first contributes zeros.

    Args:
        strategy: the strategy the variables were created under.
        variables: mirrored variables (Keras or TensorFlow).
    """

    def replica_values():
        context = tf.distribute.get_replica_context()
        first = tf.equal(context.replica_id_in_sync_group, 0)
        values = []
        for variable in variables:
            value = tf.convert_to_tensor(variable)
            if value.dtype not in _REDUCIBLE_DTYPES:
                value = tf.cast(value, tf.int64)
            values.append(value * tf.cast(first, value.dtype))
        # One all-reduce per dtype: a batched all-reduce packs its tensors into one.
        reduced = list(values)
        # Sorted: every worker must issue its collectives in the same order.
        for dtype in sorted({value.dtype for value in values}, key=str):
            indices = [i for i, value in enumerate(values) if value.dtype == dtype]
            sums = context.all_reduce(
                tf.distribute.ReduceOp.SUM, [values[i] for i in indices]
            )
            for i, value in zip(indices, sums, strict=True):
                reduced[i] = value
        return reduced

    @tf.function
    def broadcast():
        reduced = strategy.run(replica_values)
        for variable, value in zip(variables, reduced, strict=True):
            local = strategy.experimental_local_results(value)[0]
            variable.assign(tf.cast(local, variable.dtype))

    if variables:
        broadcast()


def _unique(variables: list) -> list:
    """Drops repeated variables (by identity), keeping the first of each."""
    seen, unique = set(), []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            unique.append(variable)
    return unique
