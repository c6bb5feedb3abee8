"""The input pipeline: augment, resize, batch and prefetch a source's examples."""

from __future__ import annotations

import keras
import tensorflow as tf

from csra_tf.config.choices import AUGMENTATIONS, UNKNOWN_AS
from csra_tf.data.source import Source
from csra_tf.errors import UserError

# Random resized crop: area fraction of the image and aspect-ratio range.
CROP_AREA_RANGE = (0.7, 1.0)
CROP_ASPECT_RATIO_RANGE = (3.0 / 4.0, 4.0 / 3.0)
_CROP_MAX_ATTEMPTS = 10
# RandAugment: operations per image, and the default strength in [0, 1].
RANDAUGMENT_NUM_OPS = 2
RANDAUGMENT_MAGNITUDE = 0.5
# Spreads the augmentation seeds of the input pipelines of one run apart.
_PIPELINE_SEED_STRIDE = 1_000_003


def build_dataset(
    source_dataset: tf.data.Dataset | Source,
    image_size: int,
    batch_size: int,
    training: bool,
    seed: int = 0,
    unknown_as: str = "ignore",
    shuffle_buffer: int = 1024,
    drop_remainder: bool | None = None,
    randaugment: bool = False,
    randaugment_magnitude: float = RANDAUGMENT_MAGNITUDE,
    input_context: tf.distribute.InputContext | None = None,
    augment_mode: str = "crop_flip",
    repeat: bool = False,
    start_batch: int = 0,
) -> tf.data.Dataset:
    """Turns a source's `(image, target)` examples into model-ready batches.

    Training: shuffle (seeded, reshuffled each epoch), then by `augment_mode`
    random resized crop (area 0.7-1.0 of the image, aspect ratio 3/4-4/3) and
    random horizontal flip (`"crop_flip"`), the flip alone (`"flip"`, the
    authors' WIDER-Attribute recipe) or nothing (`"none"`), with stateless ops
    seeded per example from `seed`, resized to `image_size`, then optionally
    RandAugment (`keras.layers.RandAugment`, two
    operations per image). Evaluation: resize to `image_size` only, in source
    order. Pixels stay in [0, 255]: the model rescales them itself.

    Given a `Source` that keeps its undecoded records (manifests, shapes,
    WIDER), sharding and shuffling act on the records, so each input pipeline
    only decodes its own share and the shuffle buffer holds paths, not images.

    Everything random is seeded from `seed`. RandAugment draws from a Keras
    seed generator, whose draws depend on call order, so it runs on one thread
    to keep runs reproducible; it is the slow part of the pipeline when on.

    Args:
        source_dataset: A `tf.data.Dataset` of `(image uint8 (H, W, 3), target
            float32 (C,))` pairs, such as `Source.dataset`, or a `Source`.
        image_size: The side `S` of the square output images.
        batch_size: The number of examples per batch; with `input_context`, the
            global batch size, split evenly across replicas.
        training: Whether to shuffle and augment.
        seed: The seed of the shuffle and of the augmentations.
        unknown_as: `"ignore"` keeps unknown (`-1`) targets for the loss and
            metrics to skip; `"negative"` turns them into `0`.
        shuffle_buffer: The shuffle buffer size, in examples (in records when
            the source keeps them).
        drop_remainder: Whether to drop a last partial batch. Defaults to
            `training`.
        randaugment: Whether to apply RandAugment when training.
        randaugment_magnitude: RandAugment's strength in [0, 1] (the `factor`
            of `keras.layers.RandAugment`).
        input_context: The `tf.distribute.InputContext` of this input pipeline
            (from `strategy.distribute_datasets_from_function`): the examples
            are sharded by `input_pipeline_id` and batched per replica.
        augment_mode: One of `AUGMENTATIONS`: `"crop_flip"`, `"flip"` or
            `"none"`.
        repeat: Training only: an endless stream (passes over the data one
            after another, each reshuffled), whose augmentation is seeded by
            each element's position in the stream, so that the stream can be
            restarted at any batch with the same order and randomness.
        start_batch: With `repeat`: the stream starts at this batch, as if the
            earlier ones had been drawn (only the undecoded records are
            skipped, nothing is decoded). A run resumed mid-epoch continues
            with exactly the batches it would have seen (RandAugment excepted:
            its draws depend on call order).

    Returns:
        A `tf.data.Dataset` of `(images float32 (B, S, S, 3) in [0, 255],
        targets float32 (B, C))`, prefetched; `B` is the per-replica batch size
        with `input_context`, else `batch_size`.

    Example:

    >>> import tensorflow as tf
    >>> images = tf.zeros((4, 40, 50, 3), tf.uint8)
    >>> targets = tf.constant([[1.0, -1.0]] * 4)
    >>> dataset = tf.data.Dataset.from_tensor_slices((images, targets))
    >>> batches = build_dataset(dataset, image_size=32, batch_size=2, training=True)
    >>> [tuple(t.shape) for t in next(iter(batches))]
    [(2, 32, 32, 3), (2, 2)]
    """
    source = source_dataset if isinstance(source_dataset, Source) else None
    dataset = source.dataset if source is not None else source_dataset
    _check_arguments(dataset, image_size, batch_size, seed, unknown_as, shuffle_buffer)
    _check_augment_arguments(randaugment_magnitude, input_context)
    if augment_mode not in AUGMENTATIONS:
        raise UserError(
            f"`augment_mode` must be one of {AUGMENTATIONS}. "
            f"Received: augment_mode={augment_mode!r}"
        )
    if (repeat or start_batch) and not training:
        raise UserError(
            "`repeat` and `start_batch` are for training streams. Received: "
            f"repeat={repeat}, start_batch={start_batch}, training=False"
        )
    if (
        not isinstance(start_batch, int)
        or start_batch < 0
        or (start_batch and not repeat)
    ):
        raise UserError(
            "`start_batch` must be an int >= 0, and needs `repeat=True`. "
            f"Received: start_batch={start_batch!r}, repeat={repeat}"
        )
    if drop_remainder is None:
        drop_remainder = bool(training)
    size = (image_size, image_size)
    negative = unknown_as == "negative"

    decode_fn = encoded_fn = None
    if source is not None and source.records is not None:
        dataset, decode_fn = source.records, source.decode_fn
        if training and augment_mode == "crop_flip":
            encoded_fn = source.encoded_fn
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        if input_context.num_input_pipelines > 1:
            dataset = dataset.shard(
                input_context.num_input_pipelines, input_context.input_pipeline_id
            )
    # Each pipeline augments with its own seed (pipeline 0 with `seed`); the
    # shuffle seed can be shared, as each pipeline shuffles its own shard.
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    augment_seed = seed + _PIPELINE_SEED_STRIDE * pipeline_id

    def example(element):
        if decode_fn is None:
            return element
        return decode_fn(*element) if isinstance(element, tuple) else decode_fn(element)

    def augmented(element, example_seed):
        if encoded_fn is not None:
            # Decode only the random crop's window (exact; see decode_random_crop).
            contents, target = encoded_fn(*element)
            image = decode_random_crop(contents, example_seed, size)
            return image, _targets(target, negative)
        image, target = example(element)
        image = augment(image, example_seed, size, augment_mode)
        return image, _targets(target, negative)

    if training and repeat:
        # Each example's augmentation seed is (seed, its position in the stream):
        # the stream can start anywhere and still draw what it would have drawn.
        dataset = dataset.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=True
        ).repeat()
        dataset = dataset.enumerate()
        if start_batch:
            dataset = dataset.skip(start_batch * batch_size)

        def prepare(position, element):
            example_seed = tf.stack([tf.constant(augment_seed, tf.int64), position])
            return augmented(element, example_seed)

    elif training:
        dataset = dataset.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=True
        )
        seeds = tf.data.Dataset.random(
            seed=augment_seed, rerandomize_each_iteration=True
        )
        dataset = tf.data.Dataset.zip((dataset, seeds.batch(2)))

        def prepare(element, example_seed):
            return augmented(element, example_seed)

    else:

        def prepare(*element):
            image, target = example(element if len(element) > 1 else element[0])
            return resize(image, size), _targets(target, negative)

    dataset = dataset.map(
        prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    if training and randaugment:
        layer = keras.layers.RandAugment(
            value_range=(0, 255),
            num_ops=RANDAUGMENT_NUM_OPS,
            factor=randaugment_magnitude,
            seed=augment_seed,
        )

        def rand_augment(image, target):
            image = layer(image, training=True)
            return tf.clip_by_value(image, 0.0, 255.0), target

        # Sequential on purpose: see the docstring.
        dataset = dataset.map(rand_augment, num_parallel_calls=None)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


def augment(
    image: tf.Tensor,
    seed: tf.Tensor,
    size: tuple[int, int],
    mode: str = "crop_flip",
) -> tf.Tensor:
    """The training augmentation: random resized crop and/or random flip.

    Args:
        image: An image `(H, W, 3)` of any real or integer dtype.
        seed: A stateless seed, int64 `(2,)`.
        size: The output `(height, width)`.
        mode: `"crop_flip"` (random resized crop, then flip), `"flip"` (resize,
            then flip) or `"none"` (resize only).

    Returns:
        The augmented image, float32 `(height, width, 3)`, in the input's range.
    """
    crop_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=2)
    )
    if mode == "crop_flip":
        image = random_resized_crop(image, crop_seed, size)
    else:
        image = resize(image, size)
    return image if mode == "none" else random_flip(image, flip_seed)


def decode_random_crop(
    contents: tf.Tensor, seed: tf.Tensor, size: tuple[int, int]
) -> tf.Tensor:
    """`augment(decode(contents), seed, size)` that decodes only the crop of a JPEG.

    The crop box is drawn exactly as `random_resized_crop` draws it (from the
    image's shape, read from the JPEG header), and only a window around it is
    decoded with `decode_and_crop_jpeg`. A window that starts exactly at the
    crop's edge changes the crop's edge pixels (libjpeg's chroma upsampling
    sees a different neighbourhood), so the window starts at a 16-pixel
    column boundary at least 8 pixels left of the crop and ends at least 8
    pixels right of it; the crop cut from that window equals the same crop of
    the whole decoded image (tested against it). Other formats are decoded
    whole.

    Args:
        contents: A scalar string tensor, the encoded image.
        seed: A stateless seed, int64 `(2,)`.
        size: The output `(height, width)`.

    Returns:
        The augmented image, float32 `(height, width, 3)` in [0, 255].
    """
    crop_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=2)
    )

    def jpeg():
        height_width = tf.image.extract_jpeg_shape(contents)[:2]
        begin, crop_size = _crop_box(tf.concat([height_width, [3]], 0), crop_seed)
        top, left = begin[0], begin[1]
        crop_height, crop_width = crop_size[0], crop_size[1]
        start = tf.maximum(left - 8, 0) // 16 * 16
        end = tf.minimum(left + crop_width + 8, height_width[1])
        window = tf.io.decode_and_crop_jpeg(
            contents, tf.stack([top, start, crop_height, end - start]), channels=3
        )
        crop = window[:, left - start : left - start + crop_width]
        return resize(crop, size)

    def whole():
        image = tf.io.decode_image(contents, channels=3, expand_animations=False)
        image = tf.ensure_shape(image, [None, None, 3])
        return random_resized_crop(image, crop_seed, size)

    image = tf.cond(tf.io.is_jpeg(contents), jpeg, whole)
    return random_flip(image, flip_seed)


def _crop_box(
    shape: tf.Tensor,
    seed: tf.Tensor,
    area_range: tuple[float, float] = CROP_AREA_RANGE,
    aspect_ratio_range: tuple[float, float] = CROP_ASPECT_RATIO_RANGE,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The random resized crop's `(begin, size)` for an image of `shape`."""
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.zeros((1, 0, 4), tf.float32),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=aspect_ratio_range,
        area_range=area_range,
        max_attempts=_CROP_MAX_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    return begin, crop_size


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
    begin, crop_size = _crop_box(tf.shape(image), seed, area_range, aspect_ratio_range)
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
        raise UserError(
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
        raise UserError(
            "`source_dataset` must yield unbatched (image (H, W, 3), target (C,)) "
            f"pairs. Received: element_spec={spec}"
        )
    for name, value in (
        ("image_size", image_size),
        ("batch_size", batch_size),
        ("shuffle_buffer", shuffle_buffer),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserError(f"`seed` must be an int. Received: seed={seed!r}")
    if unknown_as not in UNKNOWN_AS:
        raise UserError(
            f"`unknown_as` must be one of {UNKNOWN_AS}. "
            f"Received: unknown_as={unknown_as!r}"
        )


def _check_augment_arguments(
    randaugment_magnitude: object, input_context: object
) -> None:
    """Validates the RandAugment and distribution arguments of `build_dataset`."""
    if (
        isinstance(randaugment_magnitude, bool)
        or not isinstance(randaugment_magnitude, int | float)
        or not 0.0 <= randaugment_magnitude <= 1.0
    ):
        raise UserError(
            "`randaugment_magnitude` must be a number in [0, 1]. "
            f"Received: randaugment_magnitude={randaugment_magnitude!r}"
        )
    if input_context is not None and not isinstance(
        input_context, tf.distribute.InputContext
    ):
        raise UserError(
            "`input_context` must be a tf.distribute.InputContext or None. "
            f"Received: input_context={input_context!r}"
        )
