"""Callbacks of a training run and the workdir layout they write."""

from __future__ import annotations

import os

import keras

from csra_tf.training.checkpoints import (
    BestCheckpoint,
    ResumableBackup,
    StopOnNonFiniteLoss,
)

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
        `ResumableBackup` (crash-safe resume point in `backup/`, first in the
        list), `BestCheckpoint` of the best `monitor` (`checkpoints/best.keras`),
        TensorBoard, CSVLogger (appending on resume) and `StopOnNonFiniteLoss`.
    """
    return [
        ResumableBackup(os.path.join(workdir, BACKUP_DIR)),
        BestCheckpoint(os.path.join(workdir, BEST_CHECKPOINT), monitor=monitor),
        keras.callbacks.TensorBoard(os.path.join(workdir, TENSORBOARD_DIR)),
        keras.callbacks.CSVLogger(os.path.join(workdir, HISTORY_CSV), append=True),
        StopOnNonFiniteLoss(),
    ]
