"""Resizing position embeddings exactly as PyTorch's `F.interpolate` does.

Vision Transformers trained at one input size are used at another by resizing
their learned position embeddings as an image (Dosovitskiy et al., 2021, Sec.
3.2), as the CSRA paper does for 448 px inputs. The reference models do it with
PyTorch's `F.interpolate(grid, size, mode="bicubic", align_corners=False)`:
transformers' ViT `interpolate_pos_encoding` and timm's `resize_pos_embed`
(timm before 0.9; the first versions used `mode="bilinear"`) without
antialiasing, timm >= 0.9's `resample_abs_pos_embed` with `antialias=True` by
default. Weights converted from them are only equal to the reference at a new
input size when the resize is PyTorch's too, so this module restates it in
NumPy:

- bicubic, `antialias=False` (PyTorch's default): Keys' cubic convolution with
  `a = -0.75` (TensorFlow's and PIL's bicubic use `a = -0.5`), four taps around
  the half-pixel-centred source coordinate `(i + 0.5) * in / out - 0.5`, edge
  indices clamped. Downsizing uses the same four taps (no low-pass filter).
- bilinear, `antialias=False`: two taps, the source coordinate clamped at 0.
- `antialias=True`: PyTorch's separable antialiasing filter (PIL's
  algorithm): the cubic kernel with `a = -0.5` (or the triangle), stretched by
  `in / out` when downsizing, weights renormalised over the taps inside the
  image.

Each axis is one `(out, in)` interpolation matrix (`interpolation_matrix`), so
a resize is two matrix products, done once in NumPy when weights are loaded
(or usable as constant matmuls inside a model). Source coordinates are computed
in float32 as PyTorch does for float32 tensors and the weights in float64; the
result stays within 2e-6 of PyTorch's on unit-variance grids (the tests' fixture,
made by PyTorch, checks 1e-5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from csra_tf.errors import UserError

INTERPOLATIONS = ("bicubic", "bilinear")
"""Resize modes, as PyTorch's `F.interpolate` names them."""

_CUBIC_A = -0.75  # PyTorch's bicubic without antialiasing (OpenCV's)
_CUBIC_A_ANTIALIAS = -0.5  # PyTorch's antialiased bicubic (PIL's)
_SUPPORT = {"bicubic": 2.0, "bilinear": 1.0}  # kernel half-widths


def interpolation_matrix(
    in_size: int,
    out_size: int,
    interpolation: str = "bicubic",
    antialias: bool = False,
) -> np.ndarray:
    """The `(out_size, in_size)` matrix of PyTorch's 1-D resize along one axis.

    Row `i` holds the weights of the source samples that output `i` mixes, as
    `F.interpolate(..., mode=interpolation, align_corners=False,
    antialias=antialias)` computes them for a given output size.

    Args:
        in_size: number of source samples.
        out_size: number of output samples.
        interpolation: `"bicubic"` or `"bilinear"`.
        antialias: PyTorch's `antialias` flag.

    Returns:
        A float64 array of shape `(out_size, in_size)`; each row sums to 1.

    Example:
    >>> import numpy as np
    >>> matrix = interpolation_matrix(2, 4)
    >>> matrix.shape, np.allclose(matrix.sum(axis=1), 1.0)
    ((4, 2), True)
    >>> np.round(matrix[0], 5).tolist()  # output 0 sits at source -0.25
    [1.10547, -0.10547]
    """
    check_interpolation(interpolation)
    for name, value in (("in_size", in_size), ("out_size", out_size)):
        if int(value) != value or value < 1:
            raise UserError(
                f"`{name}` must be a positive int. Received: {name}={value}"
            )
    in_size, out_size = int(in_size), int(out_size)
    if antialias:
        return _antialiased_matrix(in_size, out_size, in_size / out_size, interpolation)
    matrix = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    # Source coordinates in float32, as PyTorch computes them for float32
    # tensors, so that outputs fall where PyTorch's do; weights in float64.
    scale = np.float32(in_size) / np.float32(out_size)
    half = np.float32(0.5)
    source = (scale * (rows.astype(np.float32) + half) - half).astype(np.float64)
    if interpolation == "bilinear":
        source = np.maximum(source, 0.0)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, in_size - 1)
        fraction = source - low
        np.add.at(matrix, (rows, low), 1.0 - fraction)
        np.add.at(matrix, (rows, high), fraction)
        return matrix
    floor = np.floor(source)
    fraction = source - floor
    for tap in range(-1, 3):
        index = np.clip(floor.astype(int) + tap, 0, in_size - 1)
        np.add.at(matrix, (rows, index), _cubic(fraction - tap, _CUBIC_A))
    return matrix


def resize_grid(
    grid: np.ndarray,
    size: Sequence[int],
    interpolation: str = "bicubic",
    antialias: bool = False,
) -> np.ndarray:
    """Resizes a `(h, w, d)` grid as PyTorch's `F.interpolate` does.

    Equal to `F.interpolate(grid.permute(2, 0, 1)[None], size,
    mode=interpolation, align_corners=False, antialias=antialias)` laid back
    out as `(H, W, d)`.

    Args:
        grid: `(h, w, d)` array (e.g. position embeddings on their patch grid).
        size: `(H, W)`, the output grid.
        interpolation: `"bicubic"` or `"bilinear"`.
        antialias: PyTorch's `antialias` flag.

    Returns:
        The `(H, W, d)` grid, in `grid`'s dtype (computed in float64).

    Example:
    >>> import numpy as np
    >>> grid = np.ones((4, 4, 8), "float32")
    >>> out = resize_grid(grid, (7, 5))
    >>> out.shape, out.dtype, bool(np.allclose(out, 1.0))
    ((7, 5, 8), dtype('float32'), True)
    """
    array = np.asarray(grid)
    if array.ndim != 3 or 0 in array.shape:
        raise UserError(
            "`grid` must be a non-empty (h, w, d) array. "
            f"Received: grid.shape={array.shape}"
        )
    size = _grid(size, "size")
    rows = interpolation_matrix(array.shape[0], size[0], interpolation, antialias)
    cols = interpolation_matrix(array.shape[1], size[1], interpolation, antialias)
    out = np.einsum("ih,hwd,jw->ijd", rows, array.astype(np.float64), cols)
    return out.astype(array.dtype)


def interpolate_position_embeddings(
    embeddings: np.ndarray,
    target_grid: Sequence[int],
    num_prefix_tokens: int = 1,
    interpolation: str = "bicubic",
    antialias: bool = False,
    source_grid: Sequence[int] | None = None,
) -> np.ndarray:
    """Resizes a ViT position-embedding table to a new patch grid, as timm does.

    The prefix rows (class, register or distillation tokens) are kept; the
    patch rows, laid out row-major on the source grid, are resized with
    `resize_grid`: the result equals timm's
    `resample_abs_pos_embed(embeddings, target_grid, source_grid,
    num_prefix_tokens, interpolation, antialias)`.

    Args:
        embeddings: `(num_prefix_tokens + h * w, d)` table (a leading batch
            axis of 1 is accepted and kept).
        target_grid: `(H, W)` patch grid of the new input size.
        num_prefix_tokens: rows before the patch rows.
        interpolation: `"bicubic"` (as timm and transformers) or
            `"bilinear"`.
        antialias: PyTorch's `antialias` flag (False: bicubic with
            `a = -0.75`, `F.interpolate`'s default, as transformers' ViT and
            timm's `resize_pos_embed`; True: timm >= 0.9's default).
        source_grid: `(h, w)` of the table; None: a square grid.

    Returns:
        The `(num_prefix_tokens + H * W, d)` table (with the batch axis if
        `embeddings` had one), same dtype; the table itself when the grid
        does not change.

    Example:
    >>> import numpy as np
    >>> table = np.zeros((1 + 14 * 14, 768), "float32")
    >>> interpolate_position_embeddings(table, (28, 28)).shape
    (785, 768)
    """
    check_interpolation(interpolation)
    table = np.asarray(embeddings)
    batched = table.ndim == 3 and table.shape[0] == 1
    if batched:
        table = table[0]
    num_patches = table.shape[0] - num_prefix_tokens if table.ndim == 2 else -1
    if source_grid is None:
        side = math.isqrt(max(num_patches, 0))
        source_grid = (side, side)
    source_grid = tuple(int(s) for s in source_grid)
    if (
        table.ndim != 2
        or num_prefix_tokens < 0
        or len(source_grid) != 2
        or min(source_grid) < 1
        or source_grid[0] * source_grid[1] != num_patches
    ):
        raise UserError(
            "The patch rows of `embeddings` must form a square grid (or the "
            f"`source_grid` given) after {num_prefix_tokens} prefix rows. "
            f"Received: embeddings.shape={np.shape(embeddings)}, "
            f"source_grid={source_grid}"
        )
    target_grid = _grid(target_grid, "target_grid")
    if target_grid == source_grid:
        return np.asarray(embeddings)
    prefix, patches = table[:num_prefix_tokens], table[num_prefix_tokens:]
    grid = patches.reshape(*source_grid, table.shape[1])
    resized = resize_grid(grid, target_grid, interpolation, antialias)
    out = np.concatenate([prefix, resized.reshape(-1, table.shape[1])], axis=0)
    return out[None] if batched else out


def check_interpolation(interpolation: str) -> str:
    """Refuses a resize mode that is not in `INTERPOLATIONS`.

    Args:
        interpolation: the mode to check.

    Returns:
        `interpolation`.

    Raises:
        UserError: naming the argument and the value received.
    """
    if interpolation not in INTERPOLATIONS:
        raise UserError(
            f"`interpolation` must be one of {INTERPOLATIONS}. "
            f"Received: interpolation={interpolation}"
        )
    return interpolation


def _cubic(distance: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter `a`."""
    x = np.abs(distance)
    inner = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    outer = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return np.where(x <= 1.0, inner, np.where(x < 2.0, outer, 0.0))


def _antialiased_matrix(in_size, out_size, scale, interpolation):
    """PyTorch's `antialias=True` weights (`_upsample_*_aa`, PIL's algorithm)."""
    stretch = max(scale, 1.0)
    support = _SUPPORT[interpolation] * stretch
    matrix = np.zeros((out_size, in_size))
    for row in range(out_size):
        centre = scale * (row + 0.5)
        first = max(int(centre - support + 0.5), 0)
        stop = min(int(centre + support + 0.5), in_size)
        taps = np.arange(first, stop)
        distance = (taps - centre + 0.5) / stretch
        if interpolation == "bicubic":
            weights = _cubic(distance, _CUBIC_A_ANTIALIAS)
        else:
            weights = np.maximum(1.0 - np.abs(distance), 0.0)
        total = weights.sum()
        matrix[row, first:stop] = weights / total if total != 0 else weights
    return matrix


def _grid(value, name) -> tuple[int, int]:
    grid = tuple(int(s) for s in value)
    if len(grid) != 2 or min(grid) < 1:
        raise UserError(
            f"`{name}` must be two positive ints. Received: {name}={tuple(value)}"
        )
    return grid
