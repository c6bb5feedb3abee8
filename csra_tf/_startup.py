"""TensorFlow's native start-up notices, kept off the terminal.

Importing TensorFlow 2.21 writes 4-6 lines straight to file descriptor 2 from C++
(the oneDNN notice, the CUDA stub, the CPU-feature guard, absl's pre-init warning,
`failed call to cuInit` on a machine without a GPU), once per copy of the runtime
that gets loaded, and `TF_CPP_MIN_LOG_LEVEL` no longer hides them. They are not
errors, and they bury a program's own output.

`import csra_tf` imports TensorFlow inside `filtered_native_stderr()`: what the
native code writes meanwhile is captured, the known notices are kept aside
(`startup_notices()`, printed by the console scripts under `--verbosity=1`), and
every other line, errors included, is written back to standard error unchanged.
LiteRT's interpreter likewise announces its XNNPACK delegate on its first run,
which `csra_tf.inference` runs inside the same filter. This module imports
nothing heavy.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator


def _native_line(severities: str, source: str = r"[\w.]+") -> str:
    """The glog/absl prefix of a native log line: severity, date, time, thread,
    source file (`source` matches its name without `.cc`)."""
    return rf"[{severities}]\d{{4}} [\d:.]+ +\d+ {source}\.cc:\d+\] "


_NATIVE_PREFIX = _native_line("IWEF")

_NOTICE_LINES = re.compile(
    "|".join(
        (
            r"WARNING: All log messages before absl::InitializeLog\(\) is called "
            r"are written to STDERR",
            _native_line(
                "IWE",
                r"(port|cudart_stub|cpu_feature_guard|cuda_platform|cuda_executor|"
                r"cuda_diagnostics)",
            ),
            r"To enable the following instructions: .* rebuild TensorFlow with "
            r"the appropriate compiler flags\.",
            # LiteRT, on the first run of an interpreter.
            r"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.",
        )
    )
)

CONVERTER_LINES = re.compile(
    "|".join(
        (
            # The TFLite converter's progress: SavedModel reading, MLIR passes.
            _native_line("IW"),
            r"fully_quantize: \d+, inference_type: ",
        )
    )
)
"""What `tf.lite.TFLiteConverter` writes while it works (errors excepted)."""

_notices: list[str] = []
_show_all = False


def startup_notices() -> list[str]:
    """The native notices hidden so far (start-up, LiteRT, the converter).

    Returns:
        The hidden lines, in the order they were written.
    """
    return list(_notices)


def show_native_logs(show: bool) -> None:
    """Whether later filtered blocks write every line back (`--verbosity=1`).

    Args:
        show: True to hide nothing from now on.
    """
    global _show_all
    _show_all = bool(show)


def _split(text: str, hidden_lines: re.Pattern) -> tuple[list[str], list[str]]:
    # A native line may follow a progress bar's text on the same line.
    text = re.sub(f"(?<=[^\\n])(?={_NATIVE_PREFIX})", "\n", text)
    kept, hidden = [], []
    for line in text.splitlines(keepends=True):
        hide = not _show_all and hidden_lines.match(line)
        (hidden if hide else kept).append(line)
    return kept, hidden


@contextlib.contextmanager
def filtered_native_stderr(hidden_lines: re.Pattern = _NOTICE_LINES) -> Iterator[None]:
    """Captures file descriptor 2 for the block; writes back all but the notices.

    Args:
        hidden_lines: the lines to keep off the terminal (default: TensorFlow's
            and LiteRT's start-up notices).

    Yields:
        Nothing; on exit (normal or not) every captured line that
        `hidden_lines` does not match is written to standard error.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield  # no real descriptor 2 (an embedding host): leave it alone
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            kept, hidden = _split(text, hidden_lines)
            _notices.extend(line.rstrip("\n") for line in hidden)
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
