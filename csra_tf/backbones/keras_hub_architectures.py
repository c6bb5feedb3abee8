"""Architectures of the keras-hub backbones, written out so no config is downloaded.

Each dict holds the constructor arguments of one keras-hub backbone class
(`ResNetBackbone`, `EfficientNetBackbone`, `MobileNetBackbone`) for one
registered name; keras-hub's own alias constructors would fetch them from the
network.
"""

# Depth -> (blocks per stage, block type) of torchvision's ResNets.
_RESNET_DEPTHS = {
    18: ([2, 2, 2, 2], "basic_block"),
    34: ([3, 4, 6, 3], "basic_block"),
    50: ([3, 4, 6, 3], "bottleneck_block"),
    101: ([3, 4, 23, 3], "bottleneck_block"),
    152: ([3, 8, 36, 3], "bottleneck_block"),
}
# ResNet-vd (He et al., "Bag of Tricks", 2019) adds depth 200.
_RESNET_VD_DEPTHS = {**_RESNET_DEPTHS, 200: ([3, 12, 48, 3], "bottleneck_block")}


def _torchvision_resnet(blocks, block_type, stem=64, widths=(64, 128, 256, 512)):
    return dict(
        input_conv_filters=[stem],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=list(widths),
        stackwise_num_blocks=list(blocks),
        stackwise_num_strides=[1, 2, 2, 2],
        block_type=block_type,
        use_pre_activation=False,
    )


TORCHVISION_RESNET_CONFIGS = {
    f"resnet{depth}": _torchvision_resnet(blocks, block_type)
    for depth, (blocks, block_type) in _RESNET_DEPTHS.items()
}
# keras-hub requires 64 filters in the first stage.
TORCHVISION_RESNET_CONFIGS["resnet_tiny"] = _torchvision_resnet(
    [1, 1, 1, 1], "bottleneck_block", stem=16, widths=(64, 8, 16, 16)
)
"""`ResNetBackbone` arguments of the torchvision-layout ResNets, by name."""

RESNET_VD_CONFIGS = {
    f"resnet{depth}_vd": dict(
        input_conv_filters=[32, 32, 64],
        input_conv_kernel_sizes=[3, 3, 3],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=list(blocks),
        stackwise_num_strides=[1, 2, 2, 2],
        block_type=f"{block_type}_vd",
        use_pre_activation=False,
    )
    for depth, (blocks, block_type) in _RESNET_VD_DEPTHS.items()
}
"""`ResNetBackbone` arguments of the ResNet-vd family, by name."""

EFFICIENTNET_B0_BLOCKS = dict(
    stackwise_kernel_sizes=[3, 3, 5, 3, 5, 5, 3],
    stackwise_num_repeats=[1, 2, 2, 3, 3, 4, 1],
    stackwise_input_filters=[32, 16, 24, 40, 80, 112, 192],
    stackwise_output_filters=[16, 24, 40, 80, 112, 192, 320],
    stackwise_expansion_ratios=[1, 6, 6, 6, 6, 6, 6],
    stackwise_strides=[1, 2, 2, 2, 1, 2, 1],
    stackwise_squeeze_and_excite_ratios=[0.25] * 7,
)
"""EfficientNet-B0's blocks (Tan & Le, Table 1), shared by keras-hub and keras-cv."""

# timm's EfficientNet-B0 (the layout of keras-hub's EfficientNet presets);
# B1-B5 scale its widths and depths.
_EFFICIENTNET_B0 = dict(
    EFFICIENTNET_B0_BLOCKS,
    stackwise_block_types=["v1"] * 7,
    min_depth=None,
    include_stem_padding=True,
    use_depth_divisor_as_min_depth=True,
    cap_round_filter_decrease=True,
    stem_conv_padding="valid",
    batch_norm_momentum=0.9,
    batch_norm_epsilon=1e-5,
    dropout=0,
    projection_activation=None,
)
# Variant -> (width coefficient, depth coefficient), EfficientNet paper Table 1.
_EFFICIENTNET_SCALING = {
    "b0": (1.0, 1.0),
    "b1": (1.0, 1.1),
    "b2": (1.1, 1.2),
    "b3": (1.2, 1.4),
    "b4": (1.4, 1.8),
    "b5": (1.6, 2.2),
}
EFFICIENTNET_CONFIGS = {
    f"keras_hub_efficientnet_{variant}": {
        **_EFFICIENTNET_B0,
        "stackwise_width_coefficients": [width] * 7,
        "stackwise_depth_coefficients": [depth] * 7,
    }
    for variant, (width, depth) in _EFFICIENTNET_SCALING.items()
}
EFFICIENTNET_CONFIGS["keras_hub_efficientnet_lite0"] = {
    **EFFICIENTNET_CONFIGS["keras_hub_efficientnet_b0"],
    "stackwise_squeeze_and_excite_ratios": [0] * 7,
    "activation": "relu6",
}
"""`EfficientNetBackbone` arguments of keras-hub's (timm's) EfficientNets."""

_HARD_SWISH = "hard_swish"
_MOBILENET_V3_SMALL = dict(
    stackwise_num_blocks=[2, 3, 2, 3],
    stackwise_kernel_size=[[3, 3], [5, 5, 5], [5, 5], [5, 5, 5]],
    stackwise_num_strides=[[2, 1], [2, 1, 1], [1, 1], [2, 1, 1]],
    stackwise_se_ratio=[[None, None], [0.25] * 3, [0.25] * 2, [0.25] * 3],
    stackwise_activation=[["relu"] * 2, [_HARD_SWISH] * 3, [_HARD_SWISH] * 2]
    + [[_HARD_SWISH] * 3],
    stackwise_padding=[[1, 1], [2, 2, 2], [2, 2], [2, 2, 2]],
    output_num_filters=1024,
    input_num_filters=16,
    depthwise_stride=2,
    depthwise_residual=False,
    squeeze_and_excite=0.5,
    input_activation=_HARD_SWISH,
    output_activation=_HARD_SWISH,
)
MOBILENET_V3_CONFIGS = {
    "keras_hub_mobilenet_v3_small_050": dict(
        _MOBILENET_V3_SMALL,
        stackwise_expansion=[[40, 56], [64, 144, 144], [72, 72], [144, 288, 288]],
        stackwise_num_filters=[[16, 16], [24, 24, 24], [24, 24], [48, 48, 48]],
        depthwise_filters=8,
        last_layer_filter=288,
    ),
    "keras_hub_mobilenet_v3_small_100": dict(
        _MOBILENET_V3_SMALL,
        stackwise_expansion=[[72, 88], [96, 240, 240], [120, 144], [288, 576, 576]],
        stackwise_num_filters=[[24, 24], [40, 40, 40], [48, 48], [96, 96, 96]],
        depthwise_filters=16,
        last_layer_filter=576,
    ),
    "keras_hub_mobilenet_v3_large_100": dict(
        stackwise_num_blocks=[2, 3, 4, 2, 3],
        stackwise_expansion=[
            [64, 72],
            [72, 120, 120],
            [240, 200, 184, 184],
            [480, 672],
            [672, 960, 960],
        ],
        stackwise_num_filters=[
            [24, 24],
            [40, 40, 40],
            [80, 80, 80, 80],
            [112, 112],
            [160, 160, 160],
        ],
        stackwise_kernel_size=[[3, 3], [5, 5, 5], [3] * 4, [3, 3], [5, 5, 5]],
        stackwise_num_strides=[[2, 1], [2, 1, 1], [2, 1, 1, 1], [1, 1], [2, 1, 1]],
        stackwise_se_ratio=[[None] * 2, [0.25] * 3, [None] * 4, [0.25] * 2]
        + [[0.25] * 3],
        stackwise_activation=[["relu"] * 2, ["relu"] * 3, [_HARD_SWISH] * 4]
        + [[_HARD_SWISH] * 2, [_HARD_SWISH] * 3],
        stackwise_padding=[[1, 1], [2, 2, 2], [1, 1, 1, 1], [1, 1], [2, 2, 2]],
        output_num_filters=1024,
        input_num_filters=16,
        depthwise_filters=16,
        depthwise_stride=1,
        depthwise_residual=True,
        squeeze_and_excite=None,
        last_layer_filter=960,
        input_activation=_HARD_SWISH,
        output_activation=_HARD_SWISH,
    ),
}
"""`MobileNetBackbone` arguments of keras-hub's (timm's) MobileNetV3s."""
