"""Reading images of any format and expanding path arguments to image files."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

from csra_tf.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
"""Files a folder argument expands to (explicit file arguments may be anything)."""

_WHITE = (255, 255, 255)


def expand_image_paths(arguments: Sequence[str]) -> list[tuple[str, str | None]]:
    """Expands files, folders and glob patterns into image paths.

    Folders give their image files (by extension, sorted, not recursive);
    patterns give their matches, sorted (`**` recurses); files are kept as
    they are, whatever their extension.

    Args:
        arguments: the command-line arguments.

    Returns:
        `(path, error)` pairs in argument order; `error` is None, or a message
        for an argument that names nothing.
    """
    expanded = []
    for argument in arguments:
        if os.path.isdir(argument):
            names = sorted(
                name
                for name in os.listdir(argument)
                if name.lower().endswith(IMAGE_EXTENSIONS)
                and os.path.isfile(os.path.join(argument, name))
            )
            if not names:
                expanded.append((argument, "no image files in this folder"))
            expanded.extend((os.path.join(argument, name), None) for name in names)
        elif os.path.exists(argument):
            expanded.append((argument, None))
        elif glob.has_magic(argument):
            matches = sorted(
                p for p in glob.glob(argument, recursive=True) if os.path.isfile(p)
            )
            if not matches:
                expanded.append((argument, "no file matches this pattern"))
            expanded.extend((path, None) for path in matches)
        else:
            expanded.append((argument, "no such file or folder"))
    return expanded


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decodes an image file to RGB.

    Args:
        path: an image file of any format Pillow reads.

    Returns:
        uint8 `(H, W, 3)`.

    Raises:
        ValueError: if the file cannot be read as an image.
    """
    try:
        with Image.open(path) as image:
            image.seek(0)
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(f"cannot read the image: {error}") from error


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(image, np.float64)
        scale = 255.0 / 65535.0 if values.max(initial=0) > 255 else 1.0
        image = Image.fromarray(np.clip(values * scale, 0, 255).astype(np.uint8))
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), np.uint8)
