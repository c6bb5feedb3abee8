"""The input pipeline: augment, resize, batch and prefetch a source's examples."""

from __future__ import annotations

import tensorflow as tf

from csra_tf.data.source import Source

UNKNOWN_AS = ("ignore", "negative")
# Random resized crop: area fraction of the image and aspect-ratio range.
CROP_AREA_RANGE = (0.7, 1.0)
CROP_ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
_CROP_MAX_ATTEMPTS = 10


def build_dataset(
    source_dataset: tf.data.Dataset | Source,
    image_size: int,
    batch_size: int,
    training: bool,
    seed: int = 0,
    unknown_as: str = "ignore",
    shuffle_buffer: int = 1024,
    drop_remainder: bool | None = None,
) -> tf.data.Dataset:
    """Turns a source's `(image, target)` examples into model-ready batches.

    Training: shuffle (seeded, reshuffled each epoch), random resized crop (area
    0.7-1.0 of the image, aspect ratio 3/4-4/3) and random horizontal flip, both
    with stateless ops seeded per example from `seed`, then resize to
    `image_size`. Evaluation: resize to `image_size` only, in source order. Pixels
    stay in [0, 255]: the model rescales them itself.

    Args:
        source_dataset: A `tf.data.Dataset` of `(image uint8 (H, W, 3), target
            float32 (C,))` pairs, such as `Source.dataset`; a `Source` is also
            accepted.
        image_size: The side `S` of the square output images.
        batch_size: The number of examples per batch.
        training: Whether to shuffle and augment.
        seed: The seed of the shuffle and of the augmentations.
        unknown_as: `"ignore"` keeps unknown (`-1`) targets for the loss and
            metrics to skip; `"negative"` turns them into `0`.
        shuffle_buffer: The shuffle buffer size, in (decoded) examples.
        drop_remainder: Whether to drop a last partial batch. Defaults to
            `training`.

    Returns:
        A `tf.data.Dataset` of `(images float32 (B, S, S, 3) in [0, 255],
        targets float32 (B, C))`, prefetched.

    Example:

    >>> import tensorflow as tf
    >>> images = tf.zeros((4, 40, 50, 3), tf.uint8)
    >>> targets = tf.constant([[1.0, -1.0]] * 4)
    >>> dataset = tf.data.Dataset.from_tensor_slices((images, targets))
    >>> batches = build_dataset(dataset, image_size=32, batch_size=2, training=True)
    >>> [tuple(t.shape) for t in next(iter(batches))]
    [(2, 32, 32, 3), (2, 2)]
    """
    if isinstance(source_dataset, Source):
        source_dataset = source_dataset.dataset
    _check_arguments(
        source_dataset, image_size, batch_size, seed, unknown_as, shuffle_buffer
    )
    if drop_remainder is None:
        drop_remainder = bool(training)
    size = (image_size, image_size)
    negative = unknown_as == "negative"

    if training:
        dataset = source_dataset.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=True
        )
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip((dataset, seeds.batch(2)))

        def prepare(example, example_seed):
            image, target = example
            return augment(image, example_seed, size), _targets(target, negative)

    else:
        dataset = source_dataset

        def prepare(image, target):
            return resize(image, size), _targets(target, negative)

    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


def augment(image: tf.Tensor, seed: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """The training augmentation: random resized crop, then random flip.

    Args:
        image: An image `(H, W, 3)` of any real or integer dtype.
        seed: A stateless seed, int64 `(2,)`.
        size: The output `(height, width)`.

    Returns:
        The augmented image, float32 `(height, width, 3)`, in the input's range.
    """
    crop_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=2)
    )
    image = random_resized_crop(image, crop_seed, size)
    return random_flip(image, flip_seed)


def random_resized_crop(
    image: tf.Tensor,
    seed: tf.Tensor,
    size: tuple[int, int],
    area_range: tuple[float, float] = CROP_AREA_RANGE,
    aspect_ratio_range: tuple[float, float] = CROP_ASPECT_RATIO_RANGE,
) -> tf.Tensor:
    """Crops a random region and resizes it (bilinear) to `size`.

    The region covers `area_range` of the image with a width/height ratio in
    `aspect_ratio_range`; when no such region is found within a few attempts,
    the whole image is used.

    Args:
        image: An image `(H, W, 3)`.
        seed: A stateless seed, int64 `(2,)`.
        size: The output `(height, width)`.
        area_range: The range of the crop's area, as a fraction of the image's.
        aspect_ratio_range: The range of the crop's width / height.

    Returns:
        The resized crop, float32 `(height, width, 3)`.
    """
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.zeros((1, 0, 4), tf.float32),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=aspect_ratio_range,
        area_range=area_range,
        max_attempts=_CROP_MAX_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    return resize(tf.slice(image, begin, crop_size), size)


def random_flip(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Flips an image left-right with probability 1/2.

    Args:
        image: An image `(H, W, C)`.
        seed: A stateless seed, int64 `(2,)`.

    Returns:
        The image, flipped or not.
    """
    return tf.image.stateless_random_flip_left_right(image, seed)


def resize(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Resizes an image (bilinear) to `size`, as float32 in its own range.

    Args:
        image: An image `(H, W, 3)`.
        size: The output `(height, width)`.

    Returns:
        The resized image, float32 `(height, width, 3)`.
    """
    image = tf.image.resize(image, size, method="bilinear")
    return tf.ensure_shape(image, (*size, 3))


def _targets(target: tf.Tensor, negative: bool) -> tf.Tensor:
    """Casts targets to float32, mapping unknown (-1) to 0 when `negative`."""
    target = tf.cast(target, tf.float32)
    return tf.maximum(target, 0.0) if negative else target


def _check_arguments(
    dataset: object,
    image_size: object,
    batch_size: object,
    seed: object,
    unknown_as: object,
    shuffle_buffer: object,
) -> None:
    """Validates the arguments of `build_dataset`."""
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            "`source_dataset` must be a tf.data.Dataset (such as Source.dataset). "
            f"Received: source_dataset={dataset!r}"
        )
    spec = dataset.element_spec
    if not (
        isinstance(spec, tuple)
        and len(spec) == 2
        and all(isinstance(s, tf.TensorSpec) for s in spec)
        and spec[0].shape.rank == 3
        and spec[1].shape.rank == 1
    ):
        raise ValueError(
            "`source_dataset` must yield unbatched (image (H, W, 3), target (C,)) "
            f"pairs. Received: element_spec={spec}"
        )
    for name, value in (
        ("image_size", image_size),
        ("batch_size", batch_size),
        ("shuffle_buffer", shuffle_buffer),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{name}` must be an int >= 1. Received: {name}={value!r}"
            )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")
    if unknown_as not in UNKNOWN_AS:
        raise ValueError(
            f"`unknown_as` must be one of {UNKNOWN_AS}. "
            f"Received: unknown_as={unknown_as!r}"
        )
