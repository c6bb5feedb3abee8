"""Tests for `csra_tf.data.pipeline.build_dataset`."""

import numpy as np
import pytest
import tensorflow as tf

from csra_tf.data import Source, build_dataset

NUM = 40
HEIGHT, WIDTH = 36, 48


def _source_dataset():
    """Images whose blue channel is a constant identifying them (`4 * i`), on a
    red gradient rising to the right; targets one-hot of `i % 5` plus unknowns."""
    ramp = np.linspace(0, 255, WIDTH, dtype=np.float32)
    images = np.zeros((NUM, HEIGHT, WIDTH, 3), np.uint8)
    images[..., 0] = ramp.astype(np.uint8)
    images[..., 1] = np.arange(HEIGHT, dtype=np.uint8)[:, None] * 7
    images[..., 2] = (4 * np.arange(NUM, dtype=np.uint8))[:, None, None]
    targets = np.zeros((NUM, 5), np.float32)
    targets[np.arange(NUM), np.arange(NUM) % 5] = 1.0
    targets[::3, 4] = -1.0
    return tf.data.Dataset.from_tensor_slices((images, targets)), images, targets


def _collect(dataset):
    batches = list(dataset)
    images = np.concatenate([x.numpy() for x, _ in batches])
    return images, np.concatenate([y.numpy() for _, y in batches])


def test_eval_shapes_values_and_order():
    dataset, images, targets = _source_dataset()
    batches = build_dataset(dataset, image_size=32, batch_size=16, training=False)
    shapes = [(tuple(x.shape), tuple(y.shape)) for x, y in batches]
    assert shapes == [((16, 32, 32, 3), (16, 5))] * 2 + [((8, 32, 32, 3), (8, 5))]
    out_images, out_targets = _collect(batches)
    assert out_images.dtype == np.float32 and out_targets.dtype == np.float32
    np.testing.assert_array_equal(out_targets, targets)  # order kept, -1 kept
    expected = tf.image.resize(images.astype(np.float32), (32, 32)).numpy()
    np.testing.assert_allclose(out_images, expected, atol=1e-3)
    again, _ = _collect(batches)
    np.testing.assert_array_equal(out_images, again)


def test_train_batches_static_shape_and_value_range():
    dataset, _, _ = _source_dataset()
    batches = build_dataset(dataset, image_size=24, batch_size=16, training=True)
    assert batches.element_spec[0].shape.as_list() == [16, 24, 24, 3]
    assert batches.element_spec[1].shape.as_list() == [16, 5]
    out_images, out_targets = _collect(batches)
    assert out_images.shape == (32, 24, 24, 3)  # the remainder is dropped
    assert out_images.min() >= 0.0 and out_images.max() <= 255.0
    assert out_images.max() > 200.0  # not rescaled
    assert out_targets.min() == -1.0


def test_train_crops_and_flips_but_keeps_labels():
    dataset, images, targets = _source_dataset()
    batches = build_dataset(
        dataset, image_size=32, batch_size=8, training=True, drop_remainder=False
    )
    out_images, out_targets = _collect(batches)
    identity = np.rint(out_images[..., 2].mean(axis=(1, 2)) / 4).astype(int)
    assert sorted(identity) == list(range(NUM))  # every image once
    np.testing.assert_array_equal(out_targets, targets[identity])

    # The red ramp rises to the right unless flipped; both must occur.
    slope = np.sign(out_images[:, :, -1, 0].mean(1) - out_images[:, :, 0, 0].mean(1))
    assert 5 <= (slope < 0).sum() <= NUM - 5
    # Cropping narrows the ramp's range (a plain resize keeps it near 0-255).
    span = out_images[..., 0].max(axis=(1, 2)) - out_images[..., 0].min(axis=(1, 2))
    assert (span < 230).sum() >= NUM // 2


def test_train_is_seeded():
    dataset, _, _ = _source_dataset()

    def first(seed):
        batches = build_dataset(dataset, 32, 8, training=True, seed=seed)
        return next(iter(batches))[0].numpy()

    np.testing.assert_array_equal(first(1), first(1))
    assert not np.array_equal(first(1), first(2))


def test_epochs_differ():
    dataset, _, _ = _source_dataset()
    batches = build_dataset(dataset, 32, 8, training=True, seed=3)
    epoch_1 = next(iter(batches))[0].numpy()
    epoch_2 = next(iter(batches))[0].numpy()
    assert not np.array_equal(epoch_1, epoch_2)


@pytest.mark.parametrize("training", [False, True])
def test_unknown_as_negative(training):
    dataset, _, targets = _source_dataset()
    batches = build_dataset(
        dataset, 16, 8, training=training, unknown_as="negative", drop_remainder=False
    )
    _, out_targets = _collect(batches)
    assert set(np.unique(out_targets)) == {0.0, 1.0}
    assert out_targets.sum() == np.maximum(targets, 0).sum()


def test_accepts_a_source():
    dataset, _, _ = _source_dataset()
    source = Source(dataset=dataset, class_names=list("abcde"), num_examples=NUM)
    batches = build_dataset(source, 16, 40, training=False)
    assert next(iter(batches))[0].shape == (40, 16, 16, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 0}, "Received: image_size=0"),
        ({"batch_size": -1}, "Received: batch_size=-1"),
        ({"shuffle_buffer": 0}, "Received: shuffle_buffer=0"),
        ({"unknown_as": "zero"}, "Received: unknown_as='zero'"),
        ({"seed": 1.5}, "Received: seed=1.5"),
        ({"source_dataset": [1, 2]}, "Received: source_dataset"),
        ({"source_dataset": tf.data.Dataset.range(3)}, "Received: element_spec"),
    ],
)
def test_invalid_arguments(kwargs, match):
    dataset, _, _ = _source_dataset()
    arguments = {
        "source_dataset": dataset,
        "image_size": 32,
        "batch_size": 8,
        "training": True,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        build_dataset(**arguments)
