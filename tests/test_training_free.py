"""Training-free max pooling (paper Fig. 1, Table 1) on GAP + Dense classifiers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from csra_tf.layers import AvgMaxClassScores
from csra_tf.metrics import evaluate
from csra_tf.models import build_classifier, predict_probabilities
from csra_tf.studies.training_free_table import (
    map_by_lambda,
    pooled_class_scores,
    scores_to_probabilities,
)
from csra_tf.training_free import head_activation, with_max_pooling
from tests.keras_harness import run_model_saving_test, run_serialization_test
from tests.numpy_reference import avg_max_scores


def _pixels(size=32, batch=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")


def _randomise_dense(dense, seed=0, feature_scale=1.0):
    """Random kernel and bias giving logits of order 1 for features of that scale."""
    rng = np.random.default_rng(seed)
    kernel, bias = dense.get_weights()
    std = 2.0 / (np.sqrt(kernel.shape[0]) * feature_scale)
    dense.set_weights(
        [
            rng.normal(0, std, kernel.shape).astype("float32"),
            rng.normal(0, 0.5, bias.shape).astype("float32"),
        ]
    )


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)


def _numpy_avg_max(features, kernel, bias, lam):
    """The paper's statement: y = mean_l(x_l W + b) + lam * max_l(x_l W + b)."""
    locations = features.reshape(features.shape[0], -1, features.shape[-1])
    return avg_max_scores(locations, kernel, bias, lam)[2]


def _gap_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = build_classifier("tiny", num_classes=5, head="gap", image_size=32)
    _randomise_dense(model.head, seed)
    return model


def test_layer_matches_numpy_statement_map_and_tokens():
    rng = np.random.default_rng(0)
    for shape in [(2, 3, 4, 6), (2, 7, 6)]:
        features = rng.normal(size=shape).astype("float32")
        layer = AvgMaxClassScores(units=4, lam=0.3)
        layer.build(shape)
        kernel = rng.normal(size=(6, 4)).astype("float32")
        bias = rng.normal(size=(4,)).astype("float32")
        layer.set_weights([kernel, bias])
        np.testing.assert_allclose(
            np.asarray(layer(features)),
            _numpy_avg_max(features, kernel, bias, 0.3),
            rtol=1e-5,
            atol=1e-5,
        )


def test_layer_config_round_trip_and_validation():
    run_serialization_test(
        AvgMaxClassScores(units=3, lam=0.2, activation="softmax"),
        dict(units=3, lam=0.2, activation="softmax"),
    )
    with pytest.raises(ValueError, match="lam"):
        AvgMaxClassScores(units=3, lam=-0.1)
    with pytest.raises(ValueError, match="output_mode"):
        AvgMaxClassScores(units=3, output_mode="both")


def test_gap_classifier_matches_numpy_statement():
    model = _gap_model()
    x = _pixels()
    features = np.asarray(model.get_layer("tiny_backbone")(x))
    kernel, bias = model.head.get_weights()
    for lam in (0.0, 0.1, 0.5):
        out = np.asarray(with_max_pooling(model, lam)(x))
        np.testing.assert_allclose(
            out, _numpy_avg_max(features, kernel, bias, lam), rtol=1e-4, atol=1e-4
        )
    np.testing.assert_allclose(
        np.asarray(with_max_pooling(model, 0.0)(x)),
        np.asarray(model(x)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_returned_model_saves_and_loads_safe_mode():
    loaded = run_model_saving_test(with_max_pooling(_gap_model(), 0.2), _pixels())
    assert loaded.head.lam == pytest.approx(0.2)


def _check_against_original(model, x, feature_layer, atol=1e-5):
    """lam = 0 reproduces the model; lam > 0 follows the NumPy statement."""
    dense = model.layers[-1]
    features = np.asarray(
        keras.Model(model.input, model.get_layer(feature_layer).input)(x)
    )
    _randomise_dense(dense, feature_scale=float(np.abs(features).mean()) + 1e-6)
    reference = np.asarray(model(x))
    np.testing.assert_allclose(
        np.asarray(with_max_pooling(model, 0.0)(x)), reference, rtol=1e-4, atol=atol
    )
    kernel, bias = dense.get_weights()
    expected = _numpy_avg_max(features, kernel, bias, 0.3)
    if dense.activation is keras.activations.softmax:
        expected = _softmax(expected)
    out = np.asarray(with_max_pooling(model, 0.3)(x))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=atol)
    assert not np.allclose(out, reference, rtol=1e-3, atol=1e-6)


def test_keras_cv_image_classifier():
    import keras_cv

    keras.utils.set_random_seed(1)
    backbone = keras_cv.models.ResNetBackbone(
        stackwise_filters=[64, 16, 16, 16],
        stackwise_blocks=[1, 1, 1, 1],
        stackwise_strides=[1, 2, 2, 1],
        block_type="basic_block",
        include_rescaling=True,
        input_shape=(64, 64, 3),
    )
    model = keras_cv.models.ImageClassifier(backbone=backbone, num_classes=4)
    assert head_activation(model) is keras.activations.softmax
    _check_against_original(model, _pixels(64), "avg_pool")


@pytest.mark.parametrize(
    "application, kwargs",
    [
        (keras.applications.ResNet50, {}),
        (keras.applications.ResNet101, {}),
        (keras.applications.MobileNetV2, {"alpha": 0.35}),
        (keras.applications.EfficientNetB3, {}),  # Dropout before the Dense
    ],
)
def test_keras_applications_with_top(application, kwargs):
    keras.utils.set_random_seed(2)
    model = application(weights=None, input_shape=(32, 32, 3), classes=10, **kwargs)
    # The last one: EfficientNet's squeeze-and-excite blocks pool too.
    pool = [
        layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.GlobalAveragePooling2D)
    ][-1]
    _check_against_original(model, _pixels(32), pool, atol=1e-6)


def test_pooling_inside_nested_backbone_with_dropout():
    keras.utils.set_random_seed(3)
    backbone = keras.applications.MobileNetV2(
        include_top=False,
        weights=None,
        input_shape=(32, 32, 3),
        alpha=0.35,
        pooling="avg",
    )
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Dropout(0.3)(backbone(inputs))
    outputs = keras.layers.Dense(4, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    _randomise_dense(model.layers[-1])
    x = _pixels()
    np.testing.assert_allclose(
        np.asarray(with_max_pooling(model, 0.0)(x)), np.asarray(model(x)), atol=1e-5
    )
    features = np.asarray(keras.Model(backbone.input, backbone.layers[-2].output)(x))
    kernel, bias = model.layers[-1].get_weights()
    expected = 1 / (1 + np.exp(-_numpy_avg_max(features, kernel, bias, 0.4)))
    scored = with_max_pooling(model, 0.4)
    np.testing.assert_allclose(np.asarray(scored(x)), expected, rtol=1e-4, atol=1e-5)
    run_model_saving_test(scored, x)


def test_sequential_with_nested_backbone():
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.applications.MobileNetV2(
                include_top=False, weights=None, alpha=0.35, pooling="avg"
            ),
            keras.layers.Dense(3),
        ]
    )
    _randomise_dense(model.layers[-1])
    x = _pixels()
    np.testing.assert_allclose(
        np.asarray(with_max_pooling(model, 0.0)(x)), np.asarray(model(x)), atol=1e-5
    )


def test_rejects_models_without_gap_dense_head():
    csra = build_classifier("tiny", num_classes=3, head="csra", image_size=32)
    with pytest.raises(ValueError, match="Dense"):
        with_max_pooling(csra, 0.1)
    inputs = keras.Input((4, 4, 8))
    flat = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="GlobalAveragePooling"):
        with_max_pooling(flat, 0.1)
    with pytest.raises(ValueError, match="lam"):
        with_max_pooling(_gap_model(), -1.0)


def test_scores_to_probabilities():
    scores = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    np.testing.assert_allclose(
        scores_to_probabilities(scores), 1 / (1 + np.exp(-scores)), rtol=1e-6
    )
    np.testing.assert_allclose(
        scores_to_probabilities(scores, "softmax"), _softmax(scores), rtol=1e-5
    )


def test_pooled_scores_sweep_matches_per_lambda_models():
    model = _gap_model(seed=5)
    rng = np.random.default_rng(5)
    images = rng.uniform(0, 255, (12, 32, 32, 3)).astype("float32")
    targets = rng.integers(0, 2, (12, 5)).astype("float32")
    targets[0] = 1.0
    targets[1, 0] = -1.0
    dataset = tf.data.Dataset.from_tensor_slices((images, targets)).batch(5)
    average, maximum, seen = pooled_class_scores(model, dataset, verbose=0)
    np.testing.assert_array_equal(seen, targets)
    maps = map_by_lambda(average, maximum, targets, [0.0, 0.5])
    probs, _ = predict_probabilities(model, dataset, verbose=0)
    assert maps[0.0] == pytest.approx(evaluate(probs, targets)["mAP"], abs=1e-6)
    probs, _ = predict_probabilities(with_max_pooling(model, 0.5), dataset, verbose=0)
    assert maps[0.5] == pytest.approx(evaluate(probs, targets)["mAP"], abs=1e-6)
