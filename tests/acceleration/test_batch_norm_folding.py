"""BatchNorm folded into convolutions: the paper's affine map, the same outputs."""

import keras
import numpy as np
import pytest

from csra_tf.acceleration import FoldedBatchNormalization, fold_batch_norm
from csra_tf.models import CSRAClassifier, build_classifier
from tests.keras_harness import run_layer_test, run_model_saving_test


def _randomise_batch_norms(model, rng):
    """Moving statistics, scale and offset far from their initial values."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.5, shape))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, shape))
            layer.gamma.assign(rng.uniform(0.5, 1.5, shape))
            layer.beta.assign(rng.normal(0, 0.5, shape))
        elif isinstance(layer, keras.Model):
            _randomise_batch_norms(layer, rng)


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def test_a_folded_1x1_convolution_is_numpy_batch_norm_of_the_matmul():
    rng = np.random.default_rng(0)
    inputs = keras.Input((3, 3, 4))
    conv = keras.layers.Conv2D(5, 1, use_bias=True)
    bn = keras.layers.BatchNormalization(epsilon=1e-3)
    model = keras.Model(inputs, bn(conv(inputs)))
    _randomise_batch_norms(model, rng)
    conv.bias.assign(rng.normal(0, 1, 5))
    x = rng.normal(0, 1, (2, 3, 3, 4)).astype("float32")

    folded = fold_batch_norm(model)
    # Paper-independent statement: y = (x W + b - mean) gamma / sqrt(var + eps) + beta.
    scores = x @ np.asarray(conv.kernel)[0, 0] + np.asarray(conv.bias)
    expected = (scores - np.asarray(bn.moving_mean)) * np.asarray(bn.gamma) / np.sqrt(
        np.asarray(bn.moving_variance) + 1e-3
    ) + np.asarray(bn.beta)
    np.testing.assert_allclose(folded(x), expected, rtol=1e-5, atol=1e-5)
    assert [type(layer) for layer in folded.layers[1:]] == [
        keras.layers.Conv2D,
        FoldedBatchNormalization,
    ]


@pytest.mark.parametrize("backbone", ["resnet_tiny", "tiny"])
def test_classifier_outputs_are_kept_and_parts_shared(backbone):
    keras.utils.set_random_seed(0)
    model = build_classifier(backbone, num_classes=3, image_size=32, num_heads=2)
    _randomise_batch_norms(model, np.random.default_rng(1))
    folded = fold_batch_norm(model)

    assert isinstance(folded, CSRAClassifier) and folded is not model
    assert folded.head is model.head  # shared, not copied
    batch_norms = [
        layer
        for layer in _layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    left = [
        layer
        for layer in _layers(folded)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert batch_norms and not left  # every BatchNorm here follows its own conv
    x = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    want = np.asarray(model(x, training=False))
    np.testing.assert_allclose(folded(x), want, rtol=1e-4, atol=1e-4 * abs(want).max())


def test_a_convolution_read_twice_is_not_folded():
    inputs = keras.Input((4, 4, 2))
    features = keras.layers.Conv2D(3, 3, padding="same", use_bias=False)(inputs)
    normalised = keras.layers.BatchNormalization()(features)
    model = keras.Model(inputs, keras.layers.Add()([features, normalised]))
    assert fold_batch_norm(model) is model
    # Nor one that is also an output of the model.
    model = keras.Model(inputs, [features, keras.layers.BatchNormalization()(features)])
    assert fold_batch_norm(model) is model


def test_a_convolution_called_twice_is_not_folded():
    conv = keras.layers.Conv2D(3, 1)
    first, second = keras.Input((4, 4, 3)), keras.Input((4, 4, 3))
    normalised = keras.layers.BatchNormalization()(conv(first))
    model = keras.Model([first, second], [normalised, conv(second)])
    assert fold_batch_norm(model) is model


def test_a_model_without_a_graph_is_returned_as_it_is():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 1)
            self.bn = keras.layers.BatchNormalization()

        def call(self, x):
            return self.bn(self.conv(x))

    model = Subclassed()
    model(np.zeros((1, 4, 4, 3), "float32"))
    assert fold_batch_norm(model) is model


def test_the_folded_classifier_round_trips_through_keras_files():
    model = build_classifier("resnet_tiny", num_classes=3, image_size=32)
    _randomise_batch_norms(model, np.random.default_rng(3))
    folded = fold_batch_norm(model)
    x = np.random.default_rng(4).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    loaded = run_model_saving_test(folded, x)
    assert any(isinstance(layer, FoldedBatchNormalization) for layer in _layers(loaded))
    assert not any(
        isinstance(layer, keras.layers.BatchNormalization) for layer in _layers(loaded)
    )


@pytest.mark.parametrize("init_kwargs", [{}, {"name": "conv1_bn"}])
def test_folded_batch_norm_layer_harness(init_kwargs):
    x = np.random.default_rng(5).normal(0, 1, (2, 3, 3, 4)).astype("float32")
    run_layer_test(
        FoldedBatchNormalization,
        init_kwargs,
        x,
        expected_output_shape=x.shape,
        expected_output=x,  # the normalisation lives in the convolution before it
        rtol=0,
        atol=0,
    )
