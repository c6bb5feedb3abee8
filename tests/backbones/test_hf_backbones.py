"""Today's transformer backbones (DINOv2/v3, Swin, SigLIP2, CLIP, DeiT) against PyTorch.

The checkpoints are tiny random-weight models saved by transformers in a
Hugging Face cache (fixtures/hf_cache); `hf://fixtures/<name>` handles load
them offline through keras-hub's `from_preset` (and for SigLIP and CLIP
through `csra_tf.backbones.transformers_towers`). The expected features were
computed by transformers on real photos at the checkpoint's own size and at
another one (fixtures/make_hf_fixtures.py).
"""

import pathlib
import shutil

import keras
import numpy as np
import pytest

from csra_tf import backbones
from csra_tf.backbones.foundation_models import (
    CLIP_CONFIGS,
    DEIT_CONFIGS,
    DINOV2_CONFIGS,
    DINOV3_CONFIGS,
    SIGLIP2_CONFIGS,
    SWIN_CONFIGS,
)
from csra_tf.backbones.siglip2 import SigLIPPatchTokens
from csra_tf.errors import UserError
from csra_tf.layers import PixelNormalization
from csra_tf.models import build_classifier
from tests.keras_harness import run_layer_test, run_model_saving_test

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
TOLERANCE = 1e-4  # of the features' scale (max abs value)

# (registered name, fixture, input size): the name picks the family, the
# checkpoint its architecture; the fixture's own size comes first.
CASES = [
    ("dinov2_small", "dinov2-tiny", 56),
    ("dinov2_small", "dinov2-tiny", 84),
    ("dinov2_base_reg", "dinov2-reg-tiny", 84),
    ("dinov2_base_reg", "dinov2-reg-tiny", 56),
    ("swin_base", "swin-tiny-random", 32),
    ("swin_base", "swin-tiny-random", 48),
    ("siglip2_so400m", "siglip-tiny", 64),
    ("siglip2_so400m", "siglip-tiny", 96),
    ("clip_vitl14", "clip-tiny", 64),
    ("clip_vitl14", "clip-tiny", 96),
    ("dinov3_vitb16", "dinov3-tiny", 64),
    ("dinov3_vitb16", "dinov3-tiny", 96),
    ("deit_base", "deit-tiny", 64),
    ("deit_base", "deit-tiny", 96),
]

NAMES = [
    *(f"dinov2_{size}" for size in ("small", "base", "large", "giant")),
    *(f"dinov2_{size}_reg" for size in ("small", "base", "large", "giant")),
    *("dinov3_vits16", "dinov3_vitb16", "dinov3_vitl16"),
    *("swin_tiny", "swin_small", "swin_base", "swin_large"),
    *("siglip2_base", "siglip2_large", "siglip2_so400m"),
    *("clip_vitb16", "clip_vitl14", "deit_base"),
]


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURES / "hf_expected.npz") as arrays:
        return dict(arrays)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The fixtures' Hugging Face cache (a copy), offline.

    huggingface_hub reads `HF_HUB_OFFLINE` and `HF_HUB_CACHE` when it is
    imported, so its constants are set as well as the variables.
    """
    from huggingface_hub import constants

    cache = tmp_path / "hf_cache"
    shutil.copytree(FIXTURES / "hf_cache", cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def _relative_error(actual, reference):
    return float(np.max(np.abs(actual - reference)) / np.max(np.abs(reference)))


@pytest.mark.parametrize("name, fixture, size", CASES)
def test_features_equal_pytorch(hub, expected, name, fixture, size):
    images = expected[f"{fixture}/{size}/images"]
    reference = expected[f"{fixture}/{size}/features"]
    model = backbones.create(name, weights=f"hf://fixtures/{fixture}", image_size=size)
    features = np.asarray(model(images.astype("float32")))
    assert features.shape == reference.shape
    assert _relative_error(features, reference) < TOLERANCE


def test_build_classifier_from_hf_handle(hub, expected):
    images = expected["dinov2-reg-tiny/56/images"].astype("float32")
    model = build_classifier(
        "dinov2_small_reg",
        num_classes=3,
        weights="hf://fixtures/dinov2-reg-tiny",
        image_size=56,
    )
    logits = model.predict(images, verbose=0)
    assert logits.shape == (2, 3) and np.all(np.isfinite(logits))
    features = np.asarray(model.backbone(images))
    reference = expected["dinov2-reg-tiny/56/features"]
    assert _relative_error(features, reference) < TOLERANCE
    run_model_saving_test(model, images, atol=1e-5)


@pytest.mark.parametrize(
    "name, fixture, size",
    [
        ("dinov2_small_reg", "dinov2-reg-tiny", 56),
        ("siglip2_base", "siglip-tiny", 96),
        ("clip_vitb16", "clip-tiny", 96),
    ],
)
def test_keras_round_trip_safe_mode(hub, expected, name, fixture, size):
    images = expected[f"{fixture}/{size}/images"].astype("float32")
    model = backbones.create(name, weights=f"hf://fixtures/{fixture}", image_size=size)
    run_model_saving_test(model, images, atol=1e-5)


def test_siglip_patch_tokens_layer_harness():
    # keras-hub's static shape counts one token too many; the layer states
    # the true count and passes the tokens on unchanged.
    tokens = np.random.default_rng(0).normal(size=(2, 9, 8)).astype("float32")
    run_layer_test(
        SigLIPPatchTokens,
        {"num_patches": 9},
        tokens,
        expected_output_shape=(2, 9, 8),
        expected_output=tokens,
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize(
    "name, fixture, fragment",
    [
        ("swin_tiny", "dinov2-tiny", "Swin Transformer"),
        ("dinov3_vits16", "deit-tiny", "DINOv3"),
        ("dinov2_small", "dinov2-reg-tiny", "without register tokens"),
        ("dinov2_small_reg", "dinov2-tiny", "with register tokens"),
        ("clip_vitb16", "siglip-tiny", "CLIP"),
        ("siglip2_base", "clip-tiny", "SigLIP"),
    ],
)
def test_weights_of_another_family_are_refused_in_one_line(
    hub, name, fixture, fragment
):
    weights = f"hf://fixtures/{fixture}"
    with pytest.raises(UserError) as error:
        backbones.create(name, weights=weights, image_size=64)
    message = str(error.value)
    assert "\n" not in message and fragment in message, message
    assert f"weights={weights}" in message, message


def test_image_size_must_fit_the_patches(hub):
    with pytest.raises(UserError, match="patch size.*Received: image_size=60"):
        backbones.create(
            "dinov2_small", weights="hf://fixtures/dinov2-tiny", image_size=60
        )


def test_swin_image_size_must_fit_whole_windows():
    # Swin-T: 4 px patches, 3 merges, 7 x 7 windows: multiples of 224.
    with pytest.raises(UserError, match=r"\(224\). Received: image_size=256"):
        backbones.create("swin_tiny", image_size=256)


def test_missing_checkpoint_offline_is_one_line(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    weights = "hf://google/siglip2-base-patch16-224"
    with pytest.raises(UserError) as error:
        backbones.create("siglip2_base", weights=weights, image_size=224)
    message = str(error.value)
    assert "\n" not in message and "HF_HUB_OFFLINE is set" in message, message
    assert message.endswith(f"Received: weights={weights}"), message


def test_unknown_weights_are_refused(hub):
    with pytest.raises(UserError, match="keras-hub preset"):
        backbones.create("dinov2_small", weights="dinov2_smol", image_size=28)


_TINY = dict(num_layers=1, hidden_dim=32, num_heads=2, intermediate_dim=64)


@pytest.mark.parametrize(
    "name, pixel_normalization, mean, std",
    [
        ("dinov2_small", None, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ("siglip2_base", None, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        (
            "clip_vitb16",
            None,
            (0.48145466, 0.4578275, 0.40821073),
            (0.26862954, 0.26130258, 0.27577711),
        ),
        ("clip_vitb16", "unit", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    ],
)
def test_pixels_are_normalised_as_the_weights_expect(
    name, pixel_normalization, mean, std
):
    model = backbones.create(
        name, image_size=112, pixel_normalization=pixel_normalization, **_TINY
    )
    (layer,) = [
        x
        for x in model.layers
        if isinstance(x, (PixelNormalization, keras.layers.Rescaling))
    ]
    pixels = np.array([[[[0.0, 127.0, 255.0]]]], "float32")
    expected = (pixels / 255.0 - np.asarray(mean)) / np.asarray(std)
    np.testing.assert_allclose(
        np.asarray(layer(pixels)), expected, rtol=1e-5, atol=1e-5
    )


def test_names_are_registered():
    assert set(NAMES) <= set(backbones.available())


def test_random_weights_build_offline(hub):
    # DINOv3 has no position table, so its size does not depend on the input:
    # 21,596,544 parameters is transformers' DINOv3ViTModel with the published
    # ViT-S/16 config (4 registers).
    model = backbones.create("dinov3_vits16", image_size=32)
    assert model.output_shape == (None, 2, 2, 384)
    assert model.count_params() == 21_596_544
    pixels = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3))
    assert np.all(np.isfinite(np.asarray(model(pixels.astype("float32")))))


# The published transformers configs of the registered names (the fields
# that set the architecture), as on the Hugging Face hub.
_DINOV2 = {
    "small": (384, 12, 6, False),
    "base": (768, 12, 12, False),
    "large": (1024, 24, 16, False),
    "giant": (1536, 40, 24, True),
}
_DINOV3 = {"vits16": (384, 12, 6, 1536), "vitb16": (768, 12, 12, 3072)}
_DINOV3["vitl16"] = (1024, 24, 16, 4096)
_SWIN = {
    "tiny": (96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "small": (96, (2, 2, 18, 2), (3, 6, 12, 24)),
    "base": (128, (2, 2, 18, 2), (4, 8, 16, 32)),
    "large": (192, (2, 2, 18, 2), (6, 12, 24, 48)),
}
_SIGLIP2 = {"base": (768, 12, 12, 3072), "large": (1024, 24, 16, 4096)}
_SIGLIP2["so400m"] = (1152, 27, 16, 4304)
_CLIP = {"vitb16": (768, 12, 12, 3072, 16), "vitl14": (1024, 24, 16, 4096, 14)}


def test_configs_are_the_published_architectures():
    from keras_hub.src.utils.transformers import (
        convert_deit,
        convert_dinov2,
        convert_dinov3,
        convert_swin_transformer,
    )

    keys = ("hidden_dim", "num_layers", "num_heads", "intermediate_dim", "patch_size")
    for size, (hidden, layers, heads, swiglu) in _DINOV2.items():
        for suffix, model_type, registers in (
            ("", "dinov2", 0),
            ("_reg", "dinov2_with_registers", 4),
        ):
            published = dict(
                model_type=model_type,
                image_size=518,
                patch_size=14,
                hidden_size=hidden,
                num_hidden_layers=layers,
                num_attention_heads=heads,
                mlp_ratio=4,
                layerscale_value=1.0,
                num_register_tokens=registers,
                use_swiglu_ffn=swiglu,
                hidden_dropout_prob=0.0,
                drop_path_rate=0.0,
            )
            converted = convert_dinov2.convert_backbone_config(published)
            ours = DINOV2_CONFIGS[f"dinov2_{size}{suffix}"]
            for key in (*keys, "num_register_tokens", "use_swiglu_ffn"):
                assert ours[key] == converted[key], (size, suffix, key)
            assert ours["antialias_in_interpolation"] == bool(registers)
    for size, (hidden, layers, heads, mlp) in _DINOV3.items():
        published = dict(
            image_size=224,
            patch_size=16,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=mlp,
            layerscale_value=1.0,
            num_register_tokens=4,
            hidden_act="gelu",
            use_gated_mlp=False,
            query_bias=True,
            key_bias=False,
            value_bias=True,
            proj_bias=True,
            mlp_bias=True,
            attention_dropout=0.0,
            drop_path_rate=0.0,
            layer_norm_eps=1e-5,
            rope_theta=100.0,
        )
        converted = convert_dinov3.convert_backbone_config(published)
        ours = DINOV3_CONFIGS[f"dinov3_{size}"]
        for key, value in ours.items():
            assert converted[key] == value, (size, key)
    for size, (embed, depths, heads) in _SWIN.items():
        published = dict(
            image_size=224,
            patch_size=4,
            embed_dim=embed,
            depths=depths,
            num_heads=heads,
            window_size=7,
            mlp_ratio=4.0,
            qkv_bias=True,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            drop_path_rate=0.1,
        )
        converted = convert_swin_transformer.convert_backbone_config(published)
        for key, value in SWIN_CONFIGS[f"swin_{size}"].items():
            assert tuple(np.ravel(converted[key])) == tuple(np.ravel(value)), key
    published = dict(
        image_size=224,
        patch_size=16,
        num_hidden_layers=12,
        num_attention_heads=12,
        hidden_size=768,
        intermediate_size=3072,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        layer_norm_eps=1e-12,
    )
    converted = convert_deit.convert_backbone_config(published)
    for key, value in DEIT_CONFIGS["deit_base"].items():
        assert converted[key] == value, key
    for size, (hidden, layers, heads, mlp) in _SIGLIP2.items():
        ours = SIGLIP2_CONFIGS[f"siglip2_{size}"]
        assert (ours["hidden_dim"], ours["num_layers"]) == (hidden, layers)
        assert (ours["num_heads"], ours["intermediate_dim"]) == (heads, mlp)
        assert ours["patch_size"] == 16
    for size, (hidden, layers, heads, mlp, patch) in _CLIP.items():
        ours = CLIP_CONFIGS[f"clip_{size}"]
        assert (ours["hidden_dim"], ours["num_layers"]) == (hidden, layers)
        assert (ours["num_heads"], ours["intermediate_dim"]) == (heads, mlp)
        assert ours["patch_size"] == patch
