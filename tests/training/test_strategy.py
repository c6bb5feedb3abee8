"""MirroredStrategy over two logical CPUs trains exactly like one device."""

import json
import os
import subprocess
import sys

import pytest

import csra_tf.training.strategy as strategy_lib


def test_default_strategy_without_several_devices():
    import tensorflow as tf

    assert strategy_lib.create_strategy() is tf.distribute.get_strategy()


@pytest.mark.slow
def test_two_replicas_match_one_replica_with_double_batch():
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    script = os.path.join(os.path.dirname(__file__), "mirrored_worker.py")
    result = subprocess.run(
        [sys.executable, script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # Two optimizer steps of batch 8 = 2 replicas x 4 (synchronised BatchNorm).
    # Weights differ by rounding only: at most 0.24 % of a weight's own update
    # with AVX2 matrix kernels (the first convolution's gradient sums 8192
    # products per device), 0.009 % with AVX-512; unsynchronised BatchNorm
    # statistics differ by 107 % of it.
    assert report["max_diff_per_update"] < 1e-2, report
    assert report["loss"][0] == pytest.approx(report["loss"][1], abs=1e-5)
    assert report["fit_mAP"][0] == pytest.approx(report["fit_mAP"][1], abs=1e-6)
    assert report["eval_mAP"][0] == pytest.approx(report["eval_mAP"][1], abs=1e-6)
