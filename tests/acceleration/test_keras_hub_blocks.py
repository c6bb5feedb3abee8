"""The speed paths on keras-hub's DINOv2 and Swin blocks: keras-hub's values."""

import numpy as np
import pytest
import tensorflow as tf

from csra_tf.acceleration import (
    accelerate,
    fused_dense,
    fused_layer_norm,
    matmul_attention,
    swin_mlp,
)
from csra_tf.acceleration.layer_walk import walk_layers
from csra_tf.backbones.dinov2 import dinov2_backbone
from csra_tf.backbones.swin import swin_backbone
from csra_tf.models import build_classifier

# Two blocks each; Swin with two stages (one patch merging) and no stochastic
# depth, so that a training call is deterministic.
TINY = {
    "dinov2": (
        lambda: dinov2_backbone(
            "dinov2_small",
            image_size=28,
            num_layers=2,
            hidden_dim=32,
            num_heads=2,
            intermediate_dim=64,
        ),
        28,
    ),
    "swin": (
        lambda: swin_backbone(
            "swin_tiny",
            image_size=32,
            embed_dim=8,
            depths=(2, 2),
            num_heads=(1, 2),
            window_size=2,
            drop_path=0.0,
        ),
        32,
    ),
}
# Layers that run a speed path's method after accelerate(for_training=True).
SWITCHED = {
    # per block: MultiHeadAttention's 4 projections, the MLP's 2 Dense; the
    # 2 blocks' norms and the final norm.
    "dinov2": {
        "Dense": 4,
        "EinsumDense": 8,
        "LayerNormalization": 5,
        "MultiHeadAttention": 2,
    },
    # per block: qkv, projection, the MLP's 2 Dense, 2 norms, the MLP itself
    # (its GELU); the patch embedding's norm, the merging's norm and Dense, the
    # final norm. The window attention is keras-hub's own batched matmuls,
    # which keep their ops.
    "swin": {"Dense": 17, "LayerNormalization": 11, "Mlp": 4},
}


def _twins(kind):
    """The tiny classifier twice, with the same random weights, and its side."""
    build, side = TINY[kind]
    models = [build_classifier(build(), 3, image_size=side) for _ in range(2)]
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.3, w.shape).astype("float32") for w in models[0].weights]
    for model in models:
        model.set_weights(weights)
    pixels = rng.uniform(0, 255, (2, side, side, 3)).astype("float32")
    return models, tf.constant(pixels)


def _switched(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for layer in walk_layers(model):
        if {"call", "_compute_attention"} & set(vars(layer)):
            name = type(layer).__name__
            counts[name] = counts.get(name, 0) + 1
    return counts


def _outputs_and_gradients(model, pixels):
    with tf.GradientTape() as tape:
        logits = model(pixels, training=True)
        loss = tf.reduce_sum(tf.sin(3 * logits))
    gradients = tape.gradient(loss, model.trainable_weights)
    return logits.numpy(), [
        None if g is None else tf.convert_to_tensor(g).numpy() for g in gradients
    ]


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the calls that reach each speed path's kernel."""
    calls = {"layer_norm": 0, "gelu": 0, "attention": 0, "mlp_gelu": 0}

    def counting(module, name, key):
        kernel = getattr(module, name)

        def counted(*args, **kwargs):
            calls[key] += 1
            return kernel(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)

    counting(fused_layer_norm, "layer_norm", "layer_norm")
    counting(fused_dense, "gelu", "gelu")
    counting(matmul_attention, "batched_matmul_attention", "attention")
    counting(swin_mlp, "gelu", "mlp_gelu")
    return calls


@pytest.mark.parametrize("kind", sorted(TINY))
def test_training_paths_reach_the_blocks_with_keras_hub_values(kind, kernel_calls):
    (plain, fast), pixels = _twins(kind)
    assert accelerate(fast, for_training=True, device="CPU") is fast
    assert _switched(fast) == SWITCHED[kind]
    assert _switched(plain) == {}
    expected, expected_gradients = _outputs_and_gradients(plain, pixels)
    assert kernel_calls == {"layer_norm": 0, "gelu": 0, "attention": 0, "mlp_gelu": 0}
    logits, gradients = _outputs_and_gradients(fast, pixels)
    # Every norm, every block's GELU (DINOv2: the Dense's own; Swin: its MLP's)
    # and every attention core ran on its kernel.
    assert kernel_calls == {
        "layer_norm": SWITCHED[kind]["LayerNormalization"],
        "gelu": 2 if kind == "dinov2" else 0,
        "attention": SWITCHED[kind].get("MultiHeadAttention", 0),
        "mlp_gelu": SWITCHED[kind].get("Mlp", 0),
    }
    np.testing.assert_allclose(
        logits, expected, rtol=1e-5, atol=1e-5 * abs(expected).max()
    )
    scale = max(abs(g).max() for g in expected_gradients if g is not None)
    for variable, want, got in zip(
        plain.trainable_weights, expected_gradients, gradients, strict=True
    ):
        if want is None:  # e.g. DINOv2's mask token, unused without masks
            assert got is None, variable.path
            continue
        np.testing.assert_allclose(
            got, want, rtol=1e-4, atol=1e-5 * scale, err_msg=variable.path
        )


@pytest.mark.parametrize("kind", sorted(TINY))
def test_inference_paths_keep_keras_hub_values(kind, kernel_calls):
    (plain, fast), pixels = _twins(kind)
    expected = np.asarray(plain(pixels, training=False))
    inference = accelerate(fast, for_training=False, device="CPU")
    switched = _switched(inference)
    assert switched.get("Dense", 0) == SWITCHED[kind]["Dense"]
    assert not {"LayerNormalization", "Mlp"} & set(switched)  # training only
    np.testing.assert_allclose(
        inference.predict_on_batch(pixels),
        expected,
        rtol=1e-5,
        atol=1e-5 * abs(expected).max(),
    )
    # Inference keeps Keras's LayerNorm, Keras's attention core, keras.ops GELU.
    assert kernel_calls == {"layer_norm": 0, "gelu": 0, "attention": 0, "mlp_gelu": 0}
