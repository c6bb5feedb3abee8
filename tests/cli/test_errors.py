"""The console scripts as a person meets them: --help and one-line user errors."""

import os
import re
import shutil
import subprocess
import sys

import pytest

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}


def _command(script: str, module: str) -> list[str]:
    """The installed console script, or the module run with this Python."""
    installed = shutil.which(script, path=os.path.dirname(sys.executable))
    return [installed] if installed else [sys.executable, "-m", module]


def _run(script, module, *args, cwd=None):
    return subprocess.run(
        [*_command(script, module), *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


# TensorFlow's C++ start-up lines (`I0000 00:00:...`, `WARNING: All log
# messages before absl::InitializeLog() ...`, the CPU-feature notice) come from
# the library, not from the program.
_TF_LOG = re.compile(
    r"^([IWEF]\d{4} |WARNING: All log messages|To enable the following "
    r"instructions)"
)


def program_lines(stderr: str) -> list[str]:
    """The non-empty stderr lines the program itself wrote."""
    return [
        line for line in stderr.splitlines() if line.strip() and not _TF_LOG.match(line)
    ]


def _assert_one_line_error(result, program, *fragments):
    lines = program_lines(result.stderr)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{program}: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_train_help_lists_its_flags():
    result = _run("csra-train", "csra_tf.cli.csra_train", "--help")
    for flag in ("--workdir", "--lam", "--num_heads", "--temperatures", "--val_split"):
        assert flag in result.stdout, result.stdout[-2000:]
    assert "one temperature per head" in result.stdout
    for backbone in ("resnet101", "dinov2_base", "swin_tiny", "siglip2_so400m"):
        assert backbone in result.stdout, result.stdout[-2000:]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--lam=-1"], ["lam", "-1"]),
        (["--num_heads=3"], ["num_heads=3", "--temperatures"]),
        (["--num_heads=2", "--temperatures=1,x"], ["temperatures", "x"]),
        (["--head=mlp"], ["head", "mlp"]),
        (["--colour=red"], ["colour"]),
        (["--backbone=resnet7"], ["resnet7"]),
        (["--dataset=missing.jsonl"], ["missing.jsonl"]),
        (["surplus"], ["surplus"]),
    ],
)
def test_train_user_errors_are_one_line(tmp_path, monkeypatch, capsys, args, fragments):
    # In this process (the console script's own run(), flags parsed anew) to
    # keep the suite fast; the subprocess tests below cover the installed script.
    from absl import flags

    from csra_tf.cli import csra_train as train_cli

    monkeypatch.chdir(tmp_path)
    argv = [
        "csra-train",
        f"--workdir={tmp_path / 'run'}",
        "--num_train=8",
        "--num_val=8",
        "--shapes_image_size=32",
        "--image_size=32",
        *args,
    ]
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
    _assert_one_line_error(result, "csra-train", *fragments)


def test_the_installed_train_script_reports_one_line(tmp_path):
    result = _run(
        "csra-train",
        "csra_tf.cli.csra_train",
        f"--workdir={tmp_path / 'run'}",
        "--lam=-1",
        cwd=tmp_path,
    )
    _assert_one_line_error(result, "csra-train", "lam", "-1")


def test_eval_export_predict_user_errors_are_one_line(tmp_path):
    missing = str(tmp_path / "nothing")
    result = _run("csra-eval", "csra_tf.cli.csra_eval", f"--workdir={missing}")
    _assert_one_line_error(result, "csra-eval", "config.json", missing)
    result = _run("csra-export", "csra_tf.cli.csra_export", f"--workdir={missing}")
    _assert_one_line_error(result, "csra-export", missing)
    result = _run(
        "csra-predict", "csra_tf.cli.csra_predict", f"--model={missing}.keras", "a.jpg"
    )
    _assert_one_line_error(result, "csra-predict", "nothing.keras")
