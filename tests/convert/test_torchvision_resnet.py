"""torchvision ResNet state dicts on keras-hub backbones, against PyTorch's outputs.

The fixtures are written by `fixtures/make_resnet_fixtures.py` with torch and
torchvision; these tests never import torch.
"""

import os

import keras_hub
import numpy as np
import pytest

from csra_tf import backbones
from csra_tf.convert.pth import load_state_dict
from csra_tf.convert.torchvision_resnet import (
    load_torchvision_resnet,
    torchvision_resnet_layout,
)
from csra_tf.layers import CSRA

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
BACKBONE_PTH = os.path.join(FIXTURES, "resnet_tiny.pth")
CSRA_PTH = os.path.join(FIXTURES, "resnet_tiny_csra.pth")
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def expected():
    with np.load(os.path.join(FIXTURES, "resnet_expected.npz")) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def state_dict():
    return load_state_dict(BACKBONE_PTH)


@pytest.fixture(scope="module")
def imported(expected):
    size = int(expected["image_size"])
    return backbones.create("resnet_tiny", weights=BACKBONE_PTH, image_size=size)


@pytest.fixture(scope="module")
def hub_backbone(expected):
    size = int(expected["image_size"])
    return keras_hub.models.ResNetBackbone(
        **backbones.TORCHVISION_RESNET_CONFIGS["resnet_tiny"],
        image_shape=(size, size, 3),
    )


def _parameter_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_tiny_architecture_matches_torchvision(expected, imported):
    assert _parameter_count(imported) == int(expected["parameter_count"])
    assert imported.output_shape[1:] == expected["features"].shape[1:]


def test_layout_inferred_from_the_state_dict(state_dict):
    config = backbones.TORCHVISION_RESNET_CONFIGS["resnet_tiny"]
    assert torchvision_resnet_layout(state_dict) == dict(
        input_conv_filters=config["input_conv_filters"],
        stackwise_num_blocks=config["stackwise_num_blocks"],
        stackwise_num_filters=config["stackwise_num_filters"],
        block_type=config["block_type"],
    )


def test_module_prefix_is_accepted(expected, state_dict, imported):
    # A checkpoint saved from DataParallel: every name starts with `module.`.
    prefixed = {f"module.{key}": value for key, value in state_dict.items()}
    assert torchvision_resnet_layout(prefixed) == torchvision_resnet_layout(state_dict)
    size = int(expected["image_size"])
    backbone = keras_hub.models.ResNetBackbone(
        **backbones.TORCHVISION_RESNET_CONFIGS["resnet_tiny"],
        image_shape=(size, size, 3),
    )
    load_torchvision_resnet(backbone, prefixed)
    for got, want in zip(
        backbone.weights, imported.get_layer(index=-1).weights, strict=True
    ):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_features_equal_pytorch(expected, imported):
    features = np.asarray(imported(expected["images"].astype("float32")))
    np.testing.assert_allclose(features, expected["features"], rtol=0, atol=TOLERANCE)


def test_authors_checkpoint_logits_equal_pytorch(expected):
    """Backbone and CSRA head of the authors' layout; their input is pixels / 255."""
    size = int(expected["image_size"])
    backbone = backbones.create(
        "resnet_tiny", weights=CSRA_PTH, image_size=size, pixel_normalization="unit"
    )
    tensors = load_state_dict(CSRA_PTH)
    temperatures = [float(t) for t in expected["temperatures"]]
    head = CSRA(
        num_classes=int(expected["num_classes"]),
        num_heads=len(temperatures),
        lam=float(expected["lam"]),
        temperatures=temperatures,
    )
    features = backbone(expected["images"].astype("float32"))
    head.build(features.shape)
    head.set_weights(
        [
            tensors[f"classifier.multi_head.{i}.head.weight"][:, :, 0, 0].T
            for i in range(len(temperatures))
        ]
    )
    logits = np.asarray(head(features))
    np.testing.assert_allclose(logits, expected["csra_logits"], rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize(
    "edit, names",
    [
        (lambda sd: sd.pop("layer2.0.bn1.running_var"), ["layer2.0.bn1.running_var"]),
        (
            lambda sd: sd.update({"layer1.0.extra.weight": np.zeros(3, "float32")}),
            ["layer1.0.extra.weight"],
        ),
        (
            lambda sd: sd.update({"bn1.bias": np.zeros(5, "float32")}),
            ["bn1.bias", "(5,)", "(16,)"],
        ),
    ],
    ids=["missing", "unexpected", "wrong_shape"],
)
def test_mismatched_keys_are_named(state_dict, hub_backbone, edit, names):
    edited = dict(state_dict)
    edit(edited)
    before = [np.array(w) for w in hub_backbone.get_weights()]
    with pytest.raises(ValueError, match="does not fit") as error:
        load_torchvision_resnet(hub_backbone, edited)
    for name in names:
        assert name in str(error.value)
    for old, new in zip(before, hub_backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_checkpoint_of_another_architecture_is_refused(state_dict, hub_backbone):
    deeper = dict(state_dict)
    for key, value in state_dict.items():
        if key.startswith("layer3.0.") and "downsample" not in key:
            deeper["layer3.1." + key.removeprefix("layer3.0.")] = value
    with pytest.raises(ValueError, match="another architecture") as error:
        load_torchvision_resnet(hub_backbone, deeper)
    assert "[1, 1, 2, 1]" in str(error.value)

    basic = {k: v for k, v in state_dict.items() if ".conv3." not in k}
    with pytest.raises(ValueError, match="basic_block"):
        load_torchvision_resnet(hub_backbone, basic)


def test_not_a_resnet_state_dict_is_refused(hub_backbone):
    with pytest.raises(ValueError, match="not a torchvision ResNet"):
        load_torchvision_resnet(hub_backbone, {"blocks.0.weight": np.zeros(3)})


def test_backbone_of_another_layout_is_refused(state_dict):
    vd = keras_hub.models.ResNetBackbone(
        **{
            **backbones.RESNET_VD_CONFIGS["resnet18_vd"],
            "stackwise_num_blocks": [1, 1, 1, 1],
        },
        image_shape=(32, 32, 3),
    )
    with pytest.raises(ValueError, match="use_pre_activation=False"):
        load_torchvision_resnet(vd, state_dict)


def test_pth_weights_only_for_torchvision_resnets():
    with pytest.raises(ValueError, match="Received: weights="):
        backbones.create("resnet18_vd", weights=BACKBONE_PTH, image_size=32)
    with pytest.raises(ValueError, match="No such"):
        backbones.create("resnet_tiny", weights="missing.pth", image_size=32)
