"""Run configuration: the `TrainConfig` dataclass and the allowed values.

Public API:
    TrainConfig           everything a training run depends on (config.json)
    HEADS, NAMED_DATASETS, LR_SCHEDULES, UNKNOWN_AS, ON_BAD_RECORD,
    PIXEL_NORMALIZATIONS, AUGMENTATIONS
                          the allowed values of the choice-valued settings
    DEFAULT_TEMPERATURES  the paper's temperatures per head count
    MAX_POOLING           the temperature that means max pooling (inf)
    check_class_names     validates a class-name list
    save_class_names, load_class_names
                          classes.json, written and read with that check

This package sits at the bottom of csra-tf: it imports nothing heavy, and flags
(`csra_tf.cli`) and builders take their values from here.
"""

from csra_tf.config.choices import (
    AUGMENTATIONS,
    DEFAULT_TEMPERATURES,
    HEADS,
    LR_SCHEDULES,
    MAX_POOLING,
    NAMED_DATASETS,
    ON_BAD_RECORD,
    PIXEL_NORMALIZATIONS,
    UNKNOWN_AS,
)
from csra_tf.config.class_names import (
    check_class_names,
    load_class_names,
    save_class_names,
)
from csra_tf.config.train_config import TrainConfig

__all__ = [
    "AUGMENTATIONS",
    "DEFAULT_TEMPERATURES",
    "HEADS",
    "LR_SCHEDULES",
    "MAX_POOLING",
    "NAMED_DATASETS",
    "ON_BAD_RECORD",
    "PIXEL_NORMALIZATIONS",
    "UNKNOWN_AS",
    "TrainConfig",
    "check_class_names",
    "load_class_names",
    "save_class_names",
]
