"""The callbacks of a training run, writing into the run folder."""

from __future__ import annotations

import os

import keras

from csra_tf import run_folder
from csra_tf.training.checkpoints import (
    BestCheckpoint,
    ResumableBackup,
    StopOnNonFiniteLoss,
)


def create_callbacks(
    workdir: str, monitor: str = "val_mAP", backup_every_steps: int = 0
) -> list[keras.callbacks.Callback]:
    """Builds the standard callbacks writing into `workdir`.

    Args:
        workdir: the run folder.
        monitor: the validation metric whose maximum selects the best checkpoint.
        backup_every_steps: also back up every this many steps within an epoch.

    Returns:
        `ResumableBackup` (crash-safe resume point in `backup/`, first in the
        list), `BestCheckpoint` of the best `monitor` (`checkpoints/best.keras`),
        TensorBoard, CSVLogger (appending on resume) and `StopOnNonFiniteLoss`.
    """
    return [
        ResumableBackup(
            os.path.join(workdir, run_folder.BACKUP_DIR), backup_every_steps
        ),
        BestCheckpoint(
            os.path.join(workdir, run_folder.BEST_CHECKPOINT), monitor=monitor
        ),
        keras.callbacks.TensorBoard(os.path.join(workdir, run_folder.TENSORBOARD_DIR)),
        keras.callbacks.CSVLogger(
            os.path.join(workdir, run_folder.HISTORY_FILE), append=True
        ),
        StopOnNonFiniteLoss(),
    ]
