"""keras-hub backbones: torchvision ResNet layouts, presets, pixel normalisation."""

import pathlib
import shutil
import socket

import keras_hub
import numpy as np
import pytest

from csra_tf import backbones
from csra_tf.errors import UserError
from csra_tf.layers.pixel_normalization import PixelNormalization
from tests.keras_harness import run_model_saving_test

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
# A tiny timm ResNet in the Hugging Face cache's layout and timm's features
# (fixtures/make_timm_resnet_fixture.py); its own size first.
TIMM_RESNET_REPO = "models--fixtures--resnet-tiny-timm"
TIMM_RESNET_HANDLE = "hf://fixtures/resnet-tiny-timm"
TIMM_RESNET_OVERRIDES = dict(
    stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_filters=[64, 8, 16, 16]
)
TIMM_RESNET_SIZES = (64, 80)
# torchvision's parameter counts without `fc`, e.g.
# sum(p.numel() for k, p in resnet50().named_parameters() if not k.startswith("fc."))
TORCHVISION_PARAMETERS = {
    "resnet18": 11_176_512,
    "resnet34": 21_284_672,
    "resnet50": 23_508_032,
    "resnet101": 42_500_160,
    "resnet152": 58_143_808,
}
# One small member of every keras-hub family, built at 32 px.
FAMILY_MEMBERS = {
    "resnet_tiny": 64,
    "resnet18_vd": 512,
    "keras_hub_efficientnet_lite0": 1280,
    "keras_hub_mobilenet_v3_small_050": 288,
}


def _pixels(size=32, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")


def _parameter_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _normalization(model):
    (layer,) = [x for x in model.layers if isinstance(x, PixelNormalization)]
    return layer.mode


def _hub_resnet_tiny(size=32):
    return keras_hub.models.ResNetBackbone(
        **backbones.TORCHVISION_RESNET_CONFIGS["resnet_tiny"],
        image_shape=(size, size, 3),
    )


@pytest.fixture(scope="module")
def tiny():
    return backbones.create("resnet_tiny", image_size=32)


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101"])
def test_resnets_have_torchvision_parameter_counts(name):
    model = backbones.create(name, image_size=32)
    assert _parameter_count(model) == TORCHVISION_PARAMETERS[name]
    assert _normalization(model) == "imagenet"


@pytest.mark.slow
def test_resnet152_has_torchvision_parameter_count():
    model = backbones.create("resnet152", image_size=32)
    assert _parameter_count(model) == TORCHVISION_PARAMETERS["resnet152"]


def test_resnet_layout_is_torchvision_v1_5():
    config = backbones.TORCHVISION_RESNET_CONFIGS["resnet50"]
    hub = keras_hub.models.ResNetBackbone(**config, image_shape=(64, 64, 3))
    # Stride 2 on the 3x3 convolution and on the 1x1 shortcut, not on conv1.
    assert hub.get_layer("stack1_block0_1_conv").strides == (1, 1)
    assert hub.get_layer("stack1_block0_2_conv").strides == (2, 2)
    assert hub.get_layer("stack1_block0_0_conv").strides == (2, 2)
    assert hub.get_layer("stack1_block0_1_bn").epsilon == 1e-5
    assert hub.get_layer("conv1_conv").kernel_size == (7, 7)


@pytest.mark.parametrize("name, channels", FAMILY_MEMBERS.items())
def test_family_members_build_offline(name, channels):
    model = backbones.create(name, image_size=32)
    assert model.output_shape == (None, 1, 1, channels)
    assert _normalization(model) == "imagenet"


def test_registry_names():
    names = backbones.available()
    for depth in (18, 34, 50, 101, 152):
        assert f"resnet{depth}" in names and f"resnet{depth}_vd" in names
    assert "resnet200_vd" in names and "resnet_tiny" in names
    for variant in ("b0", "b1", "b2", "b3", "b4", "b5", "lite0"):
        assert f"keras_hub_efficientnet_{variant}" in names
    for variant in ("small_050", "small_100", "large_100"):
        assert f"keras_hub_mobilenet_v3_{variant}" in names


@pytest.mark.slow
def test_every_keras_hub_name_builds_offline():
    """About 25 s; the keras-cv and ViT names are built by their own tests."""
    tested = set(FAMILY_MEMBERS) | set(TORCHVISION_PARAMETERS)
    names = [
        *backbones.RESNET_VD_CONFIGS,
        *backbones.EFFICIENTNET_CONFIGS,
        *backbones.MOBILENET_V3_CONFIGS,
    ]
    for name in sorted(set(names) - tested):
        model = backbones.create(name, image_size=32)
        assert model.output_shape[:3] == (None, 1, 1), name


def test_pixel_normalization_override(tiny):
    x = _pixels()
    symmetric = backbones.create(
        "resnet_tiny", image_size=32, pixel_normalization="symmetric"
    )
    symmetric.set_weights(tiny.get_weights())
    assert _normalization(symmetric) == "symmetric"
    inner = tiny.layers[-1]
    np.testing.assert_allclose(
        np.asarray(symmetric(x)), np.asarray(inner(x / 127.5 - 1.0)), atol=1e-5
    )


def test_local_preset_round_trip(tmp_path, tiny):
    source = _hub_resnet_tiny()
    source.save_to_preset(str(tmp_path))
    loaded = backbones.create("resnet_tiny", weights=str(tmp_path), image_size=32)
    assert _normalization(loaded) == "imagenet"
    x = _pixels()
    mean = np.array([0.485, 0.456, 0.406], "float32")
    std = np.array([0.229, 0.224, 0.225], "float32")
    np.testing.assert_allclose(
        np.asarray(loaded(x)), np.asarray(source((x / 255.0 - mean) / std)), atol=1e-5
    )


def test_preset_image_converter_sets_the_default(tmp_path):
    source = _hub_resnet_tiny()
    source.save_to_preset(str(tmp_path))
    keras_hub.layers.ResNetImageConverter(scale=1 / 255.0).save_to_preset(str(tmp_path))
    loaded = backbones.create("resnet_tiny", weights=str(tmp_path), image_size=32)
    assert _normalization(loaded) == "unit"
    x = _pixels()
    np.testing.assert_allclose(
        np.asarray(loaded(x)), np.asarray(source(x / 255.0)), atol=1e-5
    )
    explicit = backbones.create(
        "resnet_tiny",
        weights=str(tmp_path),
        image_size=32,
        pixel_normalization="imagenet",
    )
    assert _normalization(explicit) == "imagenet"


def test_preset_of_another_architecture_is_refused(tmp_path):
    _hub_resnet_tiny().save_to_preset(str(tmp_path))
    with pytest.raises(ValueError, match="another architecture than resnet50"):
        backbones.create("resnet50", weights=str(tmp_path), image_size=32)


@pytest.mark.parametrize(
    "name, weights, hint",
    [
        ("resnet50", "resnet50_imagenet", "keras_cv_resnet50"),
        ("resnet101", "resnet_50_imagenet", "resnet_101_imagenet"),
        ("resnet50_vd", "resnet_50_imagenet", "resnet_vd_50_imagenet"),
        ("keras_hub_efficientnet_b0", "efficientnet_b1_ft_imagenet", "b0_ra"),
    ],
)
def test_unknown_or_foreign_presets_are_refused(name, weights, hint):
    with pytest.raises(ValueError, match="Received: weights=") as error:
        backbones.create(name, weights=weights, image_size=32)
    assert hint in str(error.value)


def test_keras_round_trip_safe_mode(tiny):
    loaded = run_model_saving_test(tiny, _pixels())
    assert _normalization(loaded) == "imagenet"


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """`HF_HUB_OFFLINE=1` with an empty `HF_HUB_CACHE` in `tmp_path`.

    huggingface_hub reads both variables when it is imported, so its constants
    are set as well (tests/cli/test_offline.py sets only the variables, in a
    fresh process).
    """
    from huggingface_hub import constants

    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def timm_resnet_expected():
    with np.load(FIXTURES / "timm_resnet_expected.npz") as arrays:
        return dict(arrays)


def _one_line_error(name, weights, *fragments):
    with pytest.raises(UserError) as error:
        backbones.create(name, weights=weights, image_size=32)
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in (f"Received: weights={weights}", *fragments):
        assert fragment in message, message
    return error.value


def test_hf_handle_offline_with_an_empty_cache_is_one_line(offline_hub):
    error = _one_line_error(
        "resnet18",
        "hf://timm/resnet18.a1_in1k",
        "HF_HUB_OFFLINE is set",
        str(offline_hub),
        "hf download timm/resnet18.a1_in1k",
        "local preset folder",
    )
    assert isinstance(error, ValueError)


def test_hf_handle_offline_loads_from_a_filled_cache(offline_hub):
    # A preset in the Hugging Face cache's layout, as `hf download` leaves it.
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = offline_hub / "models--csra-tf--resnet-tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    source = _hub_resnet_tiny()
    source.save_to_preset(str(repo / "snapshots" / revision))
    loaded = backbones.create(
        "resnet_tiny", weights="hf://csra-tf/resnet-tiny", image_size=32
    )
    x = _pixels()
    mean = np.array([0.485, 0.456, 0.406], "float32")
    std = np.array([0.229, 0.224, 0.225], "float32")
    np.testing.assert_allclose(
        np.asarray(loaded(x)), np.asarray(source((x / 255.0 - mean) / std)), atol=1e-5
    )


@pytest.mark.parametrize("size", TIMM_RESNET_SIZES)
def test_hf_timm_resnet_equals_timm(offline_hub, timm_resnet_expected, size):
    """An `hf://` timm ResNet through keras-hub's timm converter, offline.

    The checkpoint is timm's `resnet50.tv_in1k` layout (torchvision's V1.5, as
    `hf://timm/resnet101.tv_in1k`) with tiny widths and depth, written by timm
    (fixtures/make_timm_resnet_fixture.py); keras-hub's converter reads the
    depth and widths from the architecture's name, so the tiny ones are passed
    as overrides, as `from_preset` allows.
    """
    shutil.copytree(
        FIXTURES / "hf_cache" / TIMM_RESNET_REPO, offline_hub / TIMM_RESNET_REPO
    )
    model = backbones.create(
        "resnet50",
        weights=TIMM_RESNET_HANDLE,
        image_size=size,
        **TIMM_RESNET_OVERRIDES,
    )
    # The checkpoint's pretrained_cfg mean and std (0.5), not the default.
    assert _normalization(model) == "symmetric"
    images = timm_resnet_expected[f"{size}/images"].astype("float32")
    reference = timm_resnet_expected[f"{size}/features"]
    features = np.asarray(model(images))
    assert features.shape == reference.shape
    scale = np.max(np.abs(reference))
    assert np.max(np.abs(features - reference)) < 1e-4 * scale


def test_malformed_hf_handle_is_one_line(offline_hub):
    _one_line_error("resnet18", "hf://timm/resnet18/extra", "hf://<owner>/<model>")


def test_local_folder_without_config_is_one_line(tmp_path):
    _one_line_error("resnet18", str(tmp_path), "has no config.json", "save_to_preset")


def test_keras_hub_preset_without_network_is_one_line(tmp_path, monkeypatch):
    # No network: name resolution fails, as kagglehub's first request finds.
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path))
    _one_line_error(
        "resnet18",
        "resnet_18_imagenet",
        "kaggle://keras/resnetv1/keras/resnet_18_imagenet",
        "ConnectionError",
        "KAGGLEHUB_CACHE",
    )
