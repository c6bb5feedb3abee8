"""Resolving a config's dataset into training and validation sources."""

from __future__ import annotations

from csra_tf import data
from csra_tf.training.config import TrainConfig


def load_sources(config: TrainConfig) -> tuple[data.Source, data.Source]:
    """Returns the (train, validation) sources named by `config.dataset`.

    Args:
        config: the run's configuration.

    Returns:
        Two `csra_tf.data.Source`s with the same class names.
    """
    data_dir = (
        config.resolved_data_dir() if config.dataset == "shapes" else config.data_dir
    )
    return data.train_val_sources(
        config.dataset,
        data_dir=data_dir or None,
        val_dataset=config.val_dataset or None,
        image_root=config.image_root or None,
        on_bad_record=config.on_bad_record,
        seed=config.seed,
        shapes_image_size=config.shapes_image_size,
        shapes_num_train=config.num_train,
        shapes_num_val=config.num_val,
    )
