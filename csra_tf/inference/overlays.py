"""Attention overlays: a class's attention map blended over its image, as PNG."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

_OVERLAY_MAX_SIDE = 512
_OVERLAY_MIN_SIDE = 256
_OVERLAY_ALPHA = 0.5
_WHITE = (255, 255, 255)


def safe_file_name(name: str) -> str:
    """A file-name-safe form of a label or file stem (runs of other characters
    become `_`).

    Args:
        name: any text.

    Returns:
        The text with only letters, digits, `_`, `-` and `.`.
    """
    return re.sub(r"[^\w.-]+", "_", name)


def write_class_overlays(
    folder: str | os.PathLike,
    stem: str,
    image: np.ndarray,
    attention: np.ndarray,
    classes: Sequence[tuple[int, str, str]],
) -> list[str]:
    """Writes `<folder>/<stem>_<label>.png` for each chosen class of one image.

    Args:
        folder: output folder (created if needed).
        stem: the file-name stem of the image.
        image: uint8 RGB `(H, W, 3)`.
        attention: `(h, w, C)` attention of every class.
        classes: `(class index, label, caption)` of each class to draw.

    Returns:
        The written paths, in the order of `classes`.
    """
    os.makedirs(folder, exist_ok=True)
    paths = []
    for index, label, caption in classes:
        path = os.path.join(os.fspath(folder), f"{stem}_{safe_file_name(label)}.png")
        attention_overlay(
            np.asarray(image, np.uint8), attention[..., index], caption
        ).save(path)
        paths.append(path)
    return paths


def attention_overlay(
    image: np.ndarray, attention: np.ndarray, caption: str | None = None
) -> Image.Image:
    """Blends one class's attention map (jet colours) over an image.

    Args:
        image: uint8 RGB `(H, W, 3)`; shown with its long side between 256
            px (small images are enlarged by a whole factor) and 512 px.
        attention: `(h, w)` attention, stretched over the whole image (the
            model saw the image resized to a square).
        caption: text drawn in the top-left corner.

    Returns:
        An RGB `PIL.Image`.
    """
    import matplotlib

    picture = Image.fromarray(image)
    picture.thumbnail((_OVERLAY_MAX_SIDE, _OVERLAY_MAX_SIDE))
    factor = -(-_OVERLAY_MIN_SIDE // max(picture.size))
    if factor > 1:
        picture = picture.resize(
            (picture.width * factor, picture.height * factor), Image.NEAREST
        )
    attention = np.asarray(attention, np.float32)
    attention = attention / max(float(attention.max()), 1e-12)
    heat = Image.fromarray(np.uint8(np.round(255 * attention)), "L")
    heat = np.asarray(heat.resize(picture.size, Image.BILINEAR), np.float32) / 255.0
    colours = matplotlib.colormaps["jet"](heat)[..., :3]
    overlay = Image.blend(
        picture, Image.fromarray(np.uint8(np.round(255 * colours))), _OVERLAY_ALPHA
    )
    if caption:
        draw = ImageDraw.Draw(overlay)
        box = draw.textbbox((4, 4), caption)
        draw.rectangle((box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3), fill=(0, 0, 0))
        draw.text((4, 4), caption, fill=_WHITE)
    return overlay
