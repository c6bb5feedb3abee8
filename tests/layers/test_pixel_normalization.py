"""PixelNormalization against the scalings written out in NumPy."""

import numpy as np
import pytest

from csra_tf.errors import UserError
from csra_tf.layers import PixelNormalization
from csra_tf.layers.pixel_normalization import (
    MODE_AFFINE,
    check_pixel_normalization,
    mode_of_affine,
)
from tests.keras_harness import run_layer_test

# torchvision's ImageNet statistics, typed out independently of the module.
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
NUMPY_MODES = {
    "unit": lambda x: x / 255.0,
    "symmetric": lambda x: x / 127.5 - 1.0,
    "imagenet": lambda x: (x / 255.0 - MEAN) / STD,
}


def _pixels(shape=(2, 5, 4, 3)):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=shape).astype("float32")
    x.reshape(-1, 3)[:2] = [[0.0, 127.5, 255.0], [255.0, 0.0, 127.5]]
    return x


@pytest.mark.parametrize("mode", ["unit", "symmetric", "imagenet"])
def test_modes_match_numpy(mode):
    x = _pixels()
    run_layer_test(
        PixelNormalization,
        {"mode": mode},
        x,
        expected_output_shape=x.shape,
        expected_output=NUMPY_MODES[mode](x.astype(np.float64)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_symmetric_and_unit_end_points():
    x = np.array([[0.0, 127.5, 255.0]], "float32")
    np.testing.assert_allclose(
        np.asarray(PixelNormalization("symmetric")(x)), [[-1.0, 0.0, 1.0]]
    )
    np.testing.assert_allclose(np.asarray(PixelNormalization("unit")(x)), [[0, 0.5, 1]])


def test_mixed_float16_gives_float16_close_to_float32():
    x = _pixels((1, 3, 3, 3))
    layer = PixelNormalization("imagenet", dtype="mixed_float16")
    out = layer(x)
    assert out.dtype == "float16"
    np.testing.assert_allclose(
        np.asarray(out, np.float64), NUMPY_MODES["imagenet"](x), rtol=2e-3, atol=5e-3
    )


@pytest.mark.parametrize("mode", ["unit", "symmetric", "imagenet"])
def test_affine_table_is_the_layer_and_is_recognised(mode):
    x = _pixels()
    scale, offset = MODE_AFFINE[mode]
    np.testing.assert_allclose(x * scale + offset, NUMPY_MODES[mode](x), atol=1e-5)
    assert mode_of_affine(scale, offset) == mode


def test_affine_of_a_scalar_and_unknown_affines():
    assert mode_of_affine(1 / 255.0, None) == "unit"
    assert mode_of_affine(1 / 127.5, -1.0) == "symmetric"
    assert mode_of_affine(None, None) is None
    assert mode_of_affine(1 / 255.0, 0.5) is None


def test_token_sequences_of_any_rank_are_normalised_on_the_last_axis():
    x = _pixels((2, 7, 3))
    np.testing.assert_allclose(
        np.asarray(PixelNormalization("imagenet")(x)),
        NUMPY_MODES["imagenet"](x.astype(np.float64)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_bad_modes_and_channels_raise():
    with pytest.raises(UserError, match="Received: mode=caffe"):
        PixelNormalization("caffe")
    with pytest.raises(UserError, match="Received: mode=None"):
        PixelNormalization(None)
    with pytest.raises(UserError, match=r"3 \(RGB\) channels"):
        PixelNormalization("imagenet")(np.zeros((1, 2, 2, 4), "float32"))
    assert check_pixel_normalization(None) is None
    with pytest.raises(UserError, match="Received: scaling=tf"):
        check_pixel_normalization("tf", "scaling")
