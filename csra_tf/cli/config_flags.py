"""absl flags made from a config dataclass: one flag per field, declared once.

A field's type gives the flag's kind (bool, int, float, str, a list of floats),
its default the default, its line in the class docstring's `Args:` section the
help, and `metadata["choices"]` the allowed values. A new setting is thus one
field of `TrainConfig`, and the flag follows. Fields whose values come from a
registry of a higher layer than `config` (the backbone names) have the
registry's list appended to their help here.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing

from absl import flags

from csra_tf import backbones
from csra_tf.errors import UserError

# Fields whose valid values are a registry's names, listed in the flag's help.
_REGISTRIES = {"backbone": backbones.available}


def field_help(config_cls) -> dict[str, str]:
    """The help text of each field, from the class docstring's `Args:` section.

    Args:
        config_cls: a dataclass documented in Google style.

    Returns:
        `{field name: one-line help}`.
    """
    doc = config_cls.__doc__ or ""
    section = doc.split("Args:", 1)[1] if "Args:" in doc else ""
    helps: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        match = re.match(r"^\s{0,12}(\w+): (.*)$", line)
        if match and match.group(1) in {f.name for f in dataclasses.fields(config_cls)}:
            current = match.group(1)
            helps[current] = match.group(2).strip()
        elif current and line.strip():
            helps[current] += " " + line.strip()
        elif not line.strip() and current:
            current = None
    return {name: text.replace("`", "") for name, text in helps.items()}


def _base_type(annotation):
    """`int` for `int | None`, `tuple[float, ...]` as it is, and so on."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is (
        typing.Union
    ):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def define_config_flags(
    config_cls, module_name: str, required: tuple[str, ...] = ()
) -> None:
    """Defines one absl flag per field of `config_cls`.

    Args:
        config_cls: the config dataclass (e.g. `TrainConfig`).
        module_name: the program module the flags belong to (its `--help`
            lists them).
        required: fields whose flag must be given (the others default to the
            field's default).
    """
    helps = field_help(config_cls)
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        name = field.name
        default = None if field.default is dataclasses.MISSING else field.default
        kind = _base_type(hints[name])
        text = helps.get(name, name.replace("_", " "))
        if name in _REGISTRIES:
            text = f"{text} One of: {', '.join(_REGISTRIES[name]())}."
        choices = field.metadata.get("choices")
        if choices:
            flags.DEFINE_enum(
                name, default, list(choices), text, module_name=module_name
            )
        elif kind is bool:
            flags.DEFINE_boolean(name, default, text, module_name=module_name)
        elif kind is int:
            flags.DEFINE_integer(name, default, text, module_name=module_name)
        elif kind is float:
            flags.DEFINE_float(name, default, text, module_name=module_name)
        elif typing.get_origin(kind) is tuple:
            flags.DEFINE_list(
                name,
                [_format_float(v) for v in default or ()],
                text + " (comma-separated)",
                module_name=module_name,
            )
        else:
            flags.DEFINE_string(name, default, text, module_name=module_name)
        if name in required:
            flags.mark_flag_as_required(name)


def _format_float(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:g}"


def parse_list(values, kind, name: str) -> list:
    """Converts a list flag's strings (`float` accepts `inf`).

    Args:
        values: the flag's value (strings).
        kind: `int` or `float`.
        name: the flag's name, for the error message.

    Returns:
        The converted values.

    Raises:
        UserError: naming the flag and the values.
    """
    try:
        return [kind(v) for v in values or ()]
    except ValueError as error:
        raise UserError(
            f"--{name} takes comma-separated {kind.__name__}s (inf for max "
            f"pooling). Received: {name}={','.join(values)}"
        ) from error


def config_from_flags(config_cls, flag_values=flags.FLAGS):
    """Builds the config from the parsed flags (list flags become tuples).

    Args:
        config_cls: the config dataclass the flags were defined from.
        flag_values: the parsed flags.

    Returns:
        The config (its own checks raise `UserError` for bad values).
    """
    hints = typing.get_type_hints(config_cls)
    values = {}
    for field in dataclasses.fields(config_cls):
        value = flag_values[field.name].value
        if typing.get_origin(_base_type(hints[field.name])) is tuple:
            value = tuple(parse_list(value, float, field.name))
        values[field.name] = value
    return config_cls(**values)


def define_data_flags(config_cls, fields, module_name: str) -> None:
    """String flags for some fields of `config_cls`, default None (the run's own).

    Args:
        config_cls: the config dataclass whose docstring gives the help.
        fields: the field names.
        module_name: the program module the flags belong to.
    """
    helps = field_help(config_cls)
    for name in fields:
        flags.DEFINE_string(
            name,
            None,
            f"{helps[name]} Default: the run's own.",
            module_name=module_name,
        )


def flag_overrides(fields, flag_values=flags.FLAGS) -> dict:
    """The values given for `fields` (those left at None are skipped).

    Args:
        fields: flag names.
        flag_values: the parsed flags.

    Returns:
        `{field: value}` for each flag that was set.
    """
    return {
        name: flag_values[name].value
        for name in fields
        if flag_values[name].value is not None
    }
