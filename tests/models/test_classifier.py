"""build_classifier: heads, shapes, GAP/CSRA equivalence and .keras round trips."""

import keras
import numpy as np
import pytest

from csra_tf.layers import CSRA
from csra_tf.models import build_classifier


@pytest.mark.parametrize("head", ["csra", "gap"])
def test_output_is_logits_per_class(head):
    model = build_classifier(
        "tiny", num_classes=5, head=head, image_size=32, num_heads=2
    )
    out = model(
        np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    )
    assert out.shape == (3, 5)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert model.get_layer("head") is not None


def test_gap_head_equals_csra_with_lambda_zero():
    gap = build_classifier("tiny", num_classes=4, head="gap", image_size=32)
    csra = build_classifier(
        gap.layers[1],
        num_classes=4,
        head="csra",
        lam=0.0,
        normalize=False,
        image_size=32,
    )
    kernel, _ = gap.get_layer("head").get_weights()
    gap.get_layer("head").set_weights([kernel, np.zeros(4, "float32")])
    csra.get_layer("head").set_weights([kernel])
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(csra(x)), np.asarray(gap(x)), atol=1e-5)


def test_classifier_keras_round_trip_safe_mode(tmp_path):
    model = build_classifier("tiny", num_classes=3, num_heads=4, lam=0.5, image_size=32)
    x = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored.get_layer("head"), CSRA)
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(model(x)), atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="head"):
        build_classifier("tiny", 3, head="mlp", image_size=32)
    with pytest.raises(ValueError, match="dropout"):
        build_classifier("tiny", 3, dropout=1.5, image_size=32)
