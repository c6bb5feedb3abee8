"""AveragePoolingHead (the GAP baseline) against NumPy of `(mean_l x_l) W + b`."""

import keras
import numpy as np
import pytest

from csra_tf.layers import CSRA, AveragePoolingHead
from tests.keras_harness import run_layer_test
from tests.numpy_reference import csra_logits


def _numpy_head(x, kernel, bias):
    """Average over every axis but the batch and the channels, then the Dense."""
    x = np.asarray(x, np.float64)
    pooled = x.reshape(x.shape[0], -1, x.shape[-1]).mean(axis=1)
    return pooled @ kernel.astype(np.float64) + bias


@pytest.mark.parametrize(
    "init_kwargs, shape",
    [
        ({"num_classes": 4}, (2, 3, 5, 6)),
        ({"num_classes": 2, "name": "gap"}, (3, 7, 8)),
    ],
)
def test_matches_numpy(init_kwargs, shape):
    rng = np.random.default_rng(len(shape))
    x = rng.normal(size=shape).astype("float32")
    kernel = rng.normal(size=(shape[-1], init_kwargs["num_classes"])).astype("float32")
    bias = rng.normal(size=(init_kwargs["num_classes"],)).astype("float32")
    run_layer_test(
        AveragePoolingHead,
        init_kwargs,
        x,
        expected_output_shape=(shape[0], init_kwargs["num_classes"]),
        weights=[kernel, bias],
        expected_output=_numpy_head(x, kernel, bias),
        rtol=1e-5,
        atol=1e-5,
    )


def test_weights_are_kernel_then_bias_in_float32():
    head = AveragePoolingHead(num_classes=3, dtype="mixed_float16")
    head.build((None, 2, 2, 5))
    assert [tuple(w.shape) for w in head.weights] == [(5, 3), (3,)]
    assert all(w.dtype == "float32" for w in head.weights)
    out = head(keras.ops.ones((1, 2, 2, 5), "float16"))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_is_csra_with_lambda_zero_and_no_bias():
    # With a zero bias the baseline is CSRA's average term: lam = 0, one head,
    # kernel not normalised (DESIGN.md section 4, head="gap").
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 4, 4, 6)).astype("float32")
    kernel = rng.normal(size=(6, 3)).astype("float32")
    head = AveragePoolingHead(num_classes=3)
    head.build(x.shape)
    head.set_weights([kernel, np.zeros(3, "float32")])
    expected = csra_logits(x.reshape(2, 16, 6), [kernel], [1.0], 0.0, normalize=False)
    np.testing.assert_allclose(np.asarray(head(x)), expected, rtol=1e-5, atol=1e-5)
    csra = CSRA(num_classes=3, lam=0.0, normalize=False)
    csra.build(x.shape)
    csra.set_weights([kernel])
    np.testing.assert_allclose(np.asarray(csra(x)), expected, rtol=1e-5, atol=1e-5)
