"""timm ViT state dicts -> keras-hub ViTBackbone: numerics against timm, errors.

The fixtures were made with PyTorch and timm by `fixtures/make_vit_fixtures.py`;
these tests read them without torch.
"""

import pathlib

import keras_hub
import numpy as np
import pytest

from csra_tf import backbones
from csra_tf.backbones import interpolate_position_embeddings
from csra_tf.backbones.vit import VIT_CONFIGS
from csra_tf.convert.pth import load_state_dict
from csra_tf.convert.timm_vit import (
    load_timm_vit_weights,
    timm_vit_layout,
    timm_vit_state_dict,
)
from csra_tf.layers import CSRA

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
TIMM_PTH = str(FIXTURES / "vit_tiny.pth")
CSRA_PTH = str(FIXTURES / "vit_tiny_csra.pth")
TOLERANCE = 1e-4


def _vit(image_size=32, **overrides):
    config = {**VIT_CONFIGS["vit_tiny"], **overrides}
    return keras_hub.models.ViTBackbone(
        image_shape=(image_size, image_size, 3), **config
    )


def _inner_vit(model):
    return next(
        layer
        for layer in model.layers
        if isinstance(layer, keras_hub.models.ViTBackbone)
    )


def _position_table(vit):
    layer = vit.get_layer("vit_patching_and_embedding").position_embedding
    return np.asarray(layer.embeddings)


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURES / "vit_expected.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def state():
    return load_state_dict(TIMM_PTH)


@pytest.fixture(scope="module")
def converted(expected):
    size = int(expected["image_size"])
    return backbones.create("vit_tiny", weights=TIMM_PTH, image_size=size)


@pytest.fixture(scope="module")
def target():
    """A randomly initialised tiny ViT that error tests must leave untouched."""
    return _vit()


def test_converted_features_match_timm(converted, expected):
    features = np.asarray(converted(expected["images"].astype("float32")))
    assert features.shape == expected["features"].shape
    assert np.max(np.abs(features - expected["features"])) < TOLERANCE


def test_csra_checkpoint_matches_pytorch_logits(expected):
    """The authors' layout: ViT keys load, `classifier.*` is skipped; the head
    kernels `(C, d, 1, 1)` in a CSRA layer give PyTorch's logits."""
    size = int(expected["image_size"])
    backbone = backbones.create("vit_tiny", weights=CSRA_PTH, image_size=size)
    features = backbone(expected["images"].astype("float32"))
    state = load_state_dict(CSRA_PTH)
    temperatures = [float(t) for t in expected["temperatures"]]
    head = CSRA(
        int(expected["num_classes"]),
        num_heads=len(temperatures),
        lam=float(expected["lam"]),
        temperatures=temperatures,
    )
    head.build(features.shape)
    head.set_weights(
        [
            state[f"classifier.multi_head.{i}.head.weight"][:, :, 0, 0].T
            for i in range(len(temperatures))
        ]
    )
    logits = np.asarray(head(features))
    assert np.max(np.abs(logits - expected["csra_logits"])) < TOLERANCE


def test_skipped_keys_are_returned(state):
    assert load_timm_vit_weights(_vit(), state) == ["head.bias", "head.weight"]


def test_layout_of_the_checkpoint(state):
    assert timm_vit_layout(state) == dict(
        patch_size=(16, 16),
        num_layers=2,
        hidden_dim=32,
        mlp_dim=64,
        image_shape=(32, 32, 3),
    )


def test_round_trip_to_timm_layout(converted, state):
    written = timm_vit_state_dict(_inner_vit(converted))
    assert set(written) == set(state) - {"head.weight", "head.bias"}
    for key, value in written.items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)


def test_module_prefix_is_accepted(state, converted):
    vit = _vit()
    load_timm_vit_weights(vit, {f"module.{k}": v for k, v in state.items()})
    for a, b in zip(vit.weights, _inner_vit(converted).weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_larger_input_gets_interpolated_position_embeddings(
    state, converted, interpolation
):
    """The backbone resizes the checkpoint's table with the PyTorch-exact
    resize (tested against PyTorch in tests/backbones), all else unchanged."""
    model = backbones.create(
        "vit_tiny",
        weights={f"module.{k}": v for k, v in state.items()},
        image_size=64,
        interpolation=interpolation,
    )
    assert model.output_shape == (None, 4, 4, 32)
    vit, source = _inner_vit(model), _inner_vit(converted)
    np.testing.assert_array_equal(
        _position_table(vit),
        interpolate_position_embeddings(
            state["pos_embed"], (4, 4), interpolation=interpolation
        )[0],
    )
    others = [w for w in vit.weights if "position_embedding" not in w.path]
    originals = [w for w in source.weights if "position_embedding" not in w.path]
    assert len(others) == len(originals) == len(vit.weights) - 1
    for a, b in zip(others, originals, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_same_grid_is_loaded_without_interpolation(state):
    """A checkpoint trained at the model's size (e.g. the authors' 448 px
    ViT-L/16, 1 + 28 * 28 rows) keeps its table exactly."""
    table = np.random.default_rng(0).normal(size=(1, 1 + 16, 32)).astype("float32")
    vit = _vit(image_size=64)
    load_timm_vit_weights(vit, {**state, "pos_embed": table})
    np.testing.assert_array_equal(_position_table(vit), table[0])


def _unchanged(vit, before):
    for variable, value in zip(vit.weights, before, strict=True):
        np.testing.assert_array_equal(np.asarray(variable), value)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("blocks.1.norm2.bias"), r"Missing keys: \['blocks.1.norm2"),
        (
            lambda s: s.update({"blocks.0.ls1.gamma": np.ones(32, "float32")}),
            r"Unexpected keys: \['blocks.0.ls1.gamma'\]",
        ),
        (
            lambda s: s.update({"norm.weight": np.ones(31, "float32")}),
            r"norm.weight: checkpoint \(31,\), model expects \(32,\)",
        ),
        (
            lambda s: s.update({"blocks.0.attn.qkv.bias": np.ones(64, "float32")}),
            r"blocks.0.attn.qkv.bias: checkpoint \(64,\), model expects \(96,\)",
        ),
        (
            lambda s: s.update({"pos_embed": np.ones((1, 5, 16), "float32")}),
            r"pos_embed: checkpoint \(1, 5, 16\), model expects \(1, 5, 32\)",
        ),
    ],
    ids=["missing", "unexpected", "wrong_shape", "wrong_qkv", "wrong_positions"],
)
def test_bad_keys_are_named_and_nothing_is_assigned(state, target, edit, message):
    before = [np.asarray(w) for w in target.weights]
    edited = dict(state)
    edit(edited)
    with pytest.raises(ValueError, match=message):
        load_timm_vit_weights(target, edited)
    _unchanged(target, before)


def test_another_depth_is_another_architecture(state, target):
    shallow = {k: v for k, v in state.items() if not k.startswith("blocks.1.")}
    with pytest.raises(ValueError, match="num_layers: checkpoint 1, backbone 2"):
        load_timm_vit_weights(target, shallow)


def test_another_width_is_another_architecture(state):
    with pytest.raises(ValueError, match="hidden_dim: checkpoint 32, backbone 16"):
        load_timm_vit_weights(_vit(hidden_dim=16, mlp_dim=64), state)
    with pytest.raises(ValueError, match="another ViT architecture"):
        backbones.create("vit_b16", weights=TIMM_PTH, image_size=32)


def test_resnet_checkpoint_is_refused(target):
    resnet = {
        "conv1.weight": np.zeros((8, 3, 7, 7), "float32"),
        "layer1.0.conv1.weight": np.zeros((8, 8, 3, 3), "float32"),
    }
    with pytest.raises(ValueError, match="not a timm ViT.*ResNet"):
        load_timm_vit_weights(target, resnet)


def test_position_table_on_another_grid_is_refused_with_both_grids(state):
    """The converter maps tensors only; resizing is the backbone's job."""
    vit = _vit(image_size=64)
    before = [np.asarray(w) for w in vit.weights]
    with pytest.raises(
        ValueError,
        match=r"pos_embed: checkpoint \(1, 5, 32\), model expects \(1, 17, 32\) "
        r"\(a 2x2 patch grid for the model's 4x4: resize it with "
        r"csra_tf.backbones.interpolate_position_embeddings\)",
    ):
        load_timm_vit_weights(vit, state)
    _unchanged(vit, before)
