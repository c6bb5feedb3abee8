"""The embedded dataset: small shapes on cluttered backgrounds.

Each image holds 1-4 objects of `SHAPE_CLASSES` (an image may hold two of the same
class), of random colour and, where it means something, random rotation. Object
radii are log-uniform between 4 % and 20 % of the image side, so many objects are
small; backgrounds are blocks of random colour with thin distractor strokes and
pixel noise. A classifier that averages features over the whole image
(global average pooling) finds the small objects hard, while class-specific
spatial attention picks them out: the effect CSRA is about.

The dataset is written to disk as JPEG files plus a `manifest.jsonl` (with the
objects' boxes, for scoring attention maps) and read back through `manifest`,
the same path user data takes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from csra_tf.data.manifest import manifest, write_manifest
from csra_tf.data.source import Source
from csra_tf.errors import UserError

SHAPE_CLASSES = (
    "circle",
    "square",
    "triangle",
    "cross",
    "ring",
    "star",
    "frame",
    "bar",
    "tee",
    "semicircle",
)

# Bump when the images generated for given arguments change.
GENERATOR_VERSION = 4
# Written last into a finished split folder; a folder without it is incomplete.
COMPLETE_MARKER = "COMPLETE"
MANIFEST_NAME = "manifest.jsonl"
META_NAME = "meta.json"
SPLITS = ("train", "val")

# Background: a grid of this many blocks per side, of random colours.
_GRID_CELLS = (3, 4, 6, 8)
# Distractors: thin random polylines drawn under the objects.
_NUM_DISTRACTORS = (2, 6)
_DISTRACTOR_LENGTH = (0.15, 0.5)  # of the image side, per segment
# Pixel noise: Gaussian with a per-image standard deviation in this range.
_NOISE_STD = (3.0, 10.0)
# Backgrounds and clutter are muted (grey plus a small tint); objects are vivid.
_BACKGROUND_GREY = (50.0, 200.0)
_BACKGROUND_TINT = 30.0
_OBJECT_VALUE = (170.0, 255.0)
_OBJECT_SATURATION = (0.6, 1.0)
_HUE_HALF_WIDTH = 0.5  # in hue sectors (6 per turn); bands overlap their neighbours
# An object's colour is resampled until it is this far (RGB, L2) from the mean
# background under it, or the tries run out (the farthest one is kept).
_MIN_COLOUR_DISTANCE = 110.0
_COLOUR_TRIES = 8
# Objects are kept apart: centre distance >= this factor x sum of radii.
_MIN_SEPARATION = 0.9
_PLACEMENT_TRIES = 30


def generate_shapes(
    output_dir: str | os.PathLike,
    num_images: int,
    image_size: int = 64,
    seed: int = 0,
    min_objects: int = 1,
    max_objects: int = 4,
    min_radius: float = 0.04,
    max_radius: float = 0.20,
    jpeg_quality: int = 95,
    progress: bool = True,
) -> str:
    """Generates a split of the shapes dataset into a folder.

    Writes `images/NNNNNN.jpg`, `manifest.jsonl` (records with `image`, `labels`
    and `boxes`: a list of `{"label": name, "box": [x0, y0, x1, y1]}` with
    coordinates normalised to [0, 1]), `meta.json` (the arguments) and, last,
    the `COMPLETE` marker. Image `i` depends only on `(seed, i)` and the other
    arguments, so the same arguments give byte-identical files.

    Args:
        output_dir: The folder to write to (created if needed; files there are
            overwritten).
        num_images: How many images to generate.
        image_size: The side of the square images, in pixels.
        seed: The random seed.
        min_objects: The fewest objects in an image.
        max_objects: The most objects in an image.
        min_radius: The smallest object radius, as a fraction of the side.
        max_radius: The largest object radius, as a fraction of the side.
        jpeg_quality: The JPEG quality, 1-100.
        progress: Whether to show a progress bar.

    Returns:
        The path of the written manifest.

    Example:

    >>> import os, tempfile
    >>> folder = os.path.join(tempfile.mkdtemp(), "train")
    >>> path = generate_shapes(folder, num_images=4, image_size=32, progress=False)
    >>> sorted(os.listdir(folder))
    ['COMPLETE', 'images', 'manifest.jsonl', 'meta.json']
    """
    _check_positive_int("num_images", num_images)
    _check_positive_int("image_size", image_size)
    _check_positive_int("min_objects", min_objects)
    _check_positive_int("max_objects", max_objects)
    if max_objects < min_objects:
        raise UserError(
            "`max_objects` must be >= `min_objects`. "
            f"Received: min_objects={min_objects}, max_objects={max_objects}"
        )
    if not 0.0 < min_radius <= max_radius <= 0.5:
        raise UserError(
            "Radii must satisfy 0 < min_radius <= max_radius <= 0.5. "
            f"Received: min_radius={min_radius}, max_radius={max_radius}"
        )
    if not isinstance(jpeg_quality, int) or not 1 <= jpeg_quality <= 100:
        raise UserError(
            f"`jpeg_quality` must be in 1-100. Received: jpeg_quality={jpeg_quality}"
        )
    output_dir = os.fspath(output_dir)
    image_dir = os.path.join(output_dir, "images")
    os.makedirs(image_dir, exist_ok=True)
    marker = os.path.join(output_dir, COMPLETE_MARKER)
    if os.path.exists(marker):
        os.remove(marker)

    records = []
    for index in tqdm(
        range(num_images), desc="Generating shapes", unit="img", disable=not progress
    ):
        rng = np.random.default_rng([seed, index])
        pixels, objects = _render_image(
            rng, image_size, min_objects, max_objects, min_radius, max_radius
        )
        name = f"images/{index:06d}.jpg"
        Image.fromarray(pixels).save(
            os.path.join(output_dir, name), "JPEG", quality=jpeg_quality, subsampling=0
        )
        boxes = [
            {"label": SHAPE_CLASSES[label], "box": [round(v, 4) for v in box]}
            for label, box in objects
        ]
        present = sorted({label for label, _ in objects})
        records.append(
            {
                "image": name,
                "labels": [SHAPE_CLASSES[label] for label in present],
                "boxes": boxes,
            }
        )

    manifest_path = os.path.join(output_dir, MANIFEST_NAME)
    write_manifest(manifest_path, records)
    meta = {
        "generator": "csra_tf.data.shapes",
        "version": GENERATOR_VERSION,
        "num_images": num_images,
        "image_size": image_size,
        "seed": seed,
        "min_objects": min_objects,
        "max_objects": max_objects,
        "min_radius": min_radius,
        "max_radius": max_radius,
        "jpeg_quality": jpeg_quality,
        "class_names": list(SHAPE_CLASSES),
    }
    with open(os.path.join(output_dir, META_NAME), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
    with open(marker, "w", encoding="utf-8") as f:
        f.write("complete\n")
    return manifest_path


def shapes_dir(
    data_dir: str | os.PathLike,
    split: str = "train",
    image_size: int = 64,
    num_train: int = 6000,
    num_val: int = 2000,
    seed: int = 0,
    progress: bool = True,
) -> str:
    """Returns the folder of a shapes split, generating it first if needed.

    The split lives in `data_dir/shapes-<hash of the arguments>/<split>/`. A
    folder without the `COMPLETE` marker (an interrupted generation) is
    generated again; generation goes to a temporary folder that is renamed into
    place, so concurrent callers never see a half-written split.

    Args:
        data_dir: The folder holding generated datasets.
        split: `"train"` or `"val"`. The two use different seeds.
        image_size: The side of the square images, in pixels.
        num_train: The number of training images.
        num_val: The number of validation images.
        seed: The random seed of the dataset.
        progress: Whether to show a progress bar while generating.

    Returns:
        The split folder, holding `manifest.jsonl`, `meta.json` and `images/`.
    """
    if split not in SPLITS:
        raise UserError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    _check_positive_int("num_train", num_train)
    _check_positive_int("num_val", num_val)
    _check_positive_int("image_size", image_size)
    if not isinstance(seed, int) or seed < 0:
        raise UserError(f"`seed` must be an int >= 0. Received: seed={seed!r}")
    params = {
        "version": GENERATOR_VERSION,
        "image_size": image_size,
        "num_train": num_train,
        "num_val": num_val,
        "seed": seed,
    }
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()
    final_dir = os.path.join(os.fspath(data_dir), f"shapes-{digest[:10]}", split)
    if os.path.exists(os.path.join(final_dir, COMPLETE_MARKER)):
        return final_dir

    shutil.rmtree(final_dir, ignore_errors=True)  # an interrupted generation
    tmp_dir = f"{final_dir}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        generate_shapes(
            tmp_dir,
            num_images=num_train if split == "train" else num_val,
            image_size=image_size,
            seed=2 * seed + SPLITS.index(split),
            progress=progress,
        )
        try:
            os.rename(tmp_dir, final_dir)
        except OSError:
            # Another process finished first; use its complete split.
            if not os.path.exists(os.path.join(final_dir, COMPLETE_MARKER)):
                raise
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return final_dir


def shapes(
    data_dir: str | os.PathLike,
    split: str = "train",
    image_size: int = 64,
    num_train: int = 6000,
    num_val: int = 2000,
    seed: int = 0,
    progress: bool = True,
) -> Source:
    """Loads a split of the embedded shapes dataset, generating it if needed.

    Args:
        data_dir: The folder holding generated datasets.
        split: `"train"` or `"val"`. The two use different seeds.
        image_size: The side of the square images, in pixels.
        num_train: The number of training images.
        num_val: The number of validation images.
        seed: The random seed of the dataset.
        progress: Whether to show progress bars while generating and checking.

    Returns:
        A `Source` whose class names are `SHAPE_CLASSES`, read through
        `manifest` from the split's `manifest.jsonl`.

    Example:

    >>> import tempfile
    >>> train = shapes(
    ...     tempfile.mkdtemp(), "train", image_size=32, num_train=8, progress=False
    ... )
    >>> train.num_examples, train.class_names == list(SHAPE_CLASSES)
    (8, True)
    """
    split_dir = shapes_dir(
        data_dir,
        split=split,
        image_size=image_size,
        num_train=num_train,
        num_val=num_val,
        seed=seed,
        progress=progress,
    )
    return manifest(
        os.path.join(split_dir, MANIFEST_NAME),
        class_names=list(SHAPE_CLASSES),
        progress=progress,
    )


def _check_positive_int(name: str, value: object) -> None:
    """Raises a `ValueError` unless `value` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")


def _render_image(
    rng: np.random.Generator,
    size: int,
    min_objects: int,
    max_objects: int,
    min_radius: float,
    max_radius: float,
) -> tuple[np.ndarray, list[tuple[int, tuple[float, float, float, float]]]]:
    """Draws one image; returns its pixels and `(class, normalised box)` pairs."""
    background = _blocky_background(rng, size)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    _draw_distractors(rng, draw, size)

    num_objects = int(rng.integers(min_objects, max_objects + 1))
    radii = np.exp(rng.uniform(math.log(min_radius), math.log(max_radius), num_objects))
    radii = np.sort(radii)[::-1] * size  # place the large ones first
    placed: list[tuple[float, float, float]] = []
    objects = []
    for radius in radii:
        centre = _place(rng, size, radius, placed)
        if centre is None:
            continue
        placed.append((centre[0], centre[1], radius))
        label = int(rng.integers(len(SHAPE_CLASSES)))
        colour = _contrasting_colour(rng, background, centre, radius, label)
        box = _draw_shape(rng, draw, SHAPE_CLASSES[label], centre, radius, colour)
        x0, y0, x1, y1 = (min(max(v / size, 0.0), 1.0) for v in box)
        objects.append((label, (x0, y0, x1, y1)))

    noise_std = rng.uniform(*_NOISE_STD)
    noise = rng.standard_normal((size, size, 3), dtype=np.float32) * noise_std
    pixels = np.asarray(image, dtype=np.float32) + noise
    return np.clip(pixels, 0, 255).astype(np.uint8), objects


def _blocky_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A grid of randomly coloured blocks, `(size, size, 3)` uint8."""
    rows, cols = rng.choice(_GRID_CELLS, 2)
    colours = _muted_colours(rng, (rows, cols))
    block_h, block_w = -(-size // rows), -(-size // cols)
    blocks = np.repeat(np.repeat(colours, block_h, axis=0), block_w, axis=1)
    return np.ascontiguousarray(blocks[:size, :size])


def _muted_colours(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Low-saturation colours: a grey level plus a small tint, uint8."""
    grey = rng.uniform(*_BACKGROUND_GREY, (*shape, 1))
    tint = rng.uniform(-_BACKGROUND_TINT, _BACKGROUND_TINT, (*shape, 3))
    return np.clip(grey + tint, 0, 255).astype(np.uint8)


def _draw_distractors(
    rng: np.random.Generator, draw: ImageDraw.ImageDraw, size: int
) -> None:
    """Draws thin random polylines, clutter that belongs to no class."""
    for _ in range(int(rng.integers(_NUM_DISTRACTORS[0], _NUM_DISTRACTORS[1] + 1))):
        num_points = int(rng.integers(2, 5))
        point = rng.uniform(0, size, 2)
        points = [tuple(point)]
        for _ in range(num_points - 1):
            angle = rng.uniform(0, 2 * math.pi)
            length = rng.uniform(*_DISTRACTOR_LENGTH) * size
            point = point + length * np.array([math.cos(angle), math.sin(angle)])
            points.append(tuple(point))
        colour = tuple(int(c) for c in _muted_colours(rng, ()))
        draw.line(points, fill=colour, width=1)


def _place(
    rng: np.random.Generator,
    size: int,
    radius: float,
    placed: list[tuple[float, float, float]],
) -> tuple[float, float] | None:
    """Samples a centre keeping the object inside and apart from the others."""
    for _ in range(_PLACEMENT_TRIES):
        x, y = rng.uniform(radius, size - radius, 2)
        if all(
            math.hypot(x - px, y - py) >= _MIN_SEPARATION * (radius + pr)
            for px, py, pr in placed
        ):
            return float(x), float(y)
    return None


def _contrasting_colour(
    rng: np.random.Generator,
    background: np.ndarray,
    centre: tuple[float, float],
    radius: float,
    label: int,
) -> tuple[int, int, int]:
    """A vivid colour of the class's hue band, standing out from the background."""
    size = background.shape[0]
    x, y = centre
    x0, x1 = max(int(x - radius), 0), min(int(x + radius) + 1, size)
    y0, y1 = max(int(y - radius), 0), min(int(y + radius) + 1, size)
    local_mean = background[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    best, best_distance = None, -1.0
    for _ in range(_COLOUR_TRIES):
        colour = _saturated_colour(rng, label)
        distance = float(np.linalg.norm(colour - local_mean))
        if distance > best_distance:
            best, best_distance = colour, distance
        if distance >= _MIN_COLOUR_DISTANCE:
            break
    return tuple(int(c) for c in best)


def _saturated_colour(rng: np.random.Generator, label: int) -> np.ndarray:
    """A vivid colour in the hue band of class `label`, `(3,)` int.

    Hue bands are centred 6/C sectors apart (of 6) and are wider than that, so
    neighbouring classes share hues and colour alone does not name the class.
    """
    centre = label * 6.0 / len(SHAPE_CLASSES)
    hue = (centre + rng.uniform(-_HUE_HALF_WIDTH, _HUE_HALF_WIDTH)) % 6.0
    value = rng.uniform(*_OBJECT_VALUE)
    low = value * (1 - rng.uniform(*_OBJECT_SATURATION))
    rising = low + (value - low) * (hue % 1)
    falling = value - (value - low) * (hue % 1)
    sector = [
        (value, rising, low),
        (falling, value, low),
        (low, value, rising),
        (low, falling, value),
        (rising, low, value),
        (value, low, falling),
    ][int(hue) % 6]
    return np.array(sector).round().astype(int)


def _draw_shape(
    rng: np.random.Generator,
    draw: ImageDraw.ImageDraw,
    name: str,
    centre: tuple[float, float],
    radius: float,
    colour: tuple[int, int, int],
) -> tuple[float, float, float, float]:
    """Draws one shape; returns its box `(x0, y0, x1, y1)` in pixels."""
    x, y = centre
    if name in ("circle", "ring"):
        box = (x - radius, y - radius, x + radius, y + radius)
        if name == "circle":
            draw.ellipse(box, fill=colour)
        else:
            draw.ellipse(box, outline=colour, width=max(1, round(0.35 * radius)))
        return box
    max_angle = _UPRIGHT_TILT if name in _UPRIGHT else math.pi
    angle = rng.uniform(-max_angle, max_angle)
    cos, sin = math.cos(angle), math.sin(angle)
    points = [
        (x + px * cos - py * sin, y + px * sin + py * cos)
        for px, py in _OUTLINES[name](radius)
    ]
    if name == "frame":
        draw.polygon(points, outline=colour, width=max(1, round(0.35 * radius)))
    else:
        draw.polygon(points, fill=colour)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _regular(num_vertices: int, radius: float) -> list[tuple[float, float]]:
    """Vertices of a regular polygon centred at the origin."""
    step = 2.0 * math.pi / num_vertices
    return [
        (radius * math.cos(i * step), radius * math.sin(i * step))
        for i in range(num_vertices)
    ]


def _square(radius: float) -> list[tuple[float, float]]:
    """An upright square whose corners reach `radius`."""
    r = radius / math.sqrt(2.0)
    return [(r, r), (-r, r), (-r, -r), (r, -r)]


def _tee(radius: float) -> list[tuple[float, float]]:
    """A T inside the circle of `radius`: a top bar and a stem, 0.4 radius wide."""
    r, w = radius / math.sqrt(2.0), 0.2 * radius
    return [
        (-r, r), (r, r), (r, r - 2 * w), (w, r - 2 * w),
        (w, -r), (-w, -r), (-w, r - 2 * w), (-r, r - 2 * w),
    ]  # fmt: skip


def _star(radius: float) -> list[tuple[float, float]]:
    """A five-pointed star."""
    step = math.pi / 5.0
    radii = (radius, 0.45 * radius)
    return [
        (radii[i % 2] * math.cos(i * step), radii[i % 2] * math.sin(i * step))
        for i in range(10)
    ]


def _cross(radius: float) -> list[tuple[float, float]]:
    """A plus sign with arms of half-width 0.3 radius."""
    r, w = radius, 0.3 * radius
    return [
        (w, w), (w, r), (-w, r), (-w, w), (-r, w), (-r, -w),
        (-w, -w), (-w, -r), (w, -r), (w, -w), (r, -w), (r, w),
    ]  # fmt: skip


def _bar(radius: float) -> list[tuple[float, float]]:
    """A thin rectangle of half-length `radius`."""
    r, w = radius, 0.3 * radius
    return [(r, w), (-r, w), (-r, -w), (r, -w)]


def _semicircle(radius: float) -> list[tuple[float, float]]:
    """A half disc, flat side through the centre."""
    steps = 12
    return [
        (radius * math.cos(math.pi * i / steps), radius * math.sin(math.pi * i / steps))
        for i in range(steps + 1)
    ]


# Polygon outlines around the origin, by class (circle and ring are ellipses).
_OUTLINES = {
    "square": _square,
    "triangle": lambda radius: _regular(3, radius),
    "cross": _cross,
    "star": _star,
    "frame": _square,
    "bar": _bar,
    "tee": _tee,
    "semicircle": _semicircle,
}
# Classes drawn near upright (squares and frames keep their axis-aligned edges).
_UPRIGHT = ("square", "frame")
_UPRIGHT_TILT = math.radians(15.0)
