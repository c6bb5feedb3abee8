"""JSON files written atomically and read with one-line errors.

The run folder's files (`csra_tf.run_folder`) and the data split a training
manifest keeps (`csra_tf.data.train_val_sources`) are written this way.
"""

from __future__ import annotations

import json
import os

import numpy as np

from csra_tf.errors import UserError


def write_json(path: str | os.PathLike, value) -> None:
    """Writes JSON atomically: `path` holds either its old or its new content.

    Args:
        path: destination file.
        value: a JSON-ready value (NumPy scalars and arrays allowed).
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2, default=_json_default, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Not JSON serialisable: {value!r}")


def read_json(path: str | os.PathLike):
    """Reads a JSON file.

    Args:
        path: the file.

    Returns:
        The parsed value.

    Raises:
        UserError: naming the file when it is missing or not valid JSON.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file.")
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as error:
            raise UserError(
                f"{path}:{error.lineno}: not valid JSON ({error.msg})."
            ) from error
