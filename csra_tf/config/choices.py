"""The allowed values of every choice-valued setting, each spelled once.

Flags, `TrainConfig` validation and the library builders all import these
tuples, so a new choice is added in one place.
"""

HEADS = ("csra", "gap", "attention")
"""Classifier heads: CSRA, global average pooling + Dense, attention alone."""

NAMED_DATASETS = ("shapes", "voc2007", "voc2012", "coco2014", "wider")
"""Datasets known by name; any other `dataset` value is a manifest path."""

LR_SCHEDULES = ("step", "cosine")
"""Learning-rate decay after the warm-up."""

UNKNOWN_AS = ("ignore", "negative")
"""How unknown (-1) labels are treated in training."""

AUGMENTATIONS = ("crop_flip", "flip", "none")
"""Training augmentation: random resized crop + flip, flip alone, or none."""

ON_BAD_RECORD = ("error", "skip")
"""What a data source does with a bad record: fail naming it, or skip it."""

PIXEL_NORMALIZATIONS = ("unit", "imagenet", "symmetric")
"""Input scalings of the backbones' weights: pixels / 255; ImageNet mean / std;
[-1, 1] (`csra_tf.layers.PixelNormalization`)."""

MAX_POOLING = float("inf")
"""Temperature that turns the attention of a head into max pooling (T -> inf)."""

DEFAULT_TEMPERATURES = {
    1: (1.0,),
    2: (1.0, MAX_POOLING),
    4: (1.0, 2.0, 4.0, MAX_POOLING),
    6: (1.0, 2.0, 3.0, 4.0, 5.0, MAX_POOLING),
    8: (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, MAX_POOLING),
}
"""The paper's temperature sequence for each supported number of heads."""
