"""One worker of test_multi_worker.py, run in its own process.

Usage: `python -m tests.training.multi_worker_helper CONFIG_JSON IS_CHIEF
[EXIT_AFTER_SAVES]`, with `TF_CONFIG` naming the cluster and this worker's task.
Prints `CHECKSUM <float>` of the trained model and optimizer state, `SAVED <n>`
after each backup and, on the chief, `METRICS <json>`. With
`EXIT_AFTER_SAVES`, the process dies (exit code 3, no clean-up) right after its
n-th backup, as a killed run would.
"""

import json
import os
import shutil
import sys

import numpy as np
import tensorflow as tf

EXIT_CODE_KILLED = 3


def main(argv: list[str]) -> None:
    """Creates the strategy first (TensorFlow requires it), then trains."""
    config_json, is_chief = argv[1], argv[2] == "1"
    exit_after_saves = int(argv[3]) if len(argv) > 3 else 0
    strategy = tf.distribute.MultiWorkerMirroredStrategy()

    from csra_tf.config import TrainConfig
    from csra_tf.training import multi_worker

    state = []
    broadcast = multi_worker._broadcast_from_chief

    def recording_broadcast(strategy, variables):
        state.extend(variables)
        broadcast(strategy, variables)

    multi_worker._broadcast_from_chief = recording_broadcast

    saves = []
    save = tf.train.CheckpointManager.save

    def counting_save(manager, *args, **kwargs):
        path = save(manager, *args, **kwargs)
        saves.append(path)
        print("SAVED", len(saves), flush=True)
        if len(saves) == exit_after_saves:
            if not is_chief:
                shutil.rmtree(manager.directory, ignore_errors=True)
            os._exit(EXIT_CODE_KILLED)
        return path

    tf.train.CheckpointManager.save = counting_save

    metrics = multi_worker.train_multi_worker(
        TrainConfig(**json.loads(config_json)), strategy, is_chief=is_chief
    )
    checksum = sum(float(np.abs(np.asarray(v, np.float64)).sum()) for v in state)
    print("CHECKSUM", repr(checksum), flush=True)
    print("METRICS", json.dumps({k: float(v) for k, v in metrics.items() if k != "AP"}))


if __name__ == "__main__":
    main(sys.argv)
