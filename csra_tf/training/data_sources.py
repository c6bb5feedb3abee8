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
    if config.dataset == "shapes":
        kwargs = dict(
            image_size=config.shapes_image_size,
            num_train=config.num_train,
            num_val=config.num_val,
            seed=config.seed,
        )
        data_dir = config.resolved_data_dir()
        return (
            data.shapes(data_dir, split="train", **kwargs),
            data.shapes(data_dir, split="val", **kwargs),
        )
    image_root = config.image_root or None
    train = data.manifest(config.dataset, image_root=image_root)
    val = data.manifest(
        config.val_dataset, image_root=image_root, class_names=train.class_names
    )
    return train, val
