"""keras-cv feature-map backbones: ResNet V1/V2, MobileNetV3, EfficientNet V1/V2.

The keras-cv ResNets are registered as `keras_cv_resnet{depth}` (V1) and
`keras_cv_resnet{depth}_v2`; the plain `resnet{depth}` names are torchvision's
ResNets (see `keras_hub_backbones`). Each name is registered with a standard
architecture written out here, so a randomly initialised backbone is built
without any download (keras-cv's alias constructors, e.g.
`ResNet50V2Backbone()`, fetch their configs from the network). Pixels are
normalised by a `PixelNormalization` layer in front of the keras-cv model
(`"unit"`, keras-cv's own rescaling, by default). The MobileNetV3 and
EfficientNet layouts are those of `keras.applications` (same parameter counts
with `include_top=False`).
"""

from __future__ import annotations

import os

import keras

from csra_tf.backbones.keras_hub_architectures import EFFICIENTNET_B0_BLOCKS
from csra_tf.backbones.preset_loading import from_preset
from csra_tf.backbones.registry import register
from csra_tf.errors import UserError
from csra_tf.layers.pixel_normalization import PixelNormalization

# keras-cv's own `include_rescaling`: pixels / 255.
_KERAS_CV_NORMALIZATION = "unit"

# Depth -> (blocks per stage, keras-cv block type); standard ResNet layouts.
_RESNET_LAYOUTS = {
    18: ((2, 2, 2, 2), "basic_block"),
    34: ((3, 4, 6, 3), "basic_block"),
    50: ((3, 4, 6, 3), "block"),
    101: ((3, 4, 23, 3), "block"),
    152: ((3, 8, 36, 3), "block"),
}

_MOBILENET_V3_SMALL = dict(
    stackwise_expansion=[1, 72.0 / 16, 88.0 / 24, 4, 6, 6, 3, 3, 6, 6, 6],
    stackwise_filters=[16, 24, 24, 40, 40, 40, 48, 48, 96, 96, 96],
    stackwise_kernel_size=[3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5],
    stackwise_stride=[2, 2, 1, 2, 1, 1, 1, 1, 2, 1, 1],
    stackwise_se_ratio=[0.25, None, None] + [0.25] * 8,
    stackwise_activation=["relu"] * 3 + ["hard_swish"] * 8,
)

_MOBILENET_V3_LARGE = dict(
    stackwise_expansion=[1, 4, 3, 3, 3, 3, 6, 2.5, 2.3, 2.3, 6, 6, 6, 6, 6],
    stackwise_filters=[16, 24, 24, 40, 40, 40, 80, 80, 80, 80, 112, 112, 160, 160, 160],
    stackwise_kernel_size=[3, 3, 3, 5, 5, 5, 3, 3, 3, 3, 3, 3, 5, 5, 5],
    stackwise_stride=[1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1],
    stackwise_se_ratio=[None] * 3 + [0.25] * 3 + [None] * 4 + [0.25] * 5,
    stackwise_activation=["relu"] * 6 + ["hard_swish"] * 9,
)

# EfficientNet-B0 blocks; B1-B3 scale them by (width, depth) coefficients.
_EFFICIENTNET_V1_B0 = EFFICIENTNET_B0_BLOCKS

_EFFICIENTNET_V2_B0 = dict(
    stackwise_kernel_sizes=[3, 3, 3, 3, 3, 3],
    stackwise_num_repeats=[1, 2, 2, 3, 5, 8],
    stackwise_input_filters=[32, 16, 32, 48, 96, 112],
    stackwise_output_filters=[16, 32, 48, 96, 112, 192],
    stackwise_expansion_ratios=[1, 4, 4, 4, 6, 6],
    stackwise_squeeze_and_excite_ratios=[0, 0, 0, 0.25, 0.25, 0.25],
    stackwise_strides=[1, 2, 2, 2, 1, 2],
    stackwise_conv_types=["fused"] * 3 + ["unfused"] * 3,
)

# Variant -> (width_coefficient, depth_coefficient), as in the EfficientNet paper.
_EFFICIENTNET_SCALING = {
    "b0": (1.0, 1.0),
    "b1": (1.0, 1.1),
    "b2": (1.1, 1.2),
    "b3": (1.2, 1.4),
}


def _keras_cv_factory(name: str, class_name: str, config: dict, preset_prefix: str):
    """Returns a registry factory for a keras-cv backbone class.

    Args:
        name: the registered name, used for the model's name.
        class_name: a class of `keras_cv.models`, e.g. `"MobileNetV3Backbone"`.
        config: the architecture arguments for random initialisation.
        preset_prefix: keras-cv preset names this registry name accepts as
            `weights` start with it (e.g. `"mobilenet_v3_small"`).

    Returns:
        A factory `(weights=None, image_size=448, pixel_normalization=None,
        **overrides) -> keras.Model` whose model takes pixels in [0, 255],
        normalises them with a `PixelNormalization` layer (keras-cv's own
        `"unit"` by default) and returns the last feature map.
    """

    def factory(weights=None, image_size=448, pixel_normalization=None, **overrides):
        import keras_cv

        cls = getattr(keras_cv.models, class_name)
        input_shape = (image_size, image_size, 3)
        # The pixel normalisation is ours, in front of the keras-cv model.
        overrides = {**overrides, "include_rescaling": False}
        if weights is not None:
            backbone = _from_preset(cls, weights, preset_prefix, input_shape, overrides)
        else:
            backbone = cls(**{**config, "input_shape": input_shape, **overrides})
        inputs = keras.Input(input_shape, name="pixels")
        normalized = PixelNormalization(
            pixel_normalization or _KERAS_CV_NORMALIZATION, name="pixel_normalization"
        )(inputs)
        return keras.Model(inputs, backbone(normalized), name=f"{name}_backbone")

    return factory


def _from_preset(cls, weights, preset_prefix, input_shape, overrides):
    choices = sorted(p for p in cls.presets_with_weights if p.startswith(preset_prefix))
    if weights not in choices and not os.path.isdir(weights):
        raise UserError(
            f"`weights` must be None, a preset of {cls.__name__} ({choices}) or a "
            f"local preset directory. Received: weights={weights}"
        )
    return from_preset(cls, weights, input_shape=input_shape, **overrides)


def _resnet_config(depth: int) -> dict:
    blocks, block_type = _RESNET_LAYOUTS[depth]
    return dict(
        stackwise_filters=[64, 128, 256, 512],
        stackwise_blocks=list(blocks),
        stackwise_strides=[1, 2, 2, 2],
        block_type=block_type,
    )


for _depth in _RESNET_LAYOUTS:
    _name = f"keras_cv_resnet{_depth}"
    register(_name)(
        _keras_cv_factory(
            _name, "ResNetBackbone", _resnet_config(_depth), f"resnet{_depth}_"
        )
    )
    register(f"{_name}_v2")(
        _keras_cv_factory(
            f"{_name}_v2",
            "ResNetV2Backbone",
            _resnet_config(_depth),
            f"resnet{_depth}_v2_",
        )
    )

for _name, _config in (
    ("mobilenet_v3_small", _MOBILENET_V3_SMALL),
    ("mobilenet_v3_large", _MOBILENET_V3_LARGE),
):
    register(_name)(_keras_cv_factory(_name, "MobileNetV3Backbone", _config, _name))

for _variant, (_width, _depth_coefficient) in _EFFICIENTNET_SCALING.items():
    _scaling = dict(width_coefficient=_width, depth_coefficient=_depth_coefficient)
    register(f"efficientnet_{_variant}")(
        _keras_cv_factory(
            f"efficientnet_{_variant}",
            "EfficientNetV1Backbone",
            {**_EFFICIENTNET_V1_B0, **_scaling},
            f"efficientnetv1_{_variant}",
        )
    )
    register(f"efficientnet_v2_{_variant}")(
        _keras_cv_factory(
            f"efficientnet_v2_{_variant}",
            "EfficientNetV2Backbone",
            {**_EFFICIENTNET_V2_B0, **_scaling},
            f"efficientnetv2_{_variant}",
        )
    )
