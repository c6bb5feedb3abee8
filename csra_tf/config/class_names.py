"""Class-name files: the JSON list of class names that goes with a model."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from csra_tf.errors import UserError


def save_class_names(path: str | os.PathLike, class_names: Sequence[str]) -> None:
    """Writes class names as a JSON list (the `classes.json` of a workdir).

    The file is written to a temporary name and then moved into place, so a
    reader never sees a half-written list.

    Args:
        path: The file to write.
        class_names: The class names, in target-vector (model output) order.

    Raises:
        ValueError: If `class_names` is not a list of distinct non-empty strings.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "classes.json")
    >>> save_class_names(path, ["cat", "dog"])
    >>> load_class_names(path)
    ['cat', 'dog']
    """
    names = check_class_names(class_names, "class_names")
    path = os.fspath(path)
    tmp_path = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp_path, "w", encoding="utf-8") as f:
            json.dump(names, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def load_class_names(path: str | os.PathLike) -> list[str]:
    """Reads class names written by `save_class_names`.

    Args:
        path: A JSON file holding a list of class names.

    Returns:
        The class names, in order.

    Raises:
        ValueError: If the file does not hold a list of distinct non-empty
            strings.
    """
    with open(path, encoding="utf-8") as f:
        names = json.load(f)
    return check_class_names(names, f"the content of {os.fspath(path)}")


def check_class_names(class_names: object, name: str = "class_names") -> list[str]:
    """Validates a class-name list.

    Args:
        class_names: the value to check.
        name: what to call it in the error message.

    Returns:
        The names as a list.

    Raises:
        ValueError: unless `class_names` is a non-empty sequence of distinct
            non-empty strings.
    """
    names = (
        list(class_names)
        if isinstance(class_names, Sequence) and not isinstance(class_names, str)
        else None
    )
    if (
        not names
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) != len(names)
    ):
        raise UserError(
            "Class names must be a non-empty list of distinct non-empty strings. "
            f"Received: {name}={class_names!r}"
        )
    return names
