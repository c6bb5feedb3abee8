"""SigLIP and CLIP vision towers from transformers checkpoints, into keras-hub encoders.

keras-hub 0.32 converts transformers checkpoints of DINOv2, DINOv3, Swin and
DeiT itself (`from_preset("hf://...")`), but not of SigLIP / SigLIP2 or CLIP
(`model_type` `"siglip"`, `"clip"`): for those it loads only its own presets.
This module fills the gap in the manner of keras-hub's converters: a table
from each source tensor name to one variable of keras-hub's
`SigLIPVisionEncoder` or `CLIPVisionEncoder` with the layout change it needs,
a shape check of every tensor before anything is assigned, and tests against
transformers' own outputs (tests/backbones/test_hf_backbones.py).

A checkpoint is a Hugging Face repository (`hf://org/name`, resolved by
`huggingface_hub`, so `HF_HUB_OFFLINE` and `HF_HUB_CACHE` apply) or a local
folder holding `config.json` and `model.safetensors` (or a sharded
`model.safetensors.index.json`), of the full model (`SiglipModel`,
`CLIPModel`: the `vision_model.*` tensors are read) or of the vision model
alone. The text tower, the projections and SigLIP's attention-pooling head
(`head.*`, unused by a patch-token feature map) are not loaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import keras
import keras_hub
import numpy as np

from csra_tf.errors import UserError

SIGLIP_MODEL_TYPES = ("siglip", "siglip_vision_model")
"""transformers' `model_type` of SigLIP and fixed-resolution SigLIP2 checkpoints."""

CLIP_MODEL_TYPES = ("clip", "clip_vision_model")
"""transformers' `model_type` of CLIP checkpoints."""

# transformers' `SiglipVisionConfig` / `CLIPVisionConfig` defaults, for keys
# that a saved config leaves out.
_COMMON_DEFAULTS = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    image_size=224,
)
_SIGLIP_DEFAULTS = dict(
    _COMMON_DEFAULTS,
    patch_size=16,
    hidden_act="gelu_pytorch_tanh",
    layer_norm_eps=1e-6,
)
_CLIP_DEFAULTS = dict(
    _COMMON_DEFAULTS, patch_size=32, hidden_act="quick_gelu", layer_norm_eps=1e-5
)
# Per encoder layer: transformers' module name -> keras-hub's attribute path.
_SIGLIP_LAYER = {
    "layer_norm1": "layer_norm1",
    "layer_norm2": "layer_norm2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_CLIP_LAYER = {
    "layer_norm1": "layer_norm_1",
    "layer_norm2": "layer_norm_2",
    "mlp.fc1": "dense_1",
    "mlp.fc2": "dense_2",
}
# transformers' activation names -> keras-hub's.
_ACTIVATIONS = {
    "gelu_pytorch_tanh": "gelu_approximate",
    "gelu_new": "gelu_approximate",
    "gelu": "gelu",
    "quick_gelu": "quick_gelu",
}
_VISION_PREFIX = "vision_model."
HF_SCHEME = "hf://"
"""The scheme of a Hugging Face repository handle, `hf://org/name`."""
_CONFIG = "config.json"
_WEIGHTS = "model.safetensors"
_WEIGHTS_INDEX = "model.safetensors.index.json"


def transformers_model_type(weights: str) -> str | None:
    """The `model_type` of a transformers checkpoint, or None for other presets.

    Args:
        weights: an `hf://` handle or a local folder (anything else: None).

    Returns:
        The `model_type` of its `config.json`, or None when `weights` is no
        transformers checkpoint (e.g. a keras-hub preset, whose config names
        a Keras class instead).
    """
    weights = os.fspath(weights)
    if not (weights.startswith(HF_SCHEME) or os.path.isdir(weights)):
        return None
    try:
        config = _read_json(weights, _CONFIG)
    except (OSError, ValueError):
        return None
    return config.get("model_type") if "class_name" not in config else None


def checkpoint_file(weights, filename: str) -> str:
    """The local path of one file of a checkpoint.

    Args:
        weights: an `hf://` handle (the file is fetched by `huggingface_hub`)
            or a local folder.
        filename: the file's name in it (e.g. `"config.json"`).

    Returns:
        The path.

    Raises:
        FileNotFoundError: when the checkpoint has no such file.
    """
    weights = os.fspath(weights)
    if weights.startswith(HF_SCHEME):
        import huggingface_hub

        try:
            return huggingface_hub.hf_hub_download(
                repo_id=weights.removeprefix(HF_SCHEME), filename=filename
            )
        except huggingface_hub.errors.EntryNotFoundError as error:
            raise FileNotFoundError(f"{weights}/{filename}") from error
    path = os.path.join(weights, filename)
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    return path


def siglip_encoder_from_transformers(weights: str):
    """Builds keras-hub's `SigLIPVisionEncoder` from a transformers checkpoint.

    Args:
        weights: an `hf://` handle or a local folder of a `SiglipModel` or
            `SiglipVisionModel` checkpoint (e.g.
            `"hf://google/siglip2-base-patch16-224"`).

    Returns:
        The encoder at the checkpoint's own image size, weights loaded (its
        pooling head is left as initialised).

    Raises:
        UserError: when a tensor is missing or has another shape.
    """
    config, tensors = _read_checkpoint(weights, SIGLIP_MODEL_TYPES, "SigLIP")
    vision = {**_SIGLIP_DEFAULTS, **config.get("vision_config", config)}
    encoder = keras_hub.models.SigLIPVisionEncoder(
        **_encoder_arguments(vision, weights),
        layer_norm_epsilon=vision["layer_norm_eps"],
    )
    top = {
        "embeddings.patch_embedding.bias": (
            encoder.embedding.patch_embedding.bias,
            None,
        ),
        "post_layernorm": encoder.post_layer_norm,
    }
    table = _encoder_table(encoder, top, _SIGLIP_LAYER, "self_attn")
    _assign(_expand(table), tensors, weights)
    return encoder


def clip_encoder_from_transformers(weights: str):
    """Builds keras-hub's `CLIPVisionEncoder` from a transformers checkpoint.

    Args:
        weights: an `hf://` handle or a local folder of a `CLIPModel` or
            `CLIPVisionModel` checkpoint (e.g.
            `"hf://openai/clip-vit-base-patch16"`).

    Returns:
        The encoder at the checkpoint's own image size, weights loaded. Its
        output is every token after `post_layernorm`.

    Raises:
        UserError: when a tensor is missing or has another shape, or the
            checkpoint's layer-norm epsilon is not keras-hub's 1e-5.
    """
    config, tensors = _read_checkpoint(weights, CLIP_MODEL_TYPES, "CLIP")
    vision = {**_CLIP_DEFAULTS, **config.get("vision_config", config)}
    if not np.isclose(float(vision["layer_norm_eps"]), 1e-5):
        raise UserError(
            "keras-hub's CLIP encoder uses layer-norm epsilon 1e-5. Received: "
            f"weights={weights} with layer_norm_eps={vision['layer_norm_eps']}"
        )
    encoder = keras_hub.models.CLIPVisionEncoder(**_encoder_arguments(vision, weights))
    top = {
        "embeddings.class_embedding": (encoder.embedding.class_embedding, None),
        "pre_layrnorm": encoder.pre_layer_norm,
        "post_layernorm": encoder.layer_norm,
    }
    table = _encoder_table(encoder, top, _CLIP_LAYER, "attention")
    _assign(_expand(table), tensors, weights)
    return encoder


def _encoder_arguments(vision: dict, weights) -> dict:
    """The keras-hub encoder arguments that a transformers vision config sets."""
    size = int(vision["image_size"])
    return dict(
        patch_size=vision["patch_size"],
        hidden_dim=vision["hidden_size"],
        num_layers=vision["num_hidden_layers"],
        num_heads=vision["num_attention_heads"],
        intermediate_dim=vision["intermediate_size"],
        intermediate_activation=_activation(vision["hidden_act"], weights),
        image_shape=(size, size, 3),
    )


def _encoder_table(encoder, top: dict, layer_names: dict, attention_name: str) -> dict:
    """The conversion table: embeddings, `top`, then every encoder layer.

    Args:
        encoder: a `SigLIPVisionEncoder` or `CLIPVisionEncoder`.
        top: the model's own entries outside the layers (norms, biases).
        layer_names: transformers' module name -> the keras-hub layer's
            attribute path (dotted), per encoder layer.
        attention_name: the keras-hub layer's attention attribute.

    Returns:
        `{source name: layer or (variable, layout change)}`, for `_expand`.
    """
    embedding = encoder.embedding
    table = {
        "embeddings.patch_embedding.weight": (
            embedding.patch_embedding.kernel,
            _conv_kernel,
        ),
        "embeddings.position_embedding.weight": (
            embedding.position_embedding.embeddings,
            None,
        ),
        **top,
    }
    for i, layer in enumerate(encoder.encoder_layers):
        prefix = f"encoder.layers.{i}."
        for source, target in layer_names.items():
            table[prefix + source] = _attribute(layer, target)
        table.update(_attention(prefix + "self_attn.", getattr(layer, attention_name)))
    return table


def _attribute(layer, path: str):
    """`layer.<path>` for a dotted attribute path."""
    for name in path.split("."):
        layer = getattr(layer, name)
    return layer


def _activation(name: str, weights) -> str:
    if name not in _ACTIVATIONS:
        raise UserError(
            f"Unsupported activation {name!r}; expected one of "
            f"{sorted(_ACTIVATIONS)}. Received: weights={weights}"
        )
    return _ACTIVATIONS[name]


def _conv_kernel(weight):
    """PyTorch's `(out, in, kh, kw)` conv kernel -> Keras' `(kh, kw, in, out)`."""
    return np.transpose(weight, (2, 3, 1, 0))


def _attention(prefix: str, attention) -> dict:
    """Table entries of keras' `MultiHeadAttention` from `{q,k,v,out}_proj`."""
    heads, head_dim = attention.num_heads, attention.key_dim

    def projection(weight):  # (heads * head_dim, d) -> (d, heads, head_dim)
        return weight.T.reshape(weight.shape[1], heads, head_dim)

    def projection_bias(bias):
        return bias.reshape(heads, head_dim)

    def output(weight):  # (d, heads * head_dim) -> (heads, head_dim, d)
        return weight.T.reshape(heads, head_dim, weight.shape[0])

    table = {}
    for source, dense in (
        ("q_proj", attention.query_dense),
        ("k_proj", attention.key_dense),
        ("v_proj", attention.value_dense),
    ):
        table[f"{prefix}{source}.weight"] = (dense.kernel, projection)
        table[f"{prefix}{source}.bias"] = (dense.bias, projection_bias)
    table[f"{prefix}out_proj.weight"] = (attention.output_dense.kernel, output)
    table[f"{prefix}out_proj.bias"] = (attention.output_dense.bias, None)
    return table


def _expand(table: dict) -> dict[str, tuple[keras.Variable, Callable | None]]:
    """Layers in `table` become their `.weight` / `.bias` entries."""
    out = {}
    for key, entry in table.items():
        if isinstance(entry, keras.layers.LayerNormalization):
            out[f"{key}.weight"] = (entry.gamma, None)
            out[f"{key}.bias"] = (entry.beta, None)
        elif isinstance(entry, keras.layers.Dense):
            out[f"{key}.weight"] = (entry.kernel, np.transpose)
            out[f"{key}.bias"] = (entry.bias, None)
        else:
            out[key] = entry
    return out


def _assign(table, tensors, weights) -> None:
    """Checks every tensor against its variable, then assigns them all."""
    missing = sorted(key for key in table if key not in tensors)
    if missing:
        raise UserError(
            f"The checkpoint lacks {len(missing)} vision tensors, e.g. "
            f"{', '.join(missing[:5])}. Received: weights={weights}"
        )
    values = []
    wrong = []
    for key, (variable, to_keras) in table.items():
        value = np.asarray(tensors[key], "float32")
        if to_keras is not None:
            value = to_keras(value)
        if tuple(value.shape) != tuple(variable.shape):
            wrong.append(f"{key}: {value.shape} vs {tuple(variable.shape)}")
        values.append((variable, value))
    if wrong:
        raise UserError(
            "Checkpoint tensors of the wrong shape (as converted, vs the "
            f"model's): {'; '.join(wrong[:5])}. Received: weights={weights}"
        )
    for variable, value in values:
        variable.assign(value)


def _read_checkpoint(weights, model_types, family):
    """`(config, vision tensors without the vision_model. prefix)`."""
    config = _read_json(weights, _CONFIG)
    if config.get("model_type") not in model_types:
        raise UserError(
            f"Expected a transformers {family} checkpoint (model_type in "
            f"{model_types}). Received: weights={weights} with "
            f"model_type={config.get('model_type')}"
        )
    import safetensors

    try:
        files = [checkpoint_file(weights, _WEIGHTS)]
    except (OSError, ValueError) as error:
        try:
            index = _read_json(weights, _WEIGHTS_INDEX)
        except (OSError, ValueError):
            raise UserError(
                f"No {_WEIGHTS} or {_WEIGHTS_INDEX} found. Received: weights={weights}"
            ) from error
        shards = {
            shard
            for key, shard in index["weight_map"].items()
            if not key.startswith("text_model.")
        }
        files = [checkpoint_file(weights, shard) for shard in sorted(shards)]
    tensors = {}
    for path in files:
        with safetensors.safe_open(path, framework="np") as file:
            keys = list(file.keys())
            vision = any(key.startswith(_VISION_PREFIX) for key in keys)
            for key in keys:
                if vision and not key.startswith(_VISION_PREFIX):
                    continue
                tensors[key.removeprefix(_VISION_PREFIX)] = file.get_tensor(key)
    return config, tensors


def _read_json(weights, filename: str) -> dict:
    with open(checkpoint_file(weights, filename), encoding="utf-8") as file:
        return json.load(file)
