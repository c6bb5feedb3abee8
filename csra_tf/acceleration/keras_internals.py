"""The private Keras names the speed paths rely on, checked before each use.

Four speed paths reach past Keras's public surface: the LayerNormalization call
and keras-hub's Swin MLP call read the `training` value of the call in progress
(their `call` takes none), the attention core replaces
`MultiHeadAttention._compute_attention` (the method Keras's docstring offers for
overriding) and reads three of the layer's private settings, and BatchNorm
folding counts how often a layer was called and read
(its inbound and outbound nodes). `PRIVATE_KERAS_NAMES` lists every such name.
A patch checks, when it is applied, that the installed Keras has the names it
needs and that its replacement accepts every argument Keras's own method takes;
if not, the layer keeps Keras's own method and a warning says so, once per
patch and process.
`tests/acceleration/test_keras_internals.py` checks the whole list against the
installed Keras.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import warnings
from collections.abc import Callable, Iterable

import keras


@dataclasses.dataclass(frozen=True)
class PrivateName:
    """A private Keras attribute that a speed path uses.

    Args:
        owner: the Keras class that holds it, as a dotted path from `keras`
            (`"keras.layers.MultiHeadAttention"`).
        name: the attribute.
        on_instances: True when Keras sets it on each layer (in `__init__` or
            `build`) rather than on the class.
        used_by: the speed path that reads it.
    """

    owner: str
    name: str
    on_instances: bool
    used_by: str

    def __str__(self) -> str:
        return f"{self.owner}.{self.name}"


_CALL_CONTEXT = "keras.src.layers.layer.CallContext"

_CALL_CONTEXT_USERS = "fused_layer_norm, swin_mlp"
CALL_CONTEXT_NAMES = (
    PrivateName("keras.layers.Layer", "_get_call_context", False, _CALL_CONTEXT_USERS),
    PrivateName(_CALL_CONTEXT, "get_value", False, _CALL_CONTEXT_USERS),
)
ATTENTION_NAMES = (
    PrivateName(
        "keras.layers.MultiHeadAttention",
        "_compute_attention",
        False,
        "matmul_attention",
    ),
    PrivateName(
        "keras.layers.MultiHeadAttention", "_dropout", True, "matmul_attention"
    ),
    PrivateName(
        "keras.layers.MultiHeadAttention", "_attention_axes", True, "matmul_attention"
    ),
    PrivateName(
        "keras.layers.MultiHeadAttention",
        "_inverse_sqrt_key_dim",
        True,
        "matmul_attention",
    ),
)
FOLDING_NAMES = (
    PrivateName("keras.layers.Layer", "_inbound_nodes", True, "batch_norm_folding"),
    PrivateName("keras.layers.Layer", "_outbound_nodes", True, "batch_norm_folding"),
)
PRIVATE_KERAS_NAMES = CALL_CONTEXT_NAMES + ATTENTION_NAMES + FOLDING_NAMES
"""Every private Keras name the speed paths use."""

_warned: set[str] = set()


def training_in_progress(layer: keras.layers.Layer) -> bool:
    """Whether the call of `layer` in progress is a training call.

    For layers whose `call` takes no `training` argument: Keras keeps the value
    it resolved for the enclosing calls in its call context
    (`CALL_CONTEXT_NAMES`).

    Args:
        layer: a layer, inside its own `call`.

    Returns:
        True only when Keras resolved `training=True` for the call.
    """
    return layer._get_call_context().get_value("training") is True


def resolve(dotted: str):
    """The object a dotted path from `keras` names, or None when there is none.

    Args:
        dotted: e.g. `"keras.layers.Layer"` or `"keras.src.layers.layer.CallContext"`.

    Returns:
        The object, or None.

    Example:
    >>> resolve("keras.layers.Dense") is keras.layers.Dense
    True
    >>> resolve("keras.layers.NoSuchLayer") is None
    True
    """
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            target = getattr(target, part, None)
            if target is None:
                return None
        return target
    return None


def missing_names(
    names: Iterable[PrivateName], layer: keras.layers.Layer | None = None
) -> list[PrivateName]:
    """The names of `names` that the installed Keras lacks.

    Args:
        names: private names to check.
        layer: the layer the per-instance names are looked up on; without one,
            they are not checked.

    Returns:
        The missing ones, in order.
    """
    absent = []
    for name in names:
        if name.on_instances:
            if layer is not None and not hasattr(layer, name.name):
                absent.append(name)
        else:
            owner = resolve(name.owner)
            if owner is None or not hasattr(owner, name.name):
                absent.append(name)
    return absent


def unaccepted_arguments(keras_method: Callable, replacement: Callable) -> list[str]:
    """The arguments of Keras's method that `replacement` does not accept.

    Keras calls a layer's method with the arguments of its own signature; a
    replacement that lacks one of them would fail at the first call.

    Args:
        keras_method: Keras's own function (e.g. `keras.layers.Dense.call`).
        replacement: the function bound in its place.

    Returns:
        The names of the arguments `replacement` lacks (empty when it takes them
        all, or takes `**kwargs`).

    Example:
    >>> unaccepted_arguments(lambda self, x, training=None: x, lambda self, x: x)
    ['training']
    """
    ours = inspect.signature(replacement).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in ours):
        return []
    accepted = {p.name for p in ours}
    return [
        p.name
        for p in inspect.signature(keras_method).parameters.values()
        if p.kind
        not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and p.name not in accepted
    ]


def patch_supported(
    patch: str,
    layer: keras.layers.Layer,
    keras_method: Callable,
    replacement: Callable,
    names: Iterable[PrivateName] = (),
) -> bool:
    """Whether `replacement` can stand in for `keras_method` on `layer`.

    When it cannot (a private name is missing, or Keras's method takes an
    argument the replacement does not), the patch is skipped for this layer and
    a warning says why, once per patch and process.

    Args:
        patch: the speed path's name, for the warning.
        layer: the layer to patch.
        keras_method: Keras's own method the replacement stands in for.
        replacement: the speed path's function.
        names: the private Keras names the replacement uses.

    Returns:
        True when the replacement may be bound.
    """
    absent = missing_names(names, layer)
    if absent:
        problem = describe_missing(absent)
    else:
        extra = unaccepted_arguments(keras_method, replacement)
        if not extra:
            return True
        problem = (
            f"`{keras_method.__qualname__}` takes "
            + ", ".join(f"`{argument}`" for argument in extra)
            + ", which the speed path does not"
        )
    warn_off(patch, problem)
    return False


def describe_missing(absent: Iterable[PrivateName]) -> str:
    """The phrase "it has no `a`, `b`" that names missing names in a warning.

    Args:
        absent: the missing names.

    Returns:
        The phrase.
    """
    return "it has no " + ", ".join(f"`{name}`" for name in absent)


def warn_off(
    patch: str,
    problem: str,
    consequence: str = "Those layers keep Keras's own calls (same results, "
    "without the speed-up).",
) -> None:
    """Warns that `patch` is off and why, the first time in this process.

    Args:
        patch: the speed path's name (one warning per name and process).
        problem: why it is off.
        consequence: what runs instead.
    """
    if patch in _warned:
        return
    _warned.add(patch)
    warnings.warn(
        f"csra_tf.acceleration: {patch} is off for Keras {keras.__version__}: "
        f"{problem}. {consequence}",
        RuntimeWarning,
        stacklevel=2,
    )
