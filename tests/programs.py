"""Running the repository's `experiments/` programs from tests."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The repository root."""


def run_program(script: str, *flags: str, timeout: int = 300):
    """Runs a program of the repository with this Python.

    Args:
        script: path relative to the repository root, e.g.
            `"experiments/compare_heads.py"`.
        *flags: its command-line arguments.
        timeout: seconds before the run is killed.

    Returns:
        The `subprocess.CompletedProcess`, output captured as text.
    """
    return subprocess.run(
        [sys.executable, os.path.join(REPO, script), *flags],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
