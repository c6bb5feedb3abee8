"""Instructions per TFLite inference on the AVX2 code paths, counted by callgrind.

Which kernels TFLite runs (XNNPACK's, ruy's) depends on the CPU: the same int8
model can be several times faster than float32 on a CPU with AVX-512 VNNI and
slower on one with AVX2 only. Valgrind emulates no AVX-512 (nor AVX-VNNI), so
under `valgrind --tool=callgrind` XNNPACK picks its AVX2 / FMA3 kernels on any
x86-64 host, and callgrind counts the instructions they execute, repeatably.
The count of an inference is that of a run with `1 + invokes` calls minus that
of a run with one call, divided by `invokes`. Instructions are not seconds, but
kernels of the same vector width that execute as many instructions take about
as long; the names of the hottest kernels say which instruction set ran.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile

from csra_tf.errors import UserError

INVOKE_PROGRAM = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path=sys.argv[1], num_threads=int(sys.argv[3]))
interpreter.allocate_tensors()
detail = interpreter.get_input_details()[0]
rng = np.random.default_rng(0)
if np.issubdtype(detail["dtype"], np.integer):
    info = np.iinfo(detail["dtype"])
    x = rng.integers(info.min, info.max, detail["shape"], endpoint=True)
else:
    x = rng.uniform(0.0, 255.0, detail["shape"])
interpreter.set_tensor(detail["index"], x.astype(detail["dtype"]))
for _ in range(int(sys.argv[2])):
    interpreter.invoke()
"""
"""The child program: loads a `.tflite` model and invokes it `argv[2]` times."""

_COLLECTED = re.compile(r"Collected\s*:\s*([\d,]+)")
_ANNOTATED = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+\S*?:(\S+)")


@dataclasses.dataclass(frozen=True)
class InstructionCount:
    """Instructions of one inference of a `.tflite` model.

    Args:
        path: the model file.
        instructions_per_invoke: instructions executed by one `invoke()`.
        kernels: the hottest kernel functions as `(name, share of an
            inference's instructions)`, hottest first.
    """

    path: str
    instructions_per_invoke: float
    kernels: tuple[tuple[str, float], ...]


def parse_collected(callgrind_stderr: str) -> int:
    """The total instruction count from callgrind's summary on stderr.

    Args:
        callgrind_stderr: valgrind's stderr of a `--tool=callgrind` run.

    Returns:
        The number after `Collected :`.

    Raises:
        RuntimeError: when the summary is missing (valgrind failed).
    """
    match = _COLLECTED.search(callgrind_stderr)
    if match is None:
        tail = callgrind_stderr.strip().splitlines()[-5:]
        raise RuntimeError(f"callgrind printed no 'Collected' total: {tail}")
    return int(match.group(1).replace(",", ""))


def parse_kernels(annotated: str, marker: str = "ukernel") -> list:
    """Kernel functions and their instruction counts from `callgrind_annotate`.

    Args:
        annotated: `callgrind_annotate` output (functions sorted by count).
        marker: a part of the names to keep (XNNPACK's micro-kernels by
            default, whose names end in their instruction set).

    Returns:
        `[(function name, instructions)]` in the order printed.
    """
    kernels = []
    for line in annotated.splitlines():
        match = _ANNOTATED.match(line)
        if match and marker in match.group(2):
            kernels.append((match.group(2), int(match.group(1).replace(",", ""))))
    return kernels


def _callgrind(
    model_path: str, invokes: int, num_threads: int, out_file: str
) -> tuple[int, dict[str, int]]:
    """Runs the child under callgrind: its total and its kernels' counts."""
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out_file}",
        sys.executable,
        "-c",
        INVOKE_PROGRAM,
        model_path,
        str(invokes),
        str(num_threads),
    ]
    # NumPy's BLAS threads spin for a while after start-up, and Python's hash
    # seed changes its own work: both would make runs differ.
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
    }
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, env=env
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"valgrind failed on {model_path} (status {result.returncode}): "
            f"{result.stderr.strip().splitlines()[-3:]}"
        )
    annotated = subprocess.run(
        ["callgrind_annotate", out_file], capture_output=True, text=True, check=True
    ).stdout
    return parse_collected(result.stderr), dict(parse_kernels(annotated))


def count_instructions(
    model_path: str, invokes: int = 2, num_threads: int = 1, top: int = 2
) -> InstructionCount:
    """Counts the instructions of one inference of a `.tflite` model.

    Args:
        model_path: the `.tflite` file.
        invokes: extra invocations timed against a one-call run.
        num_threads: interpreter threads (valgrind runs them one at a time;
            the count is the total).
        top: how many of the hottest kernels to report.

    Returns:
        The per-inference count and the hottest XNNPACK kernels.

    Raises:
        UserError: when the model file or valgrind is missing, or `invokes`
            is not positive.
    """
    if not os.path.isfile(model_path):
        raise UserError(f"No .tflite model at {model_path}.")
    if invokes < 1:
        raise UserError(f"`invokes` must be >= 1. Received: invokes={invokes}")
    for tool in ("valgrind", "callgrind_annotate"):
        if shutil.which(tool) is None:
            raise UserError(f"`{tool}` is not on PATH; install valgrind.")
    with tempfile.TemporaryDirectory() as tmp:
        base, base_kernels = _callgrind(
            model_path, 1, num_threads, os.path.join(tmp, "base")
        )
        total, kernels = _callgrind(
            model_path, 1 + invokes, num_threads, os.path.join(tmp, "full")
        )
    per_invoke = (total - base) / invokes
    # A kernel's instructions of one inference, from the same difference.
    kernel_counts = sorted(
        (
            ((count - base_kernels.get(name, 0)) / invokes, name)
            for name, count in kernels.items()
        ),
        reverse=True,
    )
    shares = tuple((name, count / per_invoke) for count, name in kernel_counts[:top])
    return InstructionCount(model_path, per_invoke, shares)
