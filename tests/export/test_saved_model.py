"""SavedModel export: signature names, shapes, dynamic batch, numerics."""

import numpy as np
import pytest
import tensorflow as tf

from csra_tf.export import export_saved_model
from csra_tf.inference import SavedModelRunner
from csra_tf.inference.runners import model_image_size
from csra_tf.models import build_classifier
from tests.exported_model import CLASS_NAMES, IMAGE_SIZE, probabilities


def test_serving_default_signature(exported, model):
    export_dir, _ = exported
    loaded = tf.saved_model.load(str(export_dir / "saved_model"))
    assert set(loaded.signatures) == {"serving_default", "attention"}
    serving = loaded.signatures["serving_default"]
    (spec,) = serving.structured_input_signature[1].values()
    assert spec.name == "images" and spec.dtype == tf.float32
    assert spec.shape.as_list() == [None, IMAGE_SIZE, IMAGE_SIZE, 3]
    assert set(serving.structured_outputs) == {"logits", "probabilities"}

    rng = np.random.default_rng(1)
    for batch in (1, 5):  # dynamic batch
        images = rng.uniform(0, 255, (batch, IMAGE_SIZE, IMAGE_SIZE, 3))
        outputs = serving(images=tf.constant(images, tf.float32))
        assert outputs["logits"].shape == (batch, len(CLASS_NAMES))
        np.testing.assert_allclose(
            outputs["probabilities"].numpy(),
            1 / (1 + np.exp(-outputs["logits"].numpy())),
            atol=1e-6,
        )
        np.testing.assert_allclose(
            outputs["probabilities"].numpy(),
            probabilities(model, images),
            atol=1e-5,
        )


def test_attention_signature_matches_the_head(exported, model):
    export_dir, _ = exported
    runner = SavedModelRunner(export_dir / "saved_model")
    assert runner.has_attention and runner.image_size == IMAGE_SIZE
    images = np.random.default_rng(2).uniform(0, 255, (3, IMAGE_SIZE, IMAGE_SIZE, 3))
    outputs = runner(images, "attention")
    assert outputs["attention"].shape == (3, 4, 4, len(CLASS_NAMES))
    np.testing.assert_allclose(outputs["attention"].sum(axis=(1, 2)), 1.0, atol=1e-5)
    head = model.head
    features = model.backbone(images.astype(np.float32))
    np.testing.assert_allclose(
        outputs["attention"], np.asarray(head.attention(features)), atol=1e-5
    )
    np.testing.assert_allclose(
        outputs["probabilities"], runner(images)["probabilities"], atol=1e-6
    )


def test_gap_model_has_no_attention_signature(tmp_path):
    model = build_classifier("tiny", num_classes=3, head="gap", image_size=IMAGE_SIZE)
    runner = SavedModelRunner(export_saved_model(model, tmp_path / "gap"))
    assert runner.signature_keys == ["serving_default"]
    assert not runner.has_attention
    with pytest.raises(ValueError, match="no 'attention' signature"):
        runner(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3)), "attention")


def test_model_image_size_needs_a_fixed_square_input():
    model = build_classifier("tiny", num_classes=2, image_size=None)
    with pytest.raises(ValueError, match="Received: input_shape="):
        model_image_size(model)
