"""Backbone registry: names, shapes, pixel scaling and offline preset loading."""

import keras
import numpy as np
import pytest

from csra_tf import backbones


def test_tiny_backbone_shape_and_pixels_rescaled_inside():
    model = backbones.create("tiny", image_size=32)
    assert model.output_shape == (None, 4, 4, 128)
    assert any(isinstance(layer, keras.layers.Rescaling) for layer in model.layers)


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="resnet101"):
        backbones.create("resnet7")


def test_registry_covers_resnet_v1_v2_depths():
    names = backbones.available()
    for depth in (18, 34, 50, 101, 152):
        assert f"resnet{depth}" in names and f"resnet{depth}_v2" in names


@pytest.mark.parametrize(
    "name, blocks", [("resnet50", [1, 1, 1, 1]), ("resnet18_v2", [2, 2, 2, 2])]
)
def test_keras_cv_resnet_small_config(name, blocks):
    model = backbones.create(
        name, image_size=32, stackwise_filters=[64, 16, 16, 16], stackwise_blocks=blocks
    )
    features = model(np.zeros((1, 32, 32, 3), "float32"))
    assert features.shape[:3] == (1, 1, 1)


def test_resnet_loads_local_preset_directory(tmp_path):
    import keras_cv
    from keras_cv.src.utils.preset_utils import save_to_preset

    source = keras_cv.models.ResNetBackbone(
        stackwise_filters=[64, 16, 16, 16],
        stackwise_blocks=[1, 1, 1, 1],
        stackwise_strides=[1, 2, 2, 2],
        block_type="basic_block",
        include_rescaling=True,
        input_shape=(32, 32, 3),
    )
    save_to_preset(source, str(tmp_path / "preset"))
    loaded = backbones.create(
        "resnet18", weights=str(tmp_path / "preset"), image_size=32
    )
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(source(x)), atol=1e-5)


def test_resnet_rejects_unknown_weights():
    with pytest.raises(ValueError, match="weights"):
        backbones.create("resnet18", weights="not_a_preset", image_size=32)


def test_tiny_loads_local_weights(tmp_path):
    source = backbones.create("tiny", image_size=32)
    (tmp_path / "tiny").mkdir()
    source.save_weights(str(tmp_path / "tiny" / "model.weights.h5"))
    loaded = backbones.create("tiny", weights=str(tmp_path / "tiny"), image_size=32)
    for a, b in zip(source.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
