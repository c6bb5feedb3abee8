"""keras-cv MobileNetV3 and EfficientNet backbones: layouts, saving, presets."""

import socket

import keras
import numpy as np
import pytest

from csra_tf import backbones
from csra_tf.errors import UserError
from csra_tf.layers.pixel_normalization import PixelNormalization
from csra_tf.models import build_classifier
from tests.keras_harness import run_model_test

_TINY_MOBILENET = dict(
    stackwise_expansion=[1, 4],
    stackwise_filters=[8, 16],
    stackwise_kernel_size=[3, 5],
    stackwise_stride=[2, 2],
    stackwise_se_ratio=[0.25, None],
    stackwise_activation=["relu", "hard_swish"],
)
_TINY_EFFICIENTNET_V1 = dict(
    stackwise_kernel_sizes=[3, 3],
    stackwise_num_repeats=[1, 1],
    stackwise_input_filters=[8, 8],
    stackwise_output_filters=[8, 16],
    stackwise_expansion_ratios=[1, 2],
    stackwise_strides=[1, 2],
    stackwise_squeeze_and_excite_ratios=[0.25, 0.25],
    width_coefficient=1.0,
    depth_coefficient=1.0,
)
_TINY_EFFICIENTNET_V2 = dict(
    stackwise_kernel_sizes=[3, 3],
    stackwise_num_repeats=[1, 1],
    stackwise_input_filters=[8, 8],
    stackwise_output_filters=[8, 16],
    stackwise_expansion_ratios=[1, 2],
    stackwise_squeeze_and_excite_ratios=[0, 0.25],
    stackwise_strides=[1, 2],
    stackwise_conv_types=["fused", "unfused"],
    width_coefficient=1.0,
    depth_coefficient=1.0,
)


def _pixels(size=32, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")


def _trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize(
    "name, application, channels",
    [
        ("mobilenet_v3_small", keras.applications.MobileNetV3Small, 576),
        ("mobilenet_v3_large", keras.applications.MobileNetV3Large, 960),
        ("efficientnet_b0", keras.applications.EfficientNetB0, 1280),
        ("efficientnet_b3", keras.applications.EfficientNetB3, 1536),
        ("efficientnet_v2_b0", keras.applications.EfficientNetV2B0, 1280),
        ("efficientnet_v2_b2", keras.applications.EfficientNetV2B2, 1408),
    ],
)
def test_standard_layouts_match_keras_applications(name, application, channels):
    model = backbones.create(name, image_size=32)
    reference = application(include_top=False, weights=None, input_shape=(32, 32, 3))
    assert model.output_shape == (None, 1, 1, channels)
    assert _trainable_count(model) == _trainable_count(reference)


def test_registry_names():
    names = backbones.available()
    for name in ("mobilenet_v3_small", "mobilenet_v3_large"):
        assert name in names
    for variant in ("b0", "b1", "b2", "b3"):
        assert f"efficientnet_{variant}" in names
        assert f"efficientnet_v2_{variant}" in names


@pytest.mark.parametrize(
    "name, overrides, grid, channels",
    [
        ("mobilenet_v3_small", _TINY_MOBILENET, 4, 96),
        ("efficientnet_b0", _TINY_EFFICIENTNET_V1, 8, 1280),
        ("efficientnet_v2_b0", _TINY_EFFICIENTNET_V2, 8, 1280),
    ],
)
def test_small_config_in_classifier_model_harness(name, overrides, grid, channels):
    def make_model():
        backbone = backbones.create(name, image_size=32, **overrides)
        assert backbone.output_shape == (None, grid, grid, channels)
        return build_classifier(backbone, num_classes=3, image_size=32, lam=0.2)

    x = _pixels()
    run_model_test(make_model, x, expected_output_shape=(len(x), 3), atol=1e-5)


def _normalization(model):
    (layer,) = [x for x in model.layers if isinstance(x, PixelNormalization)]
    return layer.mode


def test_pixels_are_normalized_inside():
    model = backbones.create("mobilenet_v3_small", image_size=32, **_TINY_MOBILENET)
    assert _normalization(model) == "unit"
    imagenet = backbones.create(
        "mobilenet_v3_small",
        image_size=32,
        pixel_normalization="imagenet",
        **_TINY_MOBILENET,
    )
    assert _normalization(imagenet) == "imagenet"


def test_registry_covers_keras_cv_resnet_v1_v2_depths():
    names = backbones.available()
    for depth in (18, 34, 50, 101, 152):
        assert f"keras_cv_resnet{depth}" in names
        assert f"keras_cv_resnet{depth}_v2" in names


@pytest.mark.parametrize(
    "name, blocks",
    [("keras_cv_resnet50", [1, 1, 1, 1]), ("keras_cv_resnet18_v2", [2, 2, 2, 2])],
)
def test_keras_cv_resnet_small_config(name, blocks):
    model = backbones.create(
        name, image_size=32, stackwise_filters=[64, 16, 16, 16], stackwise_blocks=blocks
    )
    features = model(_pixels(batch=1))
    assert features.shape[:3] == (1, 1, 1)


def test_keras_cv_resnet_loads_local_preset_directory(tmp_path):
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
        "keras_cv_resnet18", weights=str(tmp_path / "preset"), image_size=32
    )
    x = _pixels()
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(source(x)), atol=1e-5)


def test_keras_cv_resnet_rejects_unknown_weights():
    with pytest.raises(ValueError, match="weights"):
        backbones.create("keras_cv_resnet18", weights="not_a_preset", image_size=32)


@pytest.mark.parametrize("include_rescaling", [True, False])
def test_mobilenet_loads_local_preset_directory(tmp_path, include_rescaling):
    import keras_cv
    from keras_cv.src.utils.preset_utils import save_to_preset

    source = keras_cv.models.MobileNetV3Backbone(
        include_rescaling=include_rescaling, input_shape=(32, 32, 3), **_TINY_MOBILENET
    )
    save_to_preset(source, str(tmp_path / "preset"))
    loaded = backbones.create(
        "mobilenet_v3_small", weights=str(tmp_path / "preset"), image_size=32
    )
    x = _pixels()
    expected = np.asarray(source(x if include_rescaling else x / 255.0))
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-5)


def test_efficientnet_v2_loads_local_preset_directory(tmp_path):
    import keras_cv
    from keras_cv.src.utils.preset_utils import save_to_preset

    source = keras_cv.models.EfficientNetV2Backbone(
        include_rescaling=True, input_shape=(32, 32, 3), **_TINY_EFFICIENTNET_V2
    )
    save_to_preset(source, str(tmp_path / "preset"))
    loaded = backbones.create(
        "efficientnet_v2_b0", weights=str(tmp_path / "preset"), image_size=32
    )
    x = _pixels()
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(source(x)), atol=1e-5)


@pytest.mark.parametrize(
    "name, weights",
    [
        ("mobilenet_v3_small", "mobilenet_v3_large_imagenet"),
        ("efficientnet_b0", "efficientnetv1_b0"),
        ("efficientnet_v2_b1", "efficientnetv2_b0_imagenet"),
        ("keras_cv_resnet101", "resnet50_imagenet"),
    ],
)
def test_rejects_presets_of_another_architecture(name, weights):
    with pytest.raises(ValueError, match="weights"):
        backbones.create(name, weights=weights, image_size=32)


def test_preset_without_network_is_one_line(tmp_path, monkeypatch):
    # No network: name resolution fails, as kagglehub's first request finds.
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path))
    weights = "mobilenet_v3_small_imagenet"
    with pytest.raises(UserError) as error:
        backbones.create("mobilenet_v3_small", weights=weights, image_size=32)
    message = str(error.value)
    assert "\n" not in message
    for fragment in ("from Kaggle", "ConnectionError", "KAGGLEHUB_CACHE", weights):
        assert fragment in message, message


def test_local_folder_without_config_is_one_line(tmp_path):
    with pytest.raises(UserError, match="has no config.json"):
        backbones.create("mobilenet_v3_small", weights=str(tmp_path), image_size=32)
