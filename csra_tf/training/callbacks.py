"""Callbacks of a training run and the workdir layout they write."""

from __future__ import annotations

import os

import keras

BEST_CHECKPOINT = os.path.join("checkpoints", "best.keras")
BACKUP_DIR = "backup"
TENSORBOARD_DIR = "tensorboard"
HISTORY_CSV = "history.csv"


def create_callbacks(
    workdir: str, monitor: str = "val_mAP"
) -> list[keras.callbacks.Callback]:
    """Builds the standard callbacks writing into `workdir`.

    Args:
        workdir: the run folder.
        monitor: the validation metric whose maximum selects the best checkpoint.

    Returns:
        BackupAndRestore (resumes an interrupted run), ModelCheckpoint of the best
        `monitor` to `checkpoints/best.keras`, TensorBoard, CSVLogger (appending
        on resume) and TerminateOnNaN.
    """
    os.makedirs(os.path.join(workdir, os.path.dirname(BEST_CHECKPOINT)), exist_ok=True)
    return [
        keras.callbacks.BackupAndRestore(os.path.join(workdir, BACKUP_DIR)),
        keras.callbacks.ModelCheckpoint(
            os.path.join(workdir, BEST_CHECKPOINT),
            monitor=monitor,
            mode="max",
            save_best_only=True,
        ),
        keras.callbacks.TensorBoard(os.path.join(workdir, TENSORBOARD_DIR)),
        keras.callbacks.CSVLogger(os.path.join(workdir, HISTORY_CSV), append=True),
        keras.callbacks.TerminateOnNaN(),
    ]
