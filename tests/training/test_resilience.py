"""Preemption (SIGKILL + rerun), mixed precision parity and XLA training."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from csra_tf.config import TrainConfig
from csra_tf.models import build_classifier
from csra_tf.optimization import MaskedBinaryCrossentropy
from csra_tf.training import train
from csra_tf.training.train_lib import dtype_policy

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}


def _command(workdir, data_dir):
    return [
        sys.executable, "-m", "csra_tf.cli.csra_train", f"--workdir={workdir}",
        f"--data_dir={data_dir}", "--num_train=192", "--num_val=64",
        "--shapes_image_size=32", "--image_size=32", "--batch_size=16", "--epochs=2",
    ]  # fmt: skip


def _history_epochs(workdir):
    path = os.path.join(workdir, "history.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One uninterrupted 2-epoch run; the killed runs below must end with its
    weights (mid-epoch backups only save, they do not change training)."""
    base = tmp_path_factory.mktemp("resilience")
    data_dir, workdir = base / "data", base / "clean"
    result = subprocess.run(
        _command(workdir, data_dir),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return data_dir, keras.saving.load_model(workdir / "model.keras", compile=False)


def _assert_same_weights(model, reference):
    for got, want in zip(model.weights, reference.weights, strict=True):
        np.testing.assert_allclose(
            np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5, err_msg=got.path
        )


@pytest.mark.slow
def test_sigkill_during_an_epoch_then_rerun_resumes_there(tmp_path, uninterrupted):
    data_dir, reference = uninterrupted
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _command(killed, data_dir),
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while len(_history_epochs(killed)) < 1 and time.time() < deadline:
        time.sleep(0.05)  # wait until epoch 1 is done ...
    time.sleep(0.5)  # ... and epoch 2 is under way
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert _history_epochs(killed) == [0]
    assert json.loads((killed / "backup" / "backup.json").read_text())["epoch"] == 1
    assert not (killed / "model.keras").exists()

    rerun = subprocess.run(
        _command(killed, data_dir), env=ENV, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    epochs_run = [
        line for line in rerun.stdout.splitlines() if line.startswith("Epoch ")
    ]
    assert epochs_run[0].startswith("Epoch 2/2"), epochs_run
    resumed = [line for line in rerun.stderr.splitlines() if "Resuming at" in line]
    assert len(resumed) == 1, rerun.stderr[-2000:]
    assert "Resuming at epoch 2, step 0, from the backup " in resumed[0]
    assert str(killed / "backup" / "epoch-1-step-0.weights.h5") in resumed[0]
    assert _history_epochs(killed) == [0, 1]
    assert not (killed / "backup").exists()
    # The stream restarts at the batch the backup had reached, with the same
    # order and augmentation: the resumed run ends where the uninterrupted one
    # does (up to float rounding).
    _assert_same_weights(
        keras.saving.load_model(killed / "model.keras", compile=False), reference
    )


@pytest.mark.slow
def test_sigkill_mid_epoch_resumes_at_the_step_with_the_same_data(
    tmp_path, uninterrupted
):
    # Backups every 3 steps: a run killed inside an epoch resumes at its last
    # backed-up step, the stream restarted at that batch with the order and
    # augmentation it would have had.
    data_dir, reference = uninterrupted
    killed = tmp_path / "killed"
    command = [*_command(killed, data_dir), "--backup_every_steps=3"]
    process = subprocess.Popen(
        command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    metadata_path = killed / "backup" / "backup.json"
    deadline = time.time() + 300
    position = (0, 0)
    while position < (1, 6) and time.time() < deadline:
        time.sleep(0.02)  # until a mid-epoch backup of the second epoch exists
        try:
            metadata = json.loads(metadata_path.read_text())
            position = (metadata["epoch"], metadata["step"])
        except (OSError, ValueError):
            pass
    process.send_signal(signal.SIGKILL)
    process.wait()
    metadata = json.loads(metadata_path.read_text())
    assert metadata["epoch"] == 1 and metadata["step"] % 3 == 0 and metadata["step"]
    assert not (killed / "model.keras").exists()

    rerun = subprocess.run(
        command, env=ENV, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "Epoch 2/2" in rerun.stdout and "Epoch 1/2" not in rerun.stdout
    _assert_same_weights(
        keras.saving.load_model(killed / "model.keras", compile=False), reference
    )


def test_mixed_bfloat16_loss_and_gradients_match_float32():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    targets = rng.integers(-1, 2, (8, 4)).astype("float32")
    keras.utils.set_random_seed(0)
    with dtype_policy(False):
        reference = build_classifier("tiny", 4, num_heads=2, image_size=32)
    with dtype_policy(True) as policy:
        mixed = build_classifier("tiny", 4, num_heads=2, image_size=32)
    assert policy == "mixed_bfloat16"
    mixed.set_weights(reference.get_weights())
    loss_fn = MaskedBinaryCrossentropy()

    def loss_and_grads(model):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = loss_fn(targets, logits)
        return logits, loss, tape.gradient(loss, model.trainable_variables)

    logits32, loss32, grads32 = loss_and_grads(reference)
    logits16, loss16, grads16 = loss_and_grads(mixed)
    assert logits16.dtype == tf.float32  # CSRA scores stay float32
    # bfloat16 keeps 8 bits of mantissa; measured: 0.2 % relative loss difference.
    assert float(loss16) == pytest.approx(float(loss32), rel=1e-2)
    # The update direction over all variables agrees (single small tensors such
    # as early BatchNorm offsets are dominated by bfloat16 rounding).
    a = np.concatenate([np.ravel(g) for g in grads32])
    b = np.concatenate([np.ravel(np.asarray(g, np.float32)) for g in grads16])
    cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    assert cosine > 0.97  # measured 0.985 on this seed


@pytest.mark.slow
def test_training_with_xla_and_mixed_precision(tmp_path):
    config = TrainConfig(
        workdir=str(tmp_path / "run"), data_dir=str(tmp_path / "data"),
        num_train=64, num_val=32, shapes_image_size=32, image_size=32,
        batch_size=16, epochs=1, jit_compile=True, mixed_precision=True,
    )  # fmt: skip
    metrics = train(config, verbose=0)
    assert 0.0 <= metrics["mAP"] <= 1.0
    with open(tmp_path / "run" / "history.csv") as f:
        logged = float(next(csv.DictReader(f))["val_mAP"])
    # The XLA-compiled streaming metric agrees with evaluate() on the same model.
    assert logged == pytest.approx(metrics["mAP"], abs=1e-5)
    assert keras.config.dtype_policy().name == "float32"  # restored afterwards
