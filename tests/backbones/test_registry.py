"""Backbone registry: names, pixel normalisation, the tiny backbone."""

import keras
import numpy as np
import pytest

from csra_tf import backbones
from csra_tf.layers.pixel_normalization import (
    PIXEL_NORMALIZATIONS,
    PixelNormalization,
)


def _pixels(size=32, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")


def test_tiny_backbone_shape_and_pixels_rescaled_inside():
    model = backbones.create("tiny", image_size=32)
    assert model.output_shape == (None, 4, 4, 128)
    assert any(isinstance(layer, keras.layers.Rescaling) for layer in model.layers)


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="resnet101"):
        backbones.create("resnet7")


def test_registry_names_by_library():
    names = backbones.available()
    for depth in (18, 34, 50, 101, 152):
        assert f"resnet{depth}" in names  # torchvision's, through keras-hub
        assert f"keras_cv_resnet{depth}" in names
        assert f"keras_cv_resnet{depth}_v2" in names
    assert {"tiny", "resnet_tiny", "vit_b16", "vit_l16"} <= set(names)


def test_unknown_pixel_normalization_is_refused():
    with pytest.raises(ValueError, match="Received: pixel_normalization=caffe"):
        backbones.create("resnet_tiny", image_size=32, pixel_normalization="caffe")


def test_tiny_takes_only_unit_pixels():
    model = backbones.create("tiny", image_size=32, pixel_normalization="unit")
    assert model.output_shape == (None, 4, 4, 128)
    with pytest.raises(ValueError, match="pixel_normalization=imagenet"):
        backbones.create("tiny", image_size=32, pixel_normalization="imagenet")


def test_tiny_loads_local_weights(tmp_path):
    source = backbones.create("tiny", image_size=32)
    (tmp_path / "tiny").mkdir()
    source.save_weights(str(tmp_path / "tiny" / "model.weights.h5"))
    loaded = backbones.create("tiny", weights=str(tmp_path / "tiny"), image_size=32)
    for a, b in zip(source.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("unit", lambda x: x / 255.0),
        ("symmetric", lambda x: x / 127.5 - 1.0),
        (
            "imagenet",
            lambda x: (
                (x / 255.0 - np.array([0.485, 0.456, 0.406]))
                / np.array([0.229, 0.224, 0.225])
            ),
        ),
    ],
)
def test_pixel_normalization_modes(mode, expected):
    x = _pixels(size=4)
    layer = PixelNormalization(mode)
    np.testing.assert_allclose(np.asarray(layer(x)), expected(x), rtol=1e-5, atol=1e-6)
    assert mode in PIXEL_NORMALIZATIONS
