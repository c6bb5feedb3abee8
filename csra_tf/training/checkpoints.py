"""Crash-safe checkpoints: every file is written aside, then renamed into place."""

from __future__ import annotations

import glob
import json
import math
import os

import keras

from csra_tf.errors import UserError
from csra_tf.run_folder import BACKUP_METADATA, BEST_METADATA, save_model, write_json


class ResumableBackup(keras.callbacks.Callback):
    """Saves weights + optimizer state every epoch (and every N steps) to resume.

    Like `keras.callbacks.BackupAndRestore`, but crash-safe and finer: after
    epoch e, or after step s of the epoch that follows e finished epochs, the
    weights go to `epoch-<e>-step-<s>.weights.h5` (written aside, then
    renamed), and only then does `backup.json` (also renamed into place) point
    at them with `{"epoch": e, "step": s}`. A kill at any moment leaves a
    metadata file naming a complete weights file. `position()` tells the
    trainer where to resume; the training stream restarts at that batch
    (`build_dataset(..., start_batch=...)`), so the resumed run sees the data
    and augmentation it would have seen.

    Args:
        backup_dir: folder of the backup; deleted when training completes.
        every_steps: also save every this many steps within an epoch (0: at
            epoch ends only).
    """

    def __init__(self, backup_dir: str, every_steps: int = 0):
        super().__init__()
        if every_steps < 0:
            raise UserError(
                f"`every_steps` must be >= 0. Received: every_steps={every_steps}"
            )
        self.backup_dir = backup_dir
        self.every_steps = int(every_steps)
        self._metadata_path = os.path.join(backup_dir, BACKUP_METADATA)
        self.completed = False
        self._restored = False
        self._epoch = 0
        self._step_offset = 0

    def position(self) -> tuple[int, int]:
        """`(finished epochs, finished steps of the next epoch)` of the backup.

        Returns:
            `(0, 0)` without a backup.
        """
        if not os.path.exists(self._metadata_path):
            return 0, 0
        with open(self._metadata_path, encoding="utf-8") as f:
            metadata = json.load(f)
        return int(metadata["epoch"]), int(metadata.get("step", 0))

    def resume_message(self) -> str | None:
        """One line saying where a run resumes, or None without a backup.

        Returns:
            "Resuming at epoch E, step S, from the backup <file>." (E counts
            from 1, S is the steps of epoch E already done).
        """
        if not os.path.exists(self._metadata_path):
            return None
        with open(self._metadata_path, encoding="utf-8") as f:
            metadata = json.load(f)
        weights = os.path.join(self.backup_dir, metadata["weights"])
        return (
            f"Resuming at epoch {int(metadata['epoch']) + 1}, step "
            f"{int(metadata.get('step', 0))}, from the backup {weights}."
        )

    def start_epoch_at_step(self, step: int) -> None:
        """The next epoch of `fit` starts `step` steps in (a resumed partial epoch).

        Args:
            step: the steps of that epoch already done before the restart.
        """
        self._step_offset = int(step)

    def on_train_begin(self, logs=None):
        if self._restored or not os.path.exists(self._metadata_path):
            return
        with open(self._metadata_path, encoding="utf-8") as f:
            metadata = json.load(f)
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, metadata["weights"]))
        # With a plain `fit`, resume after the finished epochs (the trainer
        # passes `initial_epoch` itself, and restarts a partial epoch's stream).
        self.model._initial_epoch = int(metadata["epoch"])
        self._restored = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self._step_offset + batch + 1
        if self.every_steps and step % self.every_steps == 0:
            self._save(self._epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        self._step_offset = 0
        self._save(epoch + 1, 0)

    def _save(self, epoch: int, step: int) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{epoch}-step-{step}.weights.h5"
        tmp = os.path.join(self.backup_dir, f".tmp-{name}")
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, os.path.join(self.backup_dir, name))
        write_json(self._metadata_path, {"epoch": epoch, "step": step, "weights": name})
        self._restored = True  # the model now holds what the backup holds
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
