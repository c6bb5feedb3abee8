"""A finished training run read back from its workdir: config, model, val data."""

from __future__ import annotations

import dataclasses
import os

import keras
import tensorflow as tf

from csra_tf.data import Source, build_dataset
from csra_tf.training.config import TrainConfig
from csra_tf.training.data_sources import load_sources
from csra_tf.training.train_lib import CONFIG_FILE, MODEL_FILE


@dataclasses.dataclass(frozen=True)
class SavedRun:
    """A `csra-train` workdir's config, saved model and validation source.

    Args:
        config: the run's `config.json`.
        model: the saved classifier (loaded uncompiled, `safe_mode=True`).
        val_source: the run's validation data.
    """

    config: TrainConfig
    model: keras.Model
    val_source: Source

    def val_batches(self, batch_size: int | None = None) -> tf.data.Dataset:
        """The validation data as evaluation batches, in source order.

        Args:
            batch_size: images per batch; default the run's batch size.

        Returns:
            A dataset of `(images (B, S, S, 3), targets (B, C))` batches.
        """
        return build_dataset(
            self.val_source,
            image_size=self.config.image_size,
            batch_size=batch_size or self.config.batch_size,
            training=False,
        )


def load_run(workdir: str, checkpoint: str | None = None) -> SavedRun:
    """Reads a finished run back: its config, model and validation source.

    Args:
        workdir: a `csra-train` workdir (holds config.json and model.keras).
        checkpoint: model file; default `<workdir>/model.keras`.

    Returns:
        The `SavedRun`.

    Raises:
        ValueError: when the config or the model file is missing.
    """
    config_path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(config_path):
        raise ValueError(
            f"No {CONFIG_FILE} in the workdir. Received: workdir={workdir}"
        )
    config = TrainConfig.load(config_path)
    checkpoint = checkpoint or os.path.join(workdir, MODEL_FILE)
    if not os.path.exists(checkpoint):
        raise ValueError(
            f"The model file does not exist. Received: checkpoint={checkpoint}"
        )
    model = keras.saving.load_model(checkpoint, compile=False, safe_mode=True)
    _, val_source = load_sources(config)
    return SavedRun(config, model, val_source)
