"""End to end through the console entry points: csra-train then csra-eval."""

import json
import os
import subprocess
import sys

import pytest

from tests.cli.test_errors import program_lines

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
TINY_RUN = [
    "--num_train=96",
    "--num_val=48",
    "--shapes_image_size=32",
    "--image_size=32",
    "--batch_size=16",
    "--epochs=2",
]


def _run(module, *args):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_train_then_eval_writes_the_workdir(tmp_path):
    workdir = str(tmp_path / "run")
    result = _run("csra_tf.cli.csra_train", f"--workdir={workdir}", *TINY_RUN)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in (
        "config.json",
        "classes.json",
        "model.keras",
        "metrics.json",
        "history.csv",
        os.path.join("checkpoints", "best.keras"),
    ):
        assert os.path.exists(os.path.join(workdir, name)), name
    assert not os.path.exists(os.path.join(workdir, "backup")), (
        "backup kept after success"
    )
    metrics = json.load(open(os.path.join(workdir, "metrics.json")))
    for key in ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "mAP_top3", "OF1_top3"):
        assert 0.0 <= metrics[key] <= 1.0
    assert len(metrics["AP"]) == len(metrics["class_names"]) >= 8
    config = json.load(open(os.path.join(workdir, "config.json")))
    assert config["image_size"] == 32 and config["head"] == "csra"

    result = _run("csra_tf.cli.csra_eval", f"--workdir={workdir}")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-3].split() == ["mAP", "CP", "CR", "CF1", "OP", "OR", "OF1"]
    row = lines[-2].split()
    assert row[0] == "all"
    assert float(row[1]) == pytest.approx(100 * metrics["mAP"], abs=0.01)
    assert lines[-1].split()[0] == "top-3"

    # The same workdir with a different head is refused, not silently mixed.
    result = _run(
        "csra_tf.cli.csra_train", f"--workdir={workdir}", *TINY_RUN, "--head=gap"
    )
    assert result.returncode == 2
    assert "head: 'csra' -> 'gap'" in result.stderr
    assert program_lines(result.stderr) == [
        line for line in program_lines(result.stderr) if "csra-train: error:" in line
    ]
    assert len(program_lines(result.stderr)) == 1, result.stderr


def test_flagfile_sets_flags(tmp_path):
    from absl import flags

    import csra_tf.cli.csra_train as train_cli

    flagfile = tmp_path / "run.flags"
    flagfile.write_text("--head=gap\n--lam=0.3\n--image_size=48\n")
    flags.FLAGS.unparse_flags()
    flags.FLAGS(
        ["csra-train", f"--workdir={tmp_path}", f"--flagfile={flagfile}", "--epochs=3"]
    )
    try:
        config = train_cli.train_config()
    finally:
        flags.FLAGS.unparse_flags()
    assert (config.head, config.lam, config.image_size, config.epochs) == (
        "gap",
        0.3,
        48,
        3,
    )
    assert config.workdir == str(tmp_path)
