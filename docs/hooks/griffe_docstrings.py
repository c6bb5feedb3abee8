"""griffe extension: csra-tf's docstring habits rendered well by mkdocstrings.

Doctest examples written flush under `Example:` render as code, and the
`Public API:` tables of the package docstrings render as lists.

csra-tf's docstrings write their runnable examples as keras-hub's do::

    Example:
    >>> create("tiny", image_size=32).output_shape
    (None, 4, 4, 128)

Google style wants a section's body indented under its header; without the
indentation griffe does not see a section and the `>>>` lines render as nested
quotes. When griffe loads each object, this extension indents such a block (up
to the next section header or the docstring's end) under an `Examples:` header,
so mkdocstrings renders it as code. The source files are not changed.
"""

from __future__ import annotations

import re

import griffe

_HEADER = re.compile(r"^(\s*)Examples?:\s*$")
_PUBLIC_API = re.compile(r"^(\s*)Public API:\s*$")
_ENTRY = re.compile(r"^(\S(?:.*?\S)?)\s{2,}(\S.*)$")
_NEXT_SECTION = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")


def indent_examples(text: str) -> str:
    """Indents the body of flush `Example:` sections by four spaces.

    Args:
        text: a cleaned docstring.

    Returns:
        The docstring with every flush example block indented under its header.
    """
    lines = text.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        out.append(line)
        header = _HEADER.match(line)
        index += 1
        if not header:
            continue
        margin = header.group(1)
        body = index
        while body < len(lines) and not lines[body].strip():
            body += 1
        if body >= len(lines) or not lines[body].startswith(margin + ">>>"):
            continue  # already indented, or prose: leave it to griffe
        out[-1] = f"{margin}Examples:"  # griffe's section that renders doctests
        while index < len(lines):
            current = lines[index]
            flush = current[len(margin) :] if current.startswith(margin) else current
            if current.strip() and _NEXT_SECTION.match(flush):
                break
            out.append(f"{margin}    {flush}" if current.strip() else "")
            index += 1
    return "\n".join(out)


def public_api_list(text: str) -> str:
    """Turns a `Public API:` block of `name  description` rows into a list.

    Args:
        text: a cleaned docstring.

    Returns:
        The docstring with the block as a Markdown list, one item per name
        (continuation lines joined to their item).
    """
    lines = text.splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        header = _PUBLIC_API.match(lines[index])
        if not header:
            out.append(lines[index])
            index += 1
            continue
        index += 1
        items: list[list[str]] = []
        while index < len(lines) and lines[index].strip():
            row = lines[index].strip()
            entry = _ENTRY.match(row)
            indent = len(lines[index]) - len(lines[index].lstrip())
            if entry and (not items or indent <= items[-1][2]):
                items.append([entry.group(1), entry.group(2), indent])
            elif items:
                items[-1][1] += " " + row
            index += 1
        out.append(f"{header.group(1)}**Public API**")
        out.append("")
        names = (
            ", ".join(f"`{n.strip()}`" for n in name.split(",")) for name, _, _ in items
        )
        out.extend(
            f"- {name}: {item[1]}" for name, item in zip(names, items, strict=True)
        )
    return "\n".join(out)


class DocstringHabits(griffe.Extension):
    """Rewrites every loaded object's docstring before it is parsed."""

    def on_instance(self, *, node, obj, agent, **kwargs) -> None:  # noqa: ARG002
        """Indents flush examples and lists the `Public API:` block of `obj`."""
        if obj.docstring is not None:
            text = public_api_list(obj.docstring.value)
            obj.docstring.value = indent_examples(text)
