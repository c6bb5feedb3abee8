r"""Trains a CSRA (or GAP baseline) classifier.

Every field of `csra_tf.config.TrainConfig` is a flag (same name, default and
help). A killed run started again with the same flags resumes.

Example:
    csra-train --workdir=runs/shapes_csra
    csra-train --workdir=runs/voc --flagfile=experiments/configs/voc2007_r101_csra.flags
    csra-train --workdir=runs/mine --dataset=data/train.jsonl --val_split=0.1 \
        --backbone=resnet50 --weights=resnet_50_imagenet --image_size=224
"""

from __future__ import annotations

import dataclasses
import os
import sys

import tensorflow as tf
from absl import flags

from csra_tf.cli.app import no_arguments, run_program
from csra_tf.cli.config_flags import config_from_flags, define_config_flags
from csra_tf.config import TrainConfig
from csra_tf.data import is_manifest
from csra_tf.metrics import format_table
from csra_tf.training import train, train_multi_worker

PROGRAM = "csra-train"
define_config_flags(TrainConfig, module_name=__name__, required=("workdir",))

OWN_DATA_FLAGFILE = "experiments/configs/own_data_resnet50.flags"
"""The template flagfile for photos of one's own (a pretrained ResNet-50)."""

_DEMO_BACKBONE = next(
    field.default
    for field in dataclasses.fields(TrainConfig)
    if field.name == "backbone"
)


def train_config() -> TrainConfig:
    """The `TrainConfig` of the parsed flags.

    Returns:
        The config.
    """
    return config_from_flags(TrainConfig, flags.FLAGS)


def own_data_hint(config: TrainConfig) -> str | None:
    """The one line that says a user's manifest would train the embedded demo's model.

    csra-train's defaults are the embedded demo's (the tiny backbone from
    scratch, 64 px, classifier normalisation off): right for the generated
    shapes, a toy for photos. When `dataset` is an existing manifest and the
    backbone is still the demo's, untrained, the program says so and points at
    the own-data flagfile; the run itself goes on as asked.

    Args:
        config: the run's config.

    Returns:
        The line to print, or None when the config needs none (the embedded
        default run, a named dataset, a pretrained or another backbone).
    """
    if (
        not is_manifest(config.dataset)
        or not os.path.isfile(config.dataset)  # a missing file is an error anyway
        or config.backbone != _DEMO_BACKBONE
        or config.weights is not None
    ):
        return None
    normalisation = "" if config.normalize else ", --nonormalize"
    return (
        f"{PROGRAM}: warning: --dataset={config.dataset} is your own data, but the "
        f"model is the embedded demo's (--backbone={config.backbone} trained from "
        f"scratch, --image_size={config.image_size}{normalisation}); for photos "
        f"start from a pretrained backbone: --flagfile={OWN_DATA_FLAGFILE} "
        "(docs/own_data.md)"
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
    no_arguments(argv, PROGRAM)
    config = train_config()
    hint = own_data_hint(config)
    if hint:
        print(hint, file=sys.stderr)
    # The multi-worker strategy must exist before any other TensorFlow op runs.
    strategy, is_chief = cluster_from_tf_config()
    if strategy is None:
        metrics = train(config)
    else:
        metrics = train_multi_worker(config, strategy, is_chief=is_chief)
    if is_chief:
        print(format_table(metrics))


def run():
    """Console-script entry point of `csra-train`."""
    run_program(main, PROGRAM, __name__)


if __name__ == "__main__":
    run()
