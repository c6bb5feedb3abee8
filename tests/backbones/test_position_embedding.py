"""Position-embedding resizing equals PyTorch's `F.interpolate`.

The expected grids were made by PyTorch itself
(`fixtures/make_pos_embed_fixtures.py`); these tests read them without torch.
"""

import pathlib

import numpy as np
import pytest

from csra_tf.backbones import interpolate_position_embeddings
from csra_tf.backbones.position_embedding import interpolation_matrix, resize_grid

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "pos_embed_resize.npz"
TOLERANCE = 1e-5


def _load_cases():
    with np.load(FIXTURE) as data:
        names = sorted({key.split("/")[0] for key in data.files if "/" in key})
        return {
            name: dict(
                input=data[f"{name}/input"],
                output=data[f"{name}/output"],
                interpolation=str(data[f"{name}/mode"]),
                antialias=bool(data[f"{name}/antialias"]),
            )
            for name in names
        }


CASES = _load_cases()


def test_fixture_covers_upsizing_downsizing_and_both_flags():
    assert len(CASES) == 12
    assert {"bicubic_up_4x4_7x7", "bicubic_down_7x7_5x5"} <= set(CASES)
    assert CASES["bicubic_up_14x14_24x24"]["input"].shape == (14, 14, 8)
    assert {c["antialias"] for c in CASES.values()} == {False, True}


@pytest.mark.parametrize("name", sorted(CASES))
def test_resize_grid_equals_pytorch(name):
    case = CASES[name]
    out = resize_grid(
        case["input"],
        case["output"].shape[:2],
        interpolation=case["interpolation"],
        antialias=case["antialias"],
    )
    assert out.shape == case["output"].shape and out.dtype == np.float32
    np.testing.assert_allclose(out, case["output"], atol=TOLERANCE, rtol=0)


def test_bicubic_is_not_tensorflows_kernel():
    """PyTorch's a = -0.75 differs from a = -0.5 (TensorFlow, PIL) by far more
    than the tolerance: the fixture could catch the old kernel."""
    case = CASES["bicubic_up_4x4_7x7"]
    source = (np.arange(7) + 0.5) * 4 / 7 - 0.5
    floor = np.floor(source)
    t = source - floor

    def keys(x, a):
        x = np.abs(x)
        return np.where(
            x <= 1,
            ((a + 2) * x - (a + 3)) * x * x + 1,
            np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0),
        )

    def matrix(a):
        out = np.zeros((7, 4))
        for tap in range(-1, 3):
            index = np.clip(floor.astype(int) + tap, 0, 3)
            np.add.at(out, (np.arange(7), index), keys(t - tap, a))
        return out

    def resize(a):
        return np.einsum("ih,hwd,jw->ijd", matrix(a), case["input"], matrix(a))

    np.testing.assert_allclose(resize(-0.75), case["output"], atol=TOLERANCE)
    assert np.max(np.abs(resize(-0.5) - case["output"])) > 100 * TOLERANCE


def test_position_table_keeps_prefix_rows_and_equals_pytorch():
    case = CASES["bicubic_up_14x14_24x24"]
    rng = np.random.default_rng(0)
    prefix = rng.normal(size=(2, 8)).astype("float32")
    table = np.concatenate([prefix, case["input"].reshape(-1, 8)])[None]
    out = interpolate_position_embeddings(table, (24, 24), num_prefix_tokens=2)
    assert out.shape == (1, 2 + 24 * 24, 8) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0, :2], prefix)
    np.testing.assert_allclose(
        out[0, 2:].reshape(24, 24, 8), case["output"], atol=TOLERANCE, rtol=0
    )


def test_position_table_on_a_non_square_grid():
    case = CASES["bicubic_3x5_8x6"]
    table = np.concatenate([np.ones((1, 2), "float32"), case["input"].reshape(-1, 2)])
    out = interpolate_position_embeddings(table, (8, 6), source_grid=(3, 5))
    np.testing.assert_allclose(
        out[1:].reshape(8, 6, 2), case["output"], atol=TOLERANCE, rtol=0
    )


def test_same_grid_is_returned_unchanged():
    table = np.random.default_rng(0).normal(size=(1 + 16, 8)).astype("float32")
    np.testing.assert_array_equal(interpolate_position_embeddings(table, (4, 4)), table)
    out = interpolate_position_embeddings(table, (8, 6))
    assert out.shape == (1 + 48, 8)
    np.testing.assert_array_equal(out[0], table[0])


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("sizes", [(14, 28), (14, 5), (7, 7), (1, 3)])
def test_matrix_rows_sum_to_one(interpolation, antialias, sizes):
    matrix = interpolation_matrix(*sizes, interpolation, antialias)
    assert matrix.shape == sizes[::-1]
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)
    if sizes[0] == sizes[1]:
        np.testing.assert_allclose(matrix, np.eye(sizes[0]), atol=1e-6)


def test_constant_embeddings_stay_constant():
    table = np.tile(np.arange(5, dtype="float32"), (1 + 14 * 14, 1))
    out = interpolate_position_embeddings(table, (28, 28))
    np.testing.assert_allclose(out, np.tile(np.arange(5), (1 + 28 * 28, 1)), atol=1e-5)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="square grid"):
        interpolate_position_embeddings(np.zeros((1 + 15, 4)), (4, 4))
    with pytest.raises(ValueError, match=r"source_grid=\(3, 4\)"):
        interpolate_position_embeddings(
            np.zeros((1 + 15, 4)), (4, 4), source_grid=(3, 4)
        )
    with pytest.raises(ValueError, match="interpolation=nearest"):
        interpolate_position_embeddings(
            np.zeros((1 + 16, 4)), (4, 4), interpolation="nearest"
        )
    with pytest.raises(ValueError, match=r"target_grid=\(0, 4\)"):
        interpolate_position_embeddings(np.zeros((1 + 16, 4)), (0, 4))
    with pytest.raises(ValueError, match="out_size=0"):
        interpolation_matrix(4, 0)
    with pytest.raises(ValueError, match=r"grid.shape=\(4, 4\)"):
        resize_grid(np.zeros((4, 4)), (2, 2))
