"""csra-train says so when a user's manifest would train the embedded demo's model."""

import dataclasses
import os
import subprocess
import sys

import pytest
from absl import flags

from csra_tf.cli import csra_train as train_cli
from csra_tf.config import TrainConfig
from tests.cli.test_errors import program_lines
from tests.programs import REPO


def _manifest(tmp_path) -> str:
    path = tmp_path / "labels.csv"
    path.write_text("image,labels\nmissing.jpg,cat\n", encoding="utf-8")
    return str(path)


def _parse(*args) -> TrainConfig:
    try:
        flags.FLAGS(["csra-train", "--workdir=unused", *args])
        return train_cli.train_config()
    finally:
        flags.FLAGS.unparse_flags()


def test_a_manifest_with_the_demo_model_gets_one_line_naming_the_flagfile(tmp_path):
    manifest = _manifest(tmp_path)
    hint = train_cli.own_data_hint(_parse(f"--dataset={manifest}"))
    assert hint is not None and "\n" not in hint
    assert hint.startswith("csra-train: warning: ")
    for fragment in (
        f"--dataset={manifest}",
        "--backbone=tiny",
        "--image_size=64",
        "--nonormalize",
        "--flagfile=experiments/configs/own_data_resnet50.flags",
    ):
        assert fragment in hint, hint
    assert os.path.isfile(os.path.join(REPO, train_cli.OWN_DATA_FLAGFILE))


def test_no_line_for_the_embedded_run_a_pretrained_backbone_or_a_missing_file(
    tmp_path,
):
    manifest = _manifest(tmp_path)
    assert train_cli.own_data_hint(_parse()) is None  # the embedded default run
    assert train_cli.own_data_hint(_parse("--dataset=voc2007")) is None
    # A missing manifest is reported by the run's own one-line error instead.
    assert train_cli.own_data_hint(_parse("--dataset=missing.jsonl")) is None
    config = _parse(f"--dataset={manifest}")
    for change in (
        dict(backbone="resnet50"),
        dict(weights=str(tmp_path / "model.weights.h5")),
    ):
        assert train_cli.own_data_hint(dataclasses.replace(config, **change)) is None
    flagfile = os.path.join(REPO, train_cli.OWN_DATA_FLAGFILE)
    mine = _parse(f"--flagfile={flagfile}", f"--dataset={manifest}")
    assert (mine.backbone, mine.dataset) == ("resnet50", manifest)
    assert train_cli.own_data_hint(mine) is None


def test_the_program_prints_the_line_before_it_runs(tmp_path, monkeypatch, capsys):
    # In process, as the console script's run(); the manifest names a missing
    # image, so the run stops with its one-line error right after the hint.
    manifest = _manifest(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = ["csra-train", f"--workdir={tmp_path / 'run'}", f"--dataset={manifest}"]
    monkeypatch.setattr(sys, "argv", argv)
    flags.FLAGS.unparse_flags()
    try:
        with pytest.raises(SystemExit) as exit_info:
            train_cli.run()
    finally:
        flags.FLAGS.unparse_flags()
    result = subprocess.CompletedProcess(
        argv, exit_info.value.code, *capsys.readouterr()
    )
    lines = program_lines(result.stderr)
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 2, lines
    assert lines[0].startswith("csra-train: warning: "), lines
    assert "own_data_resnet50.flags" in lines[0]
    assert lines[1].startswith("csra-train: error: "), lines
