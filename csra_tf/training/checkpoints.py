"""Crash-safe checkpoints: every file is written aside, then renamed into place."""

from __future__ import annotations

import glob
import json
import math
import os

import keras

from csra_tf.run_folder import BACKUP_METADATA, BEST_METADATA, save_model, write_json


class ResumableBackup(keras.callbacks.Callback):
    """Saves weights + optimizer state every epoch and resumes from them.

    Like `keras.callbacks.BackupAndRestore`, but crash-safe: the weights of
    epoch k go to `epoch-k.weights.h5` (written aside, then renamed), and only
    then does `backup.json` (also renamed into place) point at them. A kill at
    any moment leaves a metadata file naming a complete weights file.

    Args:
        backup_dir: folder of the backup; deleted when training completes.
    """

    def __init__(self, backup_dir: str):
        super().__init__()
        self.backup_dir = backup_dir
        self._metadata_path = os.path.join(backup_dir, BACKUP_METADATA)
        self.completed = False

    def on_train_begin(self, logs=None):
        if not os.path.exists(self._metadata_path):
            return
        with open(self._metadata_path, encoding="utf-8") as f:
            metadata = json.load(f)
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, metadata["weights"]))
        self.model._initial_epoch = metadata["epoch"]  # what fit() resumes from

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{epoch + 1}.weights.h5"
        tmp = os.path.join(self.backup_dir, f".tmp-{name}")
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, os.path.join(self.backup_dir, name))
        write_json(self._metadata_path, {"epoch": epoch + 1, "weights": name})
        for old in glob.glob(os.path.join(self.backup_dir, "epoch-*.weights.h5")):
            if os.path.basename(old) != name:
                os.remove(old)

    def mark_completed(self) -> None:
        """Deletes the backup: the run finished and needs no resume point."""
        self.completed = True
        for path in glob.glob(os.path.join(self.backup_dir, "*")):
            os.remove(path)
        os.rmdir(self.backup_dir)


class BestCheckpoint(keras.callbacks.Callback):
    """Keeps the model with the highest `monitor` value as a `.keras` file.

    The best value so far is stored beside the file, so a resumed run keeps
    comparing against it. Both files are replaced atomically.

    Args:
        path: the `.keras` file.
        monitor: the logged value to maximise, e.g. `"val_mAP"`.
    """

    def __init__(self, path: str, monitor: str = "val_mAP"):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self._metadata_path = os.path.join(os.path.dirname(path), BEST_METADATA)

    def _best(self) -> float:
        if not os.path.exists(self._metadata_path):
            return float("-inf")
        with open(self._metadata_path, encoding="utf-8") as f:
            return float(json.load(f)["value"])

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not value > self._best():
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        save_model(self.model, self.path)
        write_json(
            self._metadata_path,
            {"monitor": self.monitor, "value": float(value), "epoch": epoch + 1},
        )


class NonFiniteLossError(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training with `NonFiniteLossError` at the first NaN/inf loss.

    Unlike `keras.callbacks.TerminateOnNaN`, it raises, so the run does not go on
    to save the broken weights and the resume point of the last good epoch is
    kept.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"The training loss became {loss} at batch {batch}. Training "
                "stopped; the last good epoch is kept in the workdir's backup/ "
                "and checkpoints/. Lower --lr or check the data."
            )
