"""Trains a CSRA (or GAP baseline) classifier.

Example:
    csra-train --workdir=runs/shapes_csra
    csra-train --workdir=runs/voc --flagfile=experiments/configs/voc2007_r101_csra.flags
    csra-train --workdir=runs/mine --dataset=data/train.jsonl \
        --val_dataset=data/val.jsonl --backbone=resnet50 \
        --weights=resnet50_imagenet --image_size=224
"""

from __future__ import annotations

import tensorflow as tf
from absl import app, flags

from csra_tf.models import HEADS
from csra_tf.training import TrainConfig, format_table, train
from csra_tf.training.multi_worker import train_multi_worker

_DEFAULTS = TrainConfig(workdir="unused")

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "workdir", None, "Folder for everything the run writes.", required=True
)
flags.DEFINE_string(
    "dataset",
    _DEFAULTS.dataset,
    "shapes (embedded), voc2007, voc2012, coco2014, wider, or a manifest path.",
)
flags.DEFINE_string(
    "data_dir",
    _DEFAULTS.data_dir,
    "Dataset folder: '' = <workdir>/data for shapes, TFDS default for voc/coco; "
    "the WIDER-Attribute root for wider.",
)
flags.DEFINE_string("val_dataset", _DEFAULTS.val_dataset, "Validation manifest path.")
flags.DEFINE_string("image_root", _DEFAULTS.image_root, "Root of relative image paths.")
flags.DEFINE_integer("num_train", _DEFAULTS.num_train, "Embedded training images.")
flags.DEFINE_integer("num_val", _DEFAULTS.num_val, "Embedded validation images.")
flags.DEFINE_integer(
    "shapes_image_size", _DEFAULTS.shapes_image_size, "Embedded image side."
)
flags.DEFINE_string(
    "backbone", _DEFAULTS.backbone, "Backbone name, e.g. tiny, resnet101."
)
flags.DEFINE_string(
    "weights", None, "Backbone weights: preset name or local preset dir."
)
flags.DEFINE_enum(
    "head",
    _DEFAULTS.head,
    list(HEADS),
    "Classifier head: csra, gap (average pooling) or attention (spatial only).",
)
flags.DEFINE_integer("num_heads", _DEFAULTS.num_heads, "CSRA heads (1, 2, 4, 6, 8).")
flags.DEFINE_float("lam", _DEFAULTS.lam, "CSRA lambda.")
flags.DEFINE_boolean(
    "normalize",
    _DEFAULTS.normalize,
    "L2-normalise CSRA classifiers (the paper's flagfiles set it).",
)
flags.DEFINE_float("dropout", _DEFAULTS.dropout, "Dropout before the head.")
flags.DEFINE_integer("image_size", _DEFAULTS.image_size, "Model input side.")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Global batch size.")
flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Training epochs.")
flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch (default: one pass).")
flags.DEFINE_float("lr", _DEFAULTS.lr, "Backbone learning rate.")
flags.DEFINE_float(
    "head_lr_multiplier", _DEFAULTS.head_lr_multiplier, "Head lr factor."
)
flags.DEFINE_float("momentum", _DEFAULTS.momentum, "SGD momentum.")
flags.DEFINE_float("weight_decay", _DEFAULTS.weight_decay, "L2 weight decay.")
flags.DEFINE_enum("lr_schedule", _DEFAULTS.lr_schedule, ["step", "cosine"], "Decay.")
flags.DEFINE_float("warmup_epochs", _DEFAULTS.warmup_epochs, "Linear warm-up epochs.")
flags.DEFINE_float(
    "decay_epochs", _DEFAULTS.decay_epochs, "Epochs between step decays."
)
flags.DEFINE_float("decay_rate", _DEFAULTS.decay_rate, "Step decay factor.")
flags.DEFINE_enum(
    "unknown_as",
    _DEFAULTS.unknown_as,
    ["ignore", "negative"],
    "Treatment of unknown (-1) labels in training.",
)
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Random seed.")
flags.DEFINE_enum(
    "on_bad_record",
    _DEFAULTS.on_bad_record,
    ["error", "skip"],
    "Bad records: fail before training, or skip and count them.",
)
flags.DEFINE_boolean("randaugment", _DEFAULTS.randaugment, "RandAugment in training.")
flags.DEFINE_float(
    "randaugment_magnitude", _DEFAULTS.randaugment_magnitude, "RandAugment strength."
)
flags.DEFINE_boolean(
    "mixed_precision",
    _DEFAULTS.mixed_precision,
    "bfloat16 compute on CPU, float16 with loss scaling on GPU.",
)
flags.DEFINE_boolean("jit_compile", _DEFAULTS.jit_compile, "Compile steps with XLA.")


def config_from_flags() -> TrainConfig:
    """Builds the `TrainConfig` from the parsed flags.

    Returns:
        The config.
    """
    return TrainConfig(
        **{name: FLAGS[name].value for name in TrainConfig.__dataclass_fields__}
    )


def cluster_from_tf_config() -> tuple[tf.distribute.Strategy | None, bool]:
    """Reads `TF_CONFIG`: the multi-worker strategy and whether this is the chief.

    Returns:
        `(MultiWorkerMirroredStrategy, is_chief)` when `TF_CONFIG` names a
        cluster of several workers, else `(None, True)`.
    """
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    cluster = resolver.cluster_spec().as_dict()
    if len(cluster.get("chief", [])) + len(cluster.get("worker", [])) <= 1:
        return None, True
    strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    is_chief = resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in cluster
    )
    return strategy, is_chief


def main(argv):
    """absl main: trains (on one machine or a TF_CONFIG cluster), prints the table."""
    del argv
    # The multi-worker strategy must exist before any other TensorFlow op runs.
    strategy, is_chief = cluster_from_tf_config()
    config = config_from_flags()
    if strategy is None:
        metrics = train(config)
    else:
        metrics = train_multi_worker(config, strategy, is_chief=is_chief)
    if is_chief:
        print(format_table(metrics))


def run():
    """Console-script entry point of `csra-train`."""
    app.run(main)


if __name__ == "__main__":
    run()
