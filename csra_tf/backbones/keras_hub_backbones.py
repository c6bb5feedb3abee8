"""keras-hub backbones: torchvision ResNets, ResNet-vd, EfficientNet, MobileNetV3.

`resnet18` ... `resnet152` are torchvision's ResNets (V1.5: the stride sits on
the 3x3 convolution of a bottleneck; BatchNorm epsilon 1e-5; a 1x1 strided
convolution + BatchNorm shortcut where the shape changes), which is keras-hub's
`ResNetBackbone` with a 7x7 stem and `use_pre_activation=False`. `resnet_tiny`
has the same layout with tiny widths, for tests. Every architecture is written
out in `keras_hub_architectures`, so random initialisation never touches the
network (keras-hub's alias constructors download their configs).

Each model takes RGB pixels in [0, 255] and normalises them itself with a
`PixelNormalization` layer whose mode belongs to the weights: `"imagenet"`
for torchvision, timm and keras-hub's ImageNet checkpoints (and for random
initialisation), or what a local preset's image converter says.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import keras
import keras_hub
import numpy as np

from csra_tf.backbones.keras_hub_architectures import (
    EFFICIENTNET_CONFIGS,
    MOBILENET_V3_CONFIGS,
    RESNET_VD_CONFIGS,
    TORCHVISION_RESNET_CONFIGS,
)
from csra_tf.backbones.preset_loading import from_preset
from csra_tf.backbones.registry import register
from csra_tf.config.choices import PIXEL_NORMALIZATIONS
from csra_tf.convert.pth import load_state_dict
from csra_tf.convert.torchvision_resnet import load_torchvision_resnet
from csra_tf.errors import UserError
from csra_tf.layers.pixel_normalization import (
    PixelNormalization,
    check_pixel_normalization,
    mode_of_affine,
)


@dataclasses.dataclass(frozen=True)
class _Family:
    """How to build one keras-hub backbone class."""

    class_name: str
    shape_argument: str
    # Config entries a preset must share with the registered architecture.
    architecture_keys: tuple[str, ...]
    loads_torchvision: bool = False


_RESNET_KEYS = (
    "input_conv_filters",
    "input_conv_kernel_sizes",
    "stackwise_num_blocks",
    "stackwise_num_strides",
    "block_type",
    "use_pre_activation",
)
_TORCHVISION_RESNET = _Family("ResNetBackbone", "image_shape", _RESNET_KEYS, True)
_RESNET_VD = _Family("ResNetBackbone", "image_shape", _RESNET_KEYS)
_EFFICIENTNET = _Family(
    "EfficientNetBackbone",
    "input_shape",
    (
        "stackwise_width_coefficients",
        "stackwise_depth_coefficients",
        "stackwise_num_repeats",
        "stackwise_block_types",
    ),
)
_MOBILENET = _Family(
    "MobileNetBackbone",
    "image_shape",
    ("stackwise_num_blocks", "stackwise_num_filters", "last_layer_filter"),
)

_DEFAULT_NORMALIZATION = "imagenet"
# Names in a checkpoint of the CSRA authors or an ImageNet classifier that are
# not part of the backbone.
_CLASSIFIER_PREFIXES = ("fc.", "classifier.")
_TORCH_SUFFIXES = (".pth", ".pt")


def keras_hub_backbone(
    name: str,
    weights: str | None = None,
    image_size: int | None = 448,
    pixel_normalization: str | None = None,
    **overrides,
) -> keras.Model:
    """Builds a registered keras-hub backbone that takes pixels in [0, 255].

    Args:
        name: a key of `TORCHVISION_RESNET_CONFIGS`, `RESNET_VD_CONFIGS`,
            `EFFICIENTNET_CONFIGS` or `MOBILENET_V3_CONFIGS`.
        weights: None (random), a keras-hub preset of the same architecture
            (e.g. `"resnet_101_imagenet"`), an `hf://` handle keras-hub loads
            (e.g. `"hf://timm/resnet101.tv_in1k"`, torchvision's ImageNet
            weights), a local preset directory (`save_to_preset`), or for the
            torchvision ResNets a PyTorch `.pth` state dict (an `fc.*`
            classifier and the CSRA authors' `classifier.*` are ignored).
        image_size: side of the square input, or None for any size.
        pixel_normalization: one of `PIXEL_NORMALIZATIONS`, or None for the
            weights' own: `"imagenet"`, unless a preset's image converter says
            otherwise.
        **overrides: constructor arguments that replace the registered
            architecture's (e.g. `stackwise_num_blocks`); passed to
            `from_preset` when loading a preset.

    Returns:
        A `keras.Model` mapping pixels `(B, S, S, 3)` to the last feature map
        `(B, h, w, d)`; the keras-hub backbone is its nested model.

    Example:
    >>> model = keras_hub_backbone("resnet_tiny", image_size=64)
    >>> model.output_shape
    (None, 2, 2, 64)
    """
    family, config = _ARCHITECTURES[name]
    check_pixel_normalization(pixel_normalization)
    cls = getattr(keras_hub.models, family.class_name)
    shape = (image_size, image_size, 3)
    architecture = {**config, **overrides}
    default = _DEFAULT_NORMALIZATION
    if weights is None:
        backbone = cls(**architecture, **{family.shape_argument: shape})
    elif _is_torch_file(weights) or isinstance(weights, Mapping):
        if not family.loads_torchvision:
            raise UserError(
                f"Only the torchvision ResNets load a PyTorch state dict, not {name}. "
                f"Received: weights={_describe(weights)}"
            )
        if isinstance(weights, Mapping):
            state_dict = weights
        elif os.path.isfile(weights):
            state_dict = load_state_dict(weights)
        else:
            raise UserError(f"No such `.pth` file. Received: weights={weights}")
        backbone = cls(**architecture, **{family.shape_argument: shape})
        load_torchvision_resnet(
            backbone, state_dict, ignore_prefixes=_CLASSIFIER_PREFIXES
        )
    else:
        _check_preset_name(name, weights, cls)
        backbone = from_preset(
            cls, weights, **{family.shape_argument: shape}, **overrides
        )
        _check_architecture(name, weights, backbone, architecture, family)
        if pixel_normalization is None:
            default = _preset_normalization(weights, keras_hub) or default
    inputs = keras.Input(shape, name="pixels")
    normalized = PixelNormalization(
        pixel_normalization or default, name="pixel_normalization"
    )(inputs)
    return keras.Model(inputs, backbone(normalized), name=f"{name}_backbone")


def _describe(weights) -> str:
    if isinstance(weights, Mapping):
        return f"a state dict of {len(weights)} tensors"
    return str(weights)


def _is_torch_file(weights) -> bool:
    return isinstance(weights, str) and weights.endswith(_TORCH_SUFFIXES)


def _presets_for(name, cls):
    """keras-hub presets with the architecture registered as `name`."""
    if name in TORCHVISION_RESNET_CONFIGS:
        prefix = f"resnet_{name.removeprefix('resnet')}_"
    elif name in RESNET_VD_CONFIGS:
        prefix = f"resnet_vd_{name.removeprefix('resnet').removesuffix('_vd')}_"
    else:
        prefix = name.removeprefix("keras_hub_") + "_"
    return sorted(preset for preset in cls.presets if preset.startswith(prefix))


def _check_preset_name(name, weights, cls):
    if isinstance(weights, str) and (
        weights.startswith("hf://") or os.path.isdir(weights)
    ):
        return
    presets = _presets_for(name, cls)
    if weights in presets:
        return
    choices = ["None", f"a keras-hub preset {presets}", "an hf:// handle"]
    choices.append("a local preset directory")
    if name in TORCHVISION_RESNET_CONFIGS:
        choices.append("a torchvision `.pth` state dict")
    hint = ""
    if isinstance(weights, str) and weights.startswith(name.split("_")[0]):
        hint = f" (keras-cv presets load with keras_cv_{name})"
    raise UserError(
        f"`weights` of {name} must be {', '.join(choices[:-1])} or {choices[-1]}"
        f"{hint}. Received: weights={weights}"
    )


def _check_architecture(name, weights, backbone, architecture, family):
    config = backbone.get_config()
    differences = [
        f"{key}: preset {config.get(key)} vs {name} {architecture.get(key)}"
        for key in family.architecture_keys
        if _plain(config.get(key)) != _plain(architecture.get(key))
    ]
    if differences:
        raise UserError(
            f"`weights` hold another architecture than {name} ("
            + "; ".join(differences)
            + f"). Received: weights={weights}"
        )


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _preset_normalization(weights, keras_hub) -> str | None:
    """The `PixelNormalization` mode of a preset's image converter, if any."""
    if os.path.isdir(weights):
        if not os.path.exists(os.path.join(weights, "image_converter.json")):
            return None
        converter = keras_hub.layers.ImageConverter.from_preset(weights)
    else:
        try:
            converter = keras_hub.layers.ImageConverter.from_preset(weights)
        except (ValueError, FileNotFoundError):
            return None
    if converter is None:
        return None
    mode = mode_of_affine(
        converter.scale,
        converter.offset,
        scale_tolerance=(1e-3, 1e-8),
        offset_tolerance=(1e-5, 1e-3),
    )
    if mode is None:
        raise UserError(
            f"The preset's image converter (scale={_listed(converter.scale)}, "
            f"offset={_listed(converter.offset)}) matches none of "
            f"{PIXEL_NORMALIZATIONS}; pass `pixel_normalization` explicitly. "
            f"Received: weights={weights}"
        )
    return mode


def _listed(value):
    return None if value is None else np.asarray(value, "float64").ravel().tolist()


def _factory(name):
    def factory(weights=None, image_size=448, pixel_normalization=None, **overrides):
        return keras_hub_backbone(
            name,
            weights=weights,
            image_size=image_size,
            pixel_normalization=pixel_normalization,
            **overrides,
        )

    return factory


_ARCHITECTURES = {
    **{key: (_TORCHVISION_RESNET, c) for key, c in TORCHVISION_RESNET_CONFIGS.items()},
    **{key: (_RESNET_VD, c) for key, c in RESNET_VD_CONFIGS.items()},
    **{key: (_EFFICIENTNET, c) for key, c in EFFICIENTNET_CONFIGS.items()},
    **{key: (_MOBILENET, c) for key, c in MOBILENET_V3_CONFIGS.items()},
}

for _name in _ARCHITECTURES:
    register(_name)(_factory(_name))
