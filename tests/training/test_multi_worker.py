"""Two loopback workers train the tiny model with `train_multi_worker`."""

import json
import os
import re
import socket
import subprocess
import sys

import keras
import pytest

from csra_tf import data, models

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
_TIMEOUT_S = 150
_EXIT_CODE_KILLED = 3  # multi_worker_helper.EXIT_CODE_KILLED
_NUM_TRAIN, _NUM_VAL, _IMAGE_SIZE = 64, 32, 32


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _config(tmp_path, **overrides) -> dict:
    config = dict(
        backbone="tiny",
        image_size=_IMAGE_SIZE,
        shapes_image_size=_IMAGE_SIZE,
        num_train=_NUM_TRAIN,
        num_val=_NUM_VAL,
        batch_size=16,
        epochs=1,
        data_dir=str(tmp_path / "data"),
    )
    return {**config, **overrides}


def _make_data(tmp_path) -> None:
    """Generates the shapes splits once, so the workers don't race to do it."""
    for split in ("train", "val"):
        data.shapes(
            tmp_path / "data",
            split,
            image_size=_IMAGE_SIZE,
            num_train=_NUM_TRAIN,
            num_val=_NUM_VAL,
            seed=0,
            progress=False,
        )


def _run_workers(tmp_path, config, run_name, exit_after_saves=0):
    """Runs a two-worker cluster to the end; worker i trains in `workdirs[i]`.

    Returns:
        `(exit codes, logs)`; `None` codes when the timeout killed the workers.
    """
    ports = _free_ports(2)
    workdirs = [str(tmp_path / "chief"), str(tmp_path / "worker1")]
    workers = []
    for index in range(2):
        tf_config = {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps(tf_config),
            KERAS_BACKEND="tensorflow",
            TF_CPP_MIN_LOG_LEVEL="2",
            CUDA_VISIBLE_DEVICES="",
        )
        command = [
            sys.executable,
            "-m",
            "tests.training.multi_worker_helper",
            json.dumps(dict(config, workdir=workdirs[index])),
            "1" if index == 0 else "0",
            str(exit_after_saves),
        ]
        log = open(tmp_path / f"{run_name}-{index}.log", "w", encoding="utf-8")
        process = subprocess.Popen(
            command, cwd=_REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        workers.append((process, log))
    try:
        codes = [process.wait(timeout=_TIMEOUT_S) for process, _ in workers]
    except subprocess.TimeoutExpired:
        codes = None
    finally:
        for process, log in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    logs = [(tmp_path / f"{run_name}-{i}.log").read_text() for i in range(2)]
    return codes, logs


def _tails(logs: list[str]) -> str:
    return "\n".join(f"--- worker {i} ---\n{log[-3000:]}" for i, log in enumerate(logs))


def _checksum(log: str) -> float:
    return float(re.search(r"^CHECKSUM (\S+)$", log, re.MULTILINE).group(1))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One uninterrupted two-worker run (2 epochs, backups every 2 of the 4
    steps of an epoch): checked below, and the state a killed-and-resumed run
    must end with. Returns `(folder of the run, the chief's and worker 1's logs)`.
    """
    tmp_path = tmp_path_factory.mktemp("multi_worker_reference")
    _make_data(tmp_path)
    config = _config(tmp_path, epochs=2, backup_every_steps=2)
    codes, logs = _run_workers(tmp_path, config, "reference")
    assert codes == [0, 0], _tails(logs)
    return tmp_path, logs


@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_writes(uninterrupted):
    tmp_path, logs = uninterrupted
    files = {
        name: sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob(name))
        for name in ("model.keras", "metrics.json")
    }
    assert files == {
        "model.keras": [os.path.join("chief", "model.keras")],
        "metrics.json": [os.path.join("chief", "metrics.json")],
    }, _tails(logs)
    chief = tmp_path / "chief"
    assert (chief / "config.json").exists() and (chief / "classes.json").exists()
    assert not (chief / "backup").exists()  # deleted once the run completed
    assert not (tmp_path / "worker1").exists()
    # The replicas stayed in sync: both hold the same weights and optimizer state.
    assert _checksum(logs[1]) == pytest.approx(_checksum(logs[0]), rel=1e-6)

    metrics = json.loads((chief / "metrics.json").read_text())
    assert 0.0 <= metrics["mAP"] <= 1.0
    assert metrics["class_names"] == list(data.SHAPE_CLASSES)
    assert models  # imported: registers the custom objects for safe-mode loading
    model = keras.saving.load_model(chief / "model.keras", safe_mode=True)
    assert model.output_shape == (None, len(data.SHAPE_CLASSES))
    assert int(model.optimizer.iterations.numpy()) == 8  # 2 epochs x 4 steps


@pytest.mark.slow
def test_killed_runs_resume_mid_epoch_then_at_the_next_epoch_with_the_same_data(
    tmp_path, uninterrupted
):
    # Backups every 2 of the 4 steps of an epoch. First both workers die right
    # after the first backup (epoch 1, step 2): the rerun resumes at that step.
    # That rerun dies after its own first backup, the end of epoch 1: the next
    # rerun starts at epoch 2, and the chief's restored counters reach the
    # other worker, which has no backup of its own. The last run ends with the
    # state of the uninterrupted run, from the batch the stream had reached.
    _, reference = uninterrupted
    _make_data(tmp_path)
    config = _config(tmp_path, epochs=2, backup_every_steps=2)
    codes, logs = _run_workers(tmp_path, config, "killed", exit_after_saves=1)
    assert codes == [_EXIT_CODE_KILLED] * 2, _tails(logs)
    assert os.listdir(tmp_path / "chief" / "backup")

    codes, logs = _run_workers(tmp_path, config, "mid_epoch", exit_after_saves=1)
    assert codes == [_EXIT_CODE_KILLED] * 2, _tails(logs)
    # Resumed inside epoch 1: steps 3-4 trained, then the epoch's backup.
    assert "Epoch 1/2" in logs[0] and "Epoch 2/2" not in logs[0], _tails(logs)

    codes, logs = _run_workers(tmp_path, config, "next_epoch")
    assert codes == [0, 0], _tails(logs)
    assert "Epoch 2/2" in logs[0] and "Epoch 1/2" not in logs[0], _tails(logs)
    # Saves after the restart: epoch 2 step 2, end of epoch 2, on each worker.
    assert [log.count("SAVED") for log in logs] == [2, 2], _tails(logs)
    assert _checksum(logs[1]) == pytest.approx(_checksum(logs[0]), rel=1e-6)
    assert _checksum(logs[0]) == pytest.approx(_checksum(reference[0]), rel=1e-6)
    assert not (tmp_path / "worker1").exists()
    # The optimizer state was restored: 2 epochs x 4 steps.
    model = keras.saving.load_model(tmp_path / "chief" / "model.keras")
    assert int(model.optimizer.iterations.numpy()) == 8
