"""Console scripts print their own output only (TensorFlow's notices hidden)."""

import os
import shutil
import subprocess
import sys

import pytest

from csra_tf import _startup

# A user's shell: none of the settings the suite uses to quiet TensorFlow.
USER_ENV = {
    key: value
    for key, value in os.environ.items()
    if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")
}
USER_ENV["KERAS_BACKEND"] = "tensorflow"

# Lines TensorFlow 2.21 wrote on a CPU machine while being imported.
NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written "
    "to STDERR",
    "I0000 00:00:1796518703.652583    6014 port.cc:153] oneDNN custom operations "
    "are on. You may see slightly different numerical results due to "
    "floating-point round-off errors from different computation orders. To turn "
    "them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796518703.652928    6014 cudart_stub.cc:31] Could not find cuda "
    "drivers on your machine, GPU will not be used.",
    "I0000 00:00:1796518703.700445    6014 cpu_feature_guard.cc:227] This "
    "TensorFlow binary is optimized to use available CPU instructions in "
    "performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 "
    "FMA, in other operations, rebuild TensorFlow with the appropriate compiler "
    "flags.",
    "E0000 00:00:1796518670.788383    5779 cuda_platform.cc:52] failed call to "
    "cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]


def test_notices_are_hidden_and_everything_else_is_kept(capfd):
    real_error = "E0000 00:00:1796518670.788383 5779 op_kernel.cc:1] out of memory"
    with _startup.filtered_native_stderr():
        os.write(
            2, ("\n".join([*NOTICES[:3], real_error, *NOTICES[3:]]) + "\n").encode()
        )
        os.write(2, b"Traceback-like line from a library\n")
    captured = capfd.readouterr()
    assert captured.err.splitlines() == [
        real_error,
        "Traceback-like line from a library",
    ]
    assert _startup.startup_notices()[-len(NOTICES) :] == NOTICES


def test_converter_chatter_is_hidden_even_after_a_progress_bar(capfd):
    bar = "\r     float32:   0%|          | 0/32 [00:00<?, ?img/s, converting]"
    chatter = [
        "W0000 00:00:1796521953.931499   27187 tf_tfl_flatbuffer_helpers.cc:364] "
        "Ignored output_format.",
        "I0000 00:00:1796521953.931778   27187 reader.cc:83] Reading SavedModel "
        "from: /tmp/tmp78sp6lmh",
        "fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, "
        "output_inference_type: UINT8",
    ]
    error = "E0000 00:00:1796521953.931778   27187 convert.cc:1] conversion failed"
    with _startup.filtered_native_stderr(_startup.CONVERTER_LINES):
        os.write(2, (bar + "\n".join([*chatter, error]) + "\n").encode())
    assert capfd.readouterr().err == bar + "\n" + error + "\n"
    assert _startup.startup_notices()[-3:] == chatter


def test_importing_what_the_programs_use_prints_nothing():
    # Each program defines its flags on import, so one process takes the
    # libraries they run on (TFDS, LiteRT, matplotlib, ... come with them).
    modules = [
        "csra_tf.cli.app",
        "csra_tf.training",
        "csra_tf.export",
        "csra_tf.inference",
        "csra_tf.importer",
        "csra_tf.studies",
    ]
    result = subprocess.run(
        [sys.executable, "-c", f"import {', '.join(modules)}"],
        env=USER_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")


@pytest.mark.slow
def test_console_script_help_is_its_own_output_only():
    program = shutil.which("csra-predict") or pytest.fail("csra-predict not installed")
    result = subprocess.run(
        [program, "--help"], env=USER_ENV, capture_output=True, text=True, timeout=300
    )
    assert result.stderr == ""  # absl's --help exits with 1: not checked
    assert "--model" in result.stdout


def test_verbosity_shows_the_notices_from_then_on(capfd, monkeypatch):
    from csra_tf.cli import app

    monkeypatch.setattr(_startup, "_show_all", False)
    app._show_library_noise(True)  # what --verbosity=1 does
    shown_before = capfd.readouterr().err.splitlines()
    assert shown_before == _startup.startup_notices()
    with _startup.filtered_native_stderr():
        os.write(2, (NOTICES[1] + "\n").encode())
    assert capfd.readouterr().err == NOTICES[1] + "\n"
