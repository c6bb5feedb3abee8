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

import tensorflow as tf
from absl import flags

from csra_tf.cli.app import no_arguments, run_program
from csra_tf.cli.config_flags import config_from_flags, define_config_flags
from csra_tf.config import TrainConfig
from csra_tf.metrics import format_table
from csra_tf.training import train, train_multi_worker

PROGRAM = "csra-train"
define_config_flags(TrainConfig, module_name=__name__, required=("workdir",))


def train_config() -> TrainConfig:
    """The `TrainConfig` of the parsed flags.

    Returns:
        The config.
    """
    return config_from_flags(TrainConfig, flags.FLAGS)


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
