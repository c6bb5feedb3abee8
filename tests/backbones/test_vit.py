"""ViT backbones: token map, presets resized to a new input, pixel
normalisation, saving. The resize itself: test_position_embedding.py; timm
checkpoints: tests/convert/test_timm_vit.py.
"""

import keras
import keras_hub
import numpy as np
import pytest

from csra_tf import backbones
from csra_tf.backbones import TokensToFeatureMap, interpolate_position_embeddings
from csra_tf.layers.pixel_normalization import PixelNormalization
from csra_tf.models import build_classifier
from tests.keras_harness import run_layer_test, run_model_saving_test

_TINY = dict(patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32)


def _pixels(size=32, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")


def _save_tiny_preset(path, image_size=32):
    source = keras_hub.models.ViTBackbone(
        image_shape=(image_size, image_size, 3), **_TINY
    )
    source.save_to_preset(str(path))
    return source


def _position_table(vit):
    layer = vit.get_layer("vit_patching_and_embedding").position_embedding
    return np.asarray(layer.embeddings)


def _inner_vit(model):
    return next(
        layer
        for layer in model.layers
        if isinstance(layer, keras_hub.models.ViTBackbone)
    )


@pytest.mark.parametrize(
    "init_kwargs",
    [{"grid_size": (2, 3)}, {"grid_size": (3, 2), "num_prefix_tokens": 0}],
)
def test_tokens_to_feature_map_layer_harness(init_kwargs):
    prefix = init_kwargs.get("num_prefix_tokens", 1)
    tokens = np.random.default_rng(0).normal(size=(2, prefix + 6, 4)).astype("float32")
    run_layer_test(
        TokensToFeatureMap,
        init_kwargs,
        tokens,
        expected_output_shape=(2, *init_kwargs["grid_size"], 4),
        expected_output=tokens[:, prefix:].reshape(2, *init_kwargs["grid_size"], 4),
        rtol=0,
        atol=0,  # a slice and a reshape: exact
    )


def test_tokens_to_feature_map_errors():
    with pytest.raises(ValueError, match="grid_size"):
        TokensToFeatureMap(grid_size=(2,))
    with pytest.raises(ValueError, match="num_prefix_tokens"):
        TokensToFeatureMap(grid_size=(2, 2), num_prefix_tokens=-1)
    with pytest.raises(ValueError, match="tokens"):
        TokensToFeatureMap(grid_size=(2, 2))(np.zeros((1, 6, 4), "float32"))


def test_interpolation_is_checked_before_building():
    with pytest.raises(ValueError, match="interpolation=nearest"):
        backbones.create("vit_tiny", image_size=64, interpolation="nearest")


def test_registered_architectures():
    assert {"vit_b16", "vit_l16"} <= set(backbones.available())
    from csra_tf.backbones.vit import VIT_CONFIGS

    assert VIT_CONFIGS["vit_b16"]["hidden_dim"] == 768
    assert VIT_CONFIGS["vit_l16"]["num_layers"] == 24


def test_random_vit_map_drops_class_token():
    model = backbones.create("vit_b16", image_size=32, **_TINY)
    assert model.output_shape == (None, 4, 4, 16)
    vit = _inner_vit(model)
    x = _pixels()
    tokens = np.asarray(vit(x / 127.5 - 1.0))
    np.testing.assert_allclose(
        np.asarray(model(x)), tokens[:, 1:].reshape(2, 4, 4, 16), atol=1e-5
    )


def test_vit_classifier_saves_and_loads():
    backbone = backbones.create("vit_l16", image_size=32, **_TINY)
    model = build_classifier(backbone, num_classes=3, image_size=32, num_heads=2)
    run_model_saving_test(model, _pixels(), atol=1e-5)


def test_local_preset_same_size(tmp_path):
    source = _save_tiny_preset(tmp_path / "preset")
    model = backbones.create("vit_b16", weights=str(tmp_path / "preset"), image_size=32)
    x = _pixels()
    tokens = np.asarray(source(x / 127.5 - 1.0))
    np.testing.assert_allclose(
        np.asarray(model(x)), tokens[:, 1:].reshape(2, 4, 4, 16), atol=1e-5
    )


def test_local_preset_interpolated_to_larger_input(tmp_path):
    source = _save_tiny_preset(tmp_path / "preset")
    model = backbones.create("vit_b16", weights=str(tmp_path / "preset"), image_size=64)
    assert model.output_shape == (None, 8, 8, 16)
    vit = _inner_vit(model)
    np.testing.assert_allclose(
        _position_table(vit),
        interpolate_position_embeddings(_position_table(source), (8, 8)),
        atol=1e-6,
    )
    others = [w for w in source.weights if "position_embedding" not in w.path]
    resized = [w for w in vit.weights if "position_embedding" not in w.path]
    assert len(others) == len(resized) == len(source.weights) - 1
    for a, b in zip(others, resized, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    model.predict(_pixels(64), verbose=0)


def test_local_preset_with_image_converter_uses_its_scaling(tmp_path):
    source = _save_tiny_preset(tmp_path / "preset")
    converter = keras_hub.layers.ViTImageConverter(
        image_size=(32, 32), scale=1.0 / 255.0, offset=0.0
    )
    converter.save_to_preset(str(tmp_path / "preset"))
    model = backbones.create("vit_b16", weights=str(tmp_path / "preset"), image_size=32)
    assert _normalization(model).mode == "unit"
    x = _pixels()
    tokens = np.asarray(source(x / 255.0))
    np.testing.assert_allclose(
        np.asarray(model(x)), tokens[:, 1:].reshape(2, 4, 4, 16), atol=1e-5
    )


def test_rejects_bad_sizes_and_weights():
    with pytest.raises(ValueError, match="image_size"):
        backbones.create("vit_b16", image_size=36, **_TINY)
    with pytest.raises(ValueError, match="weights"):
        backbones.create("vit_b16", weights="not_a_preset", image_size=32)


def _normalization(model):
    return next(
        layer
        for layer in model.layers
        if isinstance(layer, PixelNormalization | keras.layers.Rescaling)
    )


def test_vit_tiny_is_registered_for_tests():
    from csra_tf.backbones.vit import VIT_CONFIGS

    assert "vit_tiny" in backbones.available()
    assert VIT_CONFIGS["vit_tiny"] == dict(
        patch_size=16, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64
    )
    model = backbones.create("vit_tiny", image_size=48)
    assert model.output_shape == (None, 3, 3, 32)


def test_default_pixel_normalization_is_symmetric():
    model = backbones.create("vit_tiny", image_size=32)
    layer = _normalization(model)
    assert isinstance(layer, PixelNormalization) and layer.mode == "symmetric"
    x = _pixels()
    tokens = np.asarray(_inner_vit(model)(x / 127.5 - 1.0))
    np.testing.assert_allclose(
        np.asarray(model(x)), tokens[:, 1:].reshape(2, 2, 2, 32), atol=1e-5
    )


@pytest.mark.parametrize(
    "mode, scaled",
    [
        ("unit", lambda x: x / 255.0),
        (
            "imagenet",
            lambda x: (
                (x / 255.0 - np.array([0.485, 0.456, 0.406]))
                / np.array([0.229, 0.224, 0.225])
            ),
        ),
    ],
)
def test_pixel_normalization_can_be_set(mode, scaled):
    model = backbones.create("vit_tiny", image_size=32, pixel_normalization=mode)
    assert _normalization(model).mode == mode
    x = _pixels()
    tokens = np.asarray(_inner_vit(model)(scaled(x).astype("float32")))
    np.testing.assert_allclose(
        np.asarray(model(x)), tokens[:, 1:].reshape(2, 2, 2, 32), atol=1e-5
    )


def test_preset_scaling_can_be_overridden(tmp_path):
    _save_tiny_preset(tmp_path / "preset")
    model = backbones.create(
        "vit_b16",
        weights=str(tmp_path / "preset"),
        image_size=32,
        pixel_normalization="unit",
    )
    assert _normalization(model).mode == "unit"


def test_preset_with_unnamed_scaling_keeps_it(tmp_path):
    source = _save_tiny_preset(tmp_path / "preset")
    converter = keras_hub.layers.ViTImageConverter(
        image_size=(32, 32), scale=1.0 / 100.0, offset=-0.5
    )
    converter.save_to_preset(str(tmp_path / "preset"))
    model = backbones.create("vit_b16", weights=str(tmp_path / "preset"), image_size=32)
    assert isinstance(_normalization(model), keras.layers.Rescaling)
    x = _pixels()
    tokens = np.asarray(source(x / 100.0 - 0.5))
    np.testing.assert_allclose(
        np.asarray(model(x)), tokens[:, 1:].reshape(2, 4, 4, 16), atol=1e-5
    )


def test_rejects_unknown_pixel_normalization():
    with pytest.raises(ValueError, match="pixel_normalization=caffe"):
        backbones.create("vit_tiny", image_size=32, pixel_normalization="caffe")
