"""AvgMaxClassScores against NumPy of `mean_l s[l] + lam * max_l s[l]` (Fig. 1)."""

import keras
import numpy as np
import pytest

from csra_tf.errors import UserError
from csra_tf.layers import AveragePoolingHead, AvgMaxClassScores
from tests.keras_harness import run_layer_test
from tests.numpy_reference import avg_max_scores


def _case(shape, units, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype("float32")
    kernel = rng.normal(size=(shape[-1], units)).astype("float32")
    bias = rng.normal(size=(units,)).astype("float32")
    return x, kernel, bias


@pytest.mark.parametrize("shape", [(2, 3, 4, 6), (3, 5, 6)])
@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_scores_match_numpy(shape, lam):
    x, kernel, bias = _case(shape, units=4)
    _, _, expected = avg_max_scores(
        x.reshape(shape[0], -1, shape[-1]), kernel, bias, lam
    )
    init_kwargs = {"units": 4, "lam": lam, "activation": "linear"}
    run_layer_test(
        AvgMaxClassScores,
        init_kwargs,
        x,
        expected_output_shape=(shape[0], 4),
        weights=[kernel, bias],
        expected_output=expected,
        rtol=1e-5,
        atol=1e-5,
    )


def test_sigmoid_without_bias_matches_numpy():
    x, kernel, _ = _case((2, 4, 4, 5), units=3, seed=1)
    _, _, pooled = avg_max_scores(x.reshape(2, 16, 5), kernel, None, 0.5)
    init_kwargs = {"units": 3, "lam": 0.5, "use_bias": False, "activation": "sigmoid"}
    layer = AvgMaxClassScores(**init_kwargs)
    layer.build(x.shape)
    assert [w.shape for w in layer.get_weights()] == [(5, 3)]
    run_layer_test(
        AvgMaxClassScores,
        init_kwargs,
        x,
        expected_output_shape=(2, 3),
        weights=[kernel],
        expected_output=1 / (1 + np.exp(-pooled)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_pooled_mode_stacks_average_and_max():
    x, kernel, bias = _case((2, 3, 3, 4), units=5, seed=2)
    average, maximum, _ = avg_max_scores(x.reshape(2, 9, 4), kernel, bias)
    out = run_layer_test(
        AvgMaxClassScores,
        {"units": 5, "lam": 0.1, "output_mode": "pooled", "activation": "linear"},
        x,
        expected_output_shape=(2, 2, 5),
        weights=[kernel, bias],
        expected_output=np.stack([average, maximum], axis=1),
        rtol=1e-5,
        atol=1e-5,
    )
    # Any lam is then `average + lam * max` from the one pass.
    scores = AvgMaxClassScores(units=5, lam=0.7)
    scores.build(x.shape)
    scores.set_weights([kernel, bias])
    np.testing.assert_allclose(
        np.asarray(scores(x)), out[:, 0] + 0.7 * out[:, 1], rtol=1e-5, atol=1e-5
    )


def test_lam_zero_is_the_average_pooling_head():
    x, kernel, bias = _case((2, 4, 3, 6), units=3, seed=3)
    scores = AvgMaxClassScores(units=3)
    head = AveragePoolingHead(num_classes=3)
    for layer in (scores, head):
        layer.build(x.shape)
        layer.set_weights([kernel, bias])
    np.testing.assert_allclose(
        np.asarray(scores(x)), np.asarray(head(x)), rtol=1e-5, atol=1e-5
    )


def test_scores_are_float32_under_mixed_precision():
    x, kernel, bias = _case((1, 2, 2, 4), units=2, seed=4)
    layer = AvgMaxClassScores(units=2, lam=0.2, dtype="mixed_float16")
    out = layer(keras.ops.cast(x, "float16"))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 0}, "Received: units=0"),
        ({"units": 3, "lam": -0.1}, "Received: lam=-0.1"),
        ({"units": 3, "lam": float("inf")}, "Received: lam=inf"),
        ({"units": 3, "output_mode": "both"}, "Received: output_mode=both"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(UserError, match=match):
        AvgMaxClassScores(**kwargs)
