"""ClassAttentionPooling ("spatial only", Table 6) against NumPy of f = a."""

import math

import keras
import numpy as np
import pytest

from csra_tf.config import HEADS
from csra_tf.layers import CSRA, MAX_POOLING, ClassAttentionPooling
from csra_tf.models import build_classifier


def reference_attention_pooling(x, kernels, temperatures, normalize=True):
    """Eq. 2-3 and 6 with f_i = a_i (no average term); Eq. 13 sums the heads.

    x: (B, L, d) features; kernels: list of (d, C) classifiers m (column m_i).
    """
    batch = x.shape[0]
    num_classes = kernels[0].shape[1]
    y = np.zeros((batch, num_classes))
    for m, temperature in zip(kernels, temperatures, strict=True):
        m = m.astype(np.float64)
        if normalize:
            m = m / np.linalg.norm(m, axis=0, keepdims=True)
        for b in range(batch):
            xb = x[b].astype(np.float64)
            for i in range(num_classes):
                logits = xb @ m[:, i]
                if math.isinf(temperature):
                    a = xb[np.argmax(logits)]
                else:
                    e = np.exp(temperature * logits - np.max(temperature * logits))
                    a = ((e / e.sum())[:, None] * xb).sum(axis=0)
                y[b, i] += m[:, i] @ a
    return y


@pytest.mark.parametrize("num_heads", [1, 2, 4])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_numpy(num_heads, normalize):
    rng = np.random.default_rng(num_heads)
    x = rng.normal(size=(3, 4, 5, 8)).astype("float32")
    layer = ClassAttentionPooling(6, num_heads=num_heads, normalize=normalize)
    layer.build(x.shape)
    kernels = [
        rng.normal(scale=0.5, size=(8, 6)).astype("float32") for _ in range(num_heads)
    ]
    layer.set_weights(kernels)
    expected = reference_attention_pooling(
        x.reshape(3, 20, 8), kernels, layer.temperatures, normalize
    )
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=2e-5, atol=2e-5)


def test_tokens_custom_temperatures_and_attention_like_csra():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 8)).astype("float32")
    temperatures = [3.0, MAX_POOLING]
    layer = ClassAttentionPooling(4, num_heads=2, temperatures=temperatures)
    csra = CSRA(4, num_heads=2, temperatures=temperatures)
    layer.build(x.shape)
    csra.build(x.shape)
    kernels = [rng.normal(size=(8, 4)).astype("float32") for _ in range(2)]
    layer.set_weights(kernels)
    csra.set_weights(kernels)
    expected = reference_attention_pooling(x, kernels, temperatures)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(
        np.asarray(layer.attention(x)), np.asarray(csra.attention(x)), atol=1e-6
    )


def test_config_round_trip_has_no_lambda():
    layer = ClassAttentionPooling(5, num_heads=4, normalize=False, name="pool")
    config = layer.get_config()
    assert "lam" not in config
    assert config["temperatures"] == [1.0, 2.0, 4.0, float("inf")]
    clone = ClassAttentionPooling.from_config(config)
    assert clone.get_config() == config


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        ClassAttentionPooling(3, num_heads=0)
    with pytest.raises(ValueError, match="temperatures"):
        ClassAttentionPooling(3, num_heads=2, temperatures=[1.0])


def test_attention_head_in_classifier_round_trip(tmp_path):
    assert "attention" in HEADS
    model = build_classifier("tiny", num_classes=3, head="attention", image_size=32)
    head = model.head
    assert isinstance(head, ClassAttentionPooling)
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    features = model.backbone(x)
    expected = reference_attention_pooling(
        np.asarray(features).reshape(2, -1, features.shape[-1]),
        head.get_weights(),
        head.temperatures,
    )
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-4, atol=1e-5)
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored.head, ClassAttentionPooling)
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(model(x)), atol=1e-5)
