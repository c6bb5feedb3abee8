"""Loads a timm Vision Transformer state dict into a keras-hub `ViTBackbone`.

In the manner of keras-hub's own checkpoint converters: a table maps each
source tensor name to one of our variables and to the tensor's expected shape
in the source layout, every tensor is shape-checked before anything is
assigned, and a checkpoint of another architecture (another depth, width,
patch or MLP size, or no ViT at all) is refused with an error that says so.

timm's ViT and keras-hub's agree on the computation: pre-norm blocks, LayerNorm
with epsilon 1e-6, exact (erf) GELU, attention scaled by `head_dim ** -0.5`, a
final LayerNorm over all tokens. The checkpoint's position embeddings must be
on the model's patch grid: `csra_tf.backbones` resizes them first, with
PyTorch's bicubic (`csra_tf.backbones.position_embedding`), when a ViT is built
for another input size (as the CSRA paper does for 448 px inputs).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
from keras import ops

from csra_tf.convert.pth import strip_module_prefix
from csra_tf.errors import UserError

IGNORED_PREFIXES = ("head.", "fc_norm.", "pre_logits.", "classifier.")
"""Source keys that are not part of the backbone and are skipped: timm's
classifier (`head`, `fc_norm`, `pre_logits`) and the CSRA authors' heads
(`classifier.multi_head.*`)."""

_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.")
_PATCHING_LAYER = "vit_patching_and_embedding"
_ENCODER_LAYER = "vit_encoder"
_POSITION_KEY = "pos_embed"
_MAX_LISTED = 20


def load_timm_vit_weights(
    vit,
    state_dict: Mapping[str, np.ndarray],
    ignored_prefixes: Sequence[str] = IGNORED_PREFIXES,
) -> list[str]:
    """Assigns a timm ViT state dict to a keras-hub `ViTBackbone`, in place.

    Source keys (timm's `VisionTransformer`): `patch_embed.proj.*`,
    `cls_token`, `pos_embed`, `blocks.{i}.{norm1, attn.qkv, attn.proj, norm2,
    mlp.fc1, mlp.fc2}.*` and `norm.*`. timm's fused `attn.qkv` weight
    `(3 d, d)` is split into the query, key and value kernels
    `(d, heads, d / heads)` of keras' `MultiHeadAttention`. A `module.` prefix
    on every key (a checkpoint saved from `DataParallel`) is accepted. The
    number of attention heads cannot be read from a state dict: it is the
    backbone's. `pos_embed` must be on the backbone's patch grid (resize it
    with `csra_tf.backbones.interpolate_position_embeddings` first, as
    `csra_tf.backbones.create` does).

    Args:
        vit: a `keras_hub.models.ViTBackbone` with a class token, built for
            the input size wanted. Its depth, width, patch size and MLP size
            must be the checkpoint's.
        state_dict: source tensor name -> array, e.g. from
            `csra_tf.convert.load_state_dict`.
        ignored_prefixes: source keys starting with one of these are skipped.

    Returns:
        The sorted source keys that were skipped.

    Raises:
        ValueError: (a `csra_tf.errors.UserError`) naming the problem when the
            state dict is not a timm ViT, holds another architecture, lacks or
            adds keys, or has a tensor of the wrong shape (both shapes given;
            for `pos_embed` on another patch grid, both grids). Nothing is
            assigned then.

    Example:
    >>> import keras_hub
    >>> vit = keras_hub.models.ViTBackbone(
    ...     image_shape=(32, 32, 3), patch_size=16, num_layers=1, num_heads=2,
    ...     hidden_dim=8, mlp_dim=16)
    >>> state = timm_vit_state_dict(vit)  # any timm ViT state dict
    >>> load_timm_vit_weights(vit, state)
    []
    """
    if not vit.use_class_token:
        raise UserError(
            "timm ViT checkpoints hold a class token; build the backbone with "
            f"one. Received: vit.use_class_token={vit.use_class_token}"
        )
    state = strip_module_prefix(state_dict)
    _check_architecture(vit, state)
    table = _weight_table(vit)
    ignored = sorted(k for k in state if k.startswith(tuple(ignored_prefixes)))
    missing = sorted(set(table) - set(state))
    unexpected = sorted(set(state) - set(table) - set(ignored))
    if missing or unexpected:
        raise UserError(
            "The checkpoint's keys do not match a timm ViT of this "
            f"architecture. Missing keys: {_listed(missing)}. Unexpected keys: "
            f"{_listed(unexpected)}. Received: state_dict with {len(state)} keys"
        )
    values = []
    wrong = []
    for key, entry in table.items():
        array = np.asarray(state[key])
        if tuple(array.shape) != tuple(entry.shape):
            wrong.append(
                f"{key}: checkpoint {tuple(array.shape)}, model expects "
                f"{tuple(entry.shape)}{_grid_hint(vit, key, array.shape)}"
            )
            continue
        converted = entry.to_keras(array.astype("float32"))
        values.extend(zip(entry.variables, converted, strict=True))
    if wrong:
        raise UserError(
            "Some checkpoint tensors have the wrong shape (timm layout). "
            f"Received: {'; '.join(wrong)}"
        )
    for variable, value in values:
        variable.assign(ops.cast(value, variable.dtype))
    return ignored


def timm_vit_state_dict(vit) -> dict[str, np.ndarray]:
    """Writes a keras-hub `ViTBackbone`'s weights as a timm ViT state dict.

    The inverse of `load_timm_vit_weights` (same table), for round-trip tests
    and for handing weights back to timm.

    Args:
        vit: a `keras_hub.models.ViTBackbone` with a class token.

    Returns:
        timm source key -> float array in timm's layout.

    Example:
    >>> import keras_hub
    >>> vit = keras_hub.models.ViTBackbone(
    ...     image_shape=(32, 32, 3), patch_size=16, num_layers=1, num_heads=2,
    ...     hidden_dim=8, mlp_dim=16)
    >>> timm_vit_state_dict(vit)["blocks.0.attn.qkv.weight"].shape
    (24, 8)
    """
    out = {}
    for key, entry in _weight_table(vit).items():
        values = tuple(np.asarray(ops.convert_to_numpy(v)) for v in entry.variables)
        out[key] = entry.to_timm(values)
    return out


def timm_vit_layout(state_dict: Mapping[str, np.ndarray]) -> dict:
    """Infers the architecture of a timm ViT from its state dict.

    Args:
        state_dict: tensor name -> array, timm's names (a `module.` prefix on
            every key is accepted).

    Returns:
        A dict of `keras_hub.models.ViTBackbone` arguments: `patch_size`
        (`(p, p)`), `num_layers`, `hidden_dim`, `mlp_dim` (None when
        `blocks.0.mlp.fc1.weight` is absent) and `image_shape`, the input the
        position embeddings were trained for (None when `pos_embed` is absent
        or not square). The number of heads cannot be read from the weights.

    Example:
    >>> import numpy as np
    >>> layout = timm_vit_layout({
    ...     "patch_embed.proj.weight": np.zeros((1024, 3, 16, 16)),
    ...     "pos_embed": np.zeros((1, 1 + 28 * 28, 1024)),
    ...     "blocks.0.mlp.fc1.weight": np.zeros((4096, 1024)),
    ...     "blocks.23.mlp.fc1.weight": np.zeros((4096, 1024)),
    ... })
    >>> layout["num_layers"], layout["image_shape"]
    (24, (448, 448, 3))
    """
    state = strip_module_prefix(state_dict)
    patch_key = "patch_embed.proj.weight"
    patch_weight = np.shape(state.get(patch_key, ()))
    if len(patch_weight) != 4:
        family = (
            "a ResNet"
            if "conv1.weight" in state or any(k.startswith("layer1.") for k in state)
            else "another architecture"
        )
        raise UserError(
            f"This is not a timm ViT state dict (no 4-d `{patch_key}`); it looks "
            f"like {family}. Received: state_dict keys={_listed(sorted(state))}"
        )
    blocks = {int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k))}
    fc1 = np.shape(state.get("blocks.0.mlp.fc1.weight", ()))
    patch = tuple(int(p) for p in patch_weight[2:])
    positions = np.shape(state.get(_POSITION_KEY, ()))
    side = math.isqrt(positions[1] - 1) if len(positions) == 3 else 0
    square = side > 0 and side * side == positions[1] - 1
    return dict(
        patch_size=patch,
        num_layers=max(blocks) + 1 if blocks else 0,
        hidden_dim=int(patch_weight[0]),
        mlp_dim=int(fc1[0]) if len(fc1) == 2 else None,
        image_shape=(
            (side * patch[0], side * patch[1], int(patch_weight[1])) if square else None
        ),
    )


def _check_architecture(vit, state):
    """Refuses a checkpoint that is not a timm ViT of `vit`'s architecture."""
    layout = timm_vit_layout(state)
    ours = dict(
        num_layers=vit.num_layers,
        hidden_dim=vit.hidden_dim,
        patch_size=_pair(vit.patch_size),
        mlp_dim=vit.mlp_dim,
    )
    differences = [
        f"{name}: checkpoint {layout[name]}, backbone {mine}"
        for name, mine in ours.items()
        if layout[name] != mine
    ]
    if differences:
        raise UserError(
            "The checkpoint holds another ViT architecture than the backbone "
            f"(choose the matching backbone). Received: {'; '.join(differences)}"
        )


def _listed(keys, limit=_MAX_LISTED):
    keys = list(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{keys[:limit]}{more}"


def _grid_hint(vit, key, shape):
    """Names both patch grids when `pos_embed` only differs in its grid."""
    if key != _POSITION_KEY or len(shape) != 3 or shape[-1] != vit.hidden_dim:
        return ""
    side = math.isqrt(max(shape[1] - 1, 0))
    if side == 0 or side * side != shape[1] - 1:
        return ""
    patch = _pair(vit.patch_size)
    grid = (vit.image_shape[0] // patch[0], vit.image_shape[1] // patch[1])
    return (
        f" (a {side}x{side} patch grid for the model's {grid[0]}x{grid[1]}: "
        "resize it with csra_tf.backbones.interpolate_position_embeddings)"
    )


class _Entry(NamedTuple):
    """One source tensor: our variables, its timm shape, the two layouts."""

    variables: tuple  # the keras variables it fills (three for a fused qkv)
    shape: tuple  # shape in the timm layout
    to_keras: Callable[[np.ndarray], tuple]  # timm array -> one value per variable
    to_timm: Callable[[tuple], np.ndarray]  # variable values -> timm array


def _copy(variable, shape) -> _Entry:
    return _Entry((variable,), shape, lambda x: (x,), lambda v: v[0])


def _dense(layer, units, inputs) -> dict[str, _Entry]:
    """A `Linear(inputs, units)`: weight `(units, inputs)`, kernel transposed."""
    return {
        "weight": _Entry(
            (layer.kernel,), (units, inputs), lambda x: (x.T,), lambda v: v[0].T
        ),
        "bias": _copy(layer.bias, (units,)),
    }


def _qkv(mha, d, heads) -> dict[str, _Entry]:
    """timm's fused `(3 d, d)` qkv, rows ordered (projection, head, channel)."""
    dense = (mha.query_dense, mha.key_dense, mha.value_dense)

    def kernels(x):
        return tuple(w.T.reshape(d, heads, d // heads) for w in np.split(x, 3))

    def biases(x):
        return tuple(b.reshape(heads, d // heads) for b in np.split(x, 3))

    return {
        "weight": _Entry(
            tuple(layer.kernel for layer in dense),
            (3 * d, d),
            kernels,
            lambda v: np.concatenate([k.reshape(d, d).T for k in v]),
        ),
        "bias": _Entry(
            tuple(layer.bias for layer in dense),
            (3 * d,),
            biases,
            lambda v: np.concatenate([b.reshape(d) for b in v]),
        ),
    }


def _attention_output(mha, d, heads) -> dict[str, _Entry]:
    """timm's `(d, d)` output projection; keras' kernel is (heads, dim, d)."""
    return {
        "weight": _Entry(
            (mha.output_dense.kernel,),
            (d, d),
            lambda x: (x.T.reshape(heads, d // heads, d),),
            lambda v: v[0].reshape(d, d).T,
        ),
        "bias": _copy(mha.output_dense.bias, (d,)),
    }


def _norm(layer, d) -> dict[str, _Entry]:
    return {"weight": _copy(layer.gamma, (d,)), "bias": _copy(layer.beta, (d,))}


def _weight_table(vit) -> dict[str, _Entry]:
    """timm key -> the `_Entry` that fills our variables from it."""
    d, mlp, heads = vit.hidden_dim, vit.mlp_dim, vit.num_heads
    patch = _pair(vit.patch_size)
    embedding = vit.get_layer(_PATCHING_LAYER)
    conv = embedding.patch_embedding
    groups = {
        "patch_embed.proj": {
            "weight": _Entry(
                (conv.kernel,),
                (d, vit.image_shape[-1], *patch),
                lambda x: (np.transpose(x, (2, 3, 1, 0)),),
                lambda v: np.transpose(v[0], (3, 2, 0, 1)),
            ),
            "bias": _copy(conv.bias, (d,)),
        }
    }
    table = {
        "cls_token": _copy(embedding.class_token, (1, 1, d)),
        _POSITION_KEY: _Entry(
            (embedding.position_embedding.embeddings,),
            (1, embedding.num_positions, d),
            lambda x: (x[0],),
            lambda v: v[0][None],
        ),
    }
    encoder = vit.get_layer(_ENCODER_LAYER)
    for i, block in enumerate(encoder.encoder_layers):
        groups[f"blocks.{i}.norm1"] = _norm(block.layer_norm_1, d)
        groups[f"blocks.{i}.attn.qkv"] = _qkv(block.mha, d, heads)
        groups[f"blocks.{i}.attn.proj"] = _attention_output(block.mha, d, heads)
        groups[f"blocks.{i}.norm2"] = _norm(block.layer_norm_2, d)
        groups[f"blocks.{i}.mlp.fc1"] = _dense(block.mlp.dense_1, mlp, d)
        groups[f"blocks.{i}.mlp.fc2"] = _dense(block.mlp.dense_2, d, mlp)
    groups["norm"] = _norm(encoder.layer_norm, d)
    for module, entries in groups.items():
        for name, entry in entries.items():
            table[f"{module}.{name}"] = entry
    return table


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)
