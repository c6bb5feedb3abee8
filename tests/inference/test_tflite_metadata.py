"""Reading a `.tflite` file's metadata: labels, thresholds, and who overrides them."""

import numpy as np
import pytest
import tensorflow as tf

from csra_tf.export import add_metadata
from csra_tf.inference import Predictor, read_tflite_metadata

SIDE = 16
WEIGHTS = np.array([[4.0, -4, 1, 0], [-4, 4, 1, 0], [1, 1, -6, 0]], np.float32)


def convert(outputs):
    """A small `.tflite` classifier: mean colour (in [0, 1]) times `WEIGHTS`."""
    spec = tf.TensorSpec([None, SIDE, SIDE, 3], tf.float32, "images")

    @tf.function(input_signature=[spec])
    def classify(images):
        logits = tf.matmul(tf.reduce_mean(images / 255.0, [1, 2]), WEIGHTS)
        return {name: fn(logits) for name, fn in outputs.items()}

    module = tf.Module()
    module.classify = classify
    return tf.lite.TFLiteConverter.from_concrete_functions(
        [classify.get_concrete_function()], module
    ).convert()


@pytest.fixture(scope="module")
def logits_model():
    return convert({"logits": tf.identity})


def test_a_file_without_metadata_has_none(logits_model, tmp_path):
    assert read_tflite_metadata(logits_model) is None
    path = tmp_path / "m.tflite"
    path.write_bytes(logits_model)
    predictor = Predictor(path)
    assert predictor.class_names == [f"class_{i}" for i in range(4)]
    assert predictor.thresholds is None


def test_labels_and_thresholds_round_trip(logits_model, tmp_path):
    names = ["red", "green", "blue", "none"]
    thresholds = [0.0, 0.25, 0.5, 1.0]
    content = add_metadata(logits_model, names, thresholds, "float32")
    metadata = read_tflite_metadata(content)
    assert metadata.class_names == names
    # 0 and 1 are kept as sigmoid(-/+100): the same decisions for any logit
    # within +/-100.
    np.testing.assert_allclose(metadata.thresholds, thresholds, rtol=1e-12, atol=1e-40)
    assert metadata.version.endswith("float32")
    path = tmp_path / "m.tflite"
    path.write_bytes(content)
    predictor = Predictor(path)
    assert predictor.class_names == names
    np.testing.assert_allclose(predictor.thresholds, metadata.thresholds)
    assert Predictor(path, class_names=list("abcd")).class_names == list("abcd")
    # The metadata does not change the numbers.
    images = np.random.default_rng(0).uniform(0, 255, (3, SIDE, SIDE, 3))
    means = images.mean((1, 2)) / 255.0
    expected = 1 / (1 + np.exp(-(means @ WEIGHTS)))
    np.testing.assert_allclose(predictor.predict(images), expected, atol=1e-6)


def test_add_metadata_needs_one_score_output():
    two = convert({"logits": tf.identity, "probabilities": tf.sigmoid})
    with pytest.raises(ValueError, match="one image input and one score output"):
        add_metadata(two, ["a", "b", "c", "d"])


def test_an_unreadable_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="missing.tflite"):
        read_tflite_metadata(tmp_path / "missing.tflite")
