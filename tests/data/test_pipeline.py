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


def _identities(images):
    return np.rint(images[..., 2].mean(axis=(1, 2)) / 4).astype(int)


def test_randaugment_is_seeded_and_changes_images():
    dataset, _, _ = _source_dataset()

    def first(seed, randaugment=True):
        batches = build_dataset(
            dataset, 32, 8, training=True, seed=seed, randaugment=randaugment
        )
        images, targets = next(iter(batches))
        return images.numpy(), targets.numpy()

    images, targets = first(1)
    assert images.shape == (8, 32, 32, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 255.0
    np.testing.assert_array_equal(images, first(1)[0])
    plain, plain_targets = first(1, randaugment=False)
    np.testing.assert_array_equal(targets, plain_targets)  # same shuffle
    assert not np.array_equal(images, plain)
    assert not np.array_equal(images, first(2)[0])


def test_randaugment_strength_and_eval_is_untouched():
    dataset, _, _ = _source_dataset()
    plain = _collect(build_dataset(dataset, 32, 8, training=False))[0]
    augmented = build_dataset(dataset, 32, 8, training=False, randaugment=True)
    np.testing.assert_array_equal(_collect(augmented)[0], plain)

    def change(magnitude):
        kwargs = dict(training=True, seed=4, drop_remainder=False)
        base = _collect(build_dataset(dataset, 32, 40, **kwargs))[0]
        out = _collect(
            build_dataset(
                dataset,
                32,
                40,
                randaugment=True,
                randaugment_magnitude=magnitude,
                **kwargs,
            )
        )[0]
        return np.abs(out - base).mean()

    assert change(0.9) > change(0.1) > 0.0


def _contexts(num_pipelines):
    return [
        tf.distribute.InputContext(
            num_input_pipelines=num_pipelines,
            input_pipeline_id=i,
            num_replicas_in_sync=num_pipelines,
        )
        for i in range(num_pipelines)
    ]


def test_input_context_shards_and_uses_per_replica_batches():
    dataset, _, targets = _source_dataset()
    seen = []
    for context in _contexts(2):
        batches = build_dataset(dataset, 16, 8, training=False, input_context=context)
        assert batches.element_spec[0].shape.as_list() == [None, 16, 16, 3]
        images, out_targets = _collect(batches)
        assert next(iter(batches))[0].shape[0] == 4  # global 8 over 2 replicas
        identity = _identities(images)
        np.testing.assert_array_equal(
            identity, np.arange(context.input_pipeline_id, NUM, 2)
        )
        np.testing.assert_array_equal(out_targets, targets[identity])
        seen.append(identity)
    assert sorted(np.concatenate(seen)) == list(range(NUM))


def test_input_context_training_covers_each_example_once():
    dataset, _, targets = _source_dataset()
    seen = []
    for context in _contexts(2):
        batches = build_dataset(
            dataset, 32, 8, training=True, input_context=context, drop_remainder=False
        )
        images, out_targets = _collect(batches)
        identity = _identities(images)
        np.testing.assert_array_equal(out_targets, targets[identity])
        seen.append(identity)
    assert sorted(np.concatenate(seen)) == list(range(NUM))
    with pytest.raises(ValueError):  # 9 is not divisible over 2 replicas
        build_dataset(dataset, 32, 9, training=True, input_context=_contexts(2)[0])


def _records_source():
    """A Source whose records are indices, decoded by looking images up."""
    dataset, images, targets = _source_dataset()
    image_table = tf.constant(images)

    def decode_fn(index, target):
        return tf.gather(image_table, index), target

    records = tf.data.Dataset.from_tensor_slices((np.arange(NUM), targets))
    source = Source.from_records(records, decode_fn, list("abcde"), NUM)
    return source, dataset, targets


def test_source_records_give_the_same_examples():
    source, dataset, targets = _records_source()
    assert source.records is not None and source.bad_records == {}
    from_records = _collect(build_dataset(source, 24, 16, training=False))
    from_dataset = _collect(build_dataset(dataset, 24, 16, training=False))
    np.testing.assert_array_equal(from_records[0], from_dataset[0])
    np.testing.assert_array_equal(from_records[1], from_dataset[1])

    train = build_dataset(source, 32, 8, training=True, seed=5, drop_remainder=False)
    images, out_targets = _collect(train)
    identity = _identities(images)
    assert sorted(identity) == list(range(NUM)) and list(identity) != list(range(NUM))
    np.testing.assert_array_equal(out_targets, targets[identity])
    np.testing.assert_array_equal(
        images,
        _collect(
            build_dataset(source, 32, 8, training=True, seed=5, drop_remainder=False)
        )[0],
    )

    shard = build_dataset(source, 16, 4, training=False, input_context=_contexts(2)[1])
    np.testing.assert_array_equal(_identities(_collect(shard)[0]), np.arange(1, NUM, 2))


def test_source_needs_records_and_decode_fn_together():
    source, _, _ = _records_source()
    with pytest.raises(ValueError, match="Received: records="):
        Source(source.dataset, ["a"], 1, records=source.records)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"randaugment_magnitude": 1.5}, "Received: randaugment_magnitude=1.5"),
        ({"randaugment_magnitude": True}, "Received: randaugment_magnitude=True"),
        ({"input_context": "worker-0"}, "Received: input_context='worker-0'"),
    ],
)
def test_invalid_augment_arguments(kwargs, match):
    dataset, _, _ = _source_dataset()
    with pytest.raises(ValueError, match=match):
        build_dataset(dataset, 32, 8, training=True, **kwargs)


@pytest.mark.parametrize("mode", ["flip", "none"])
def test_augment_modes_without_the_crop(mode):
    # The authors' WIDER recipe flips without cropping: every training image is
    # the plain resize, mirrored or not (and never mirrored with "none").
    dataset, images, _ = _source_dataset()
    batches = build_dataset(
        dataset,
        image_size=32,
        batch_size=8,
        training=True,
        drop_remainder=False,
        augment_mode=mode,
    )
    out_images, _ = _collect(batches)
    identity = np.rint(out_images[..., 2].mean(axis=(1, 2)) / 4).astype(int)
    resized = tf.image.resize(images.astype(np.float32), (32, 32)).numpy()[identity]
    flipped = np.array(
        [
            not np.allclose(o, r, atol=1e-3)
            for o, r in zip(out_images, resized, strict=True)
        ]
    )
    np.testing.assert_allclose(
        out_images[flipped], resized[flipped][:, :, ::-1], atol=1e-3
    )
    if mode == "none":
        assert not flipped.any()
    else:
        assert 5 <= flipped.sum() <= NUM - 5


def test_unknown_augment_mode():
    dataset, _, _ = _source_dataset()
    with pytest.raises(ValueError, match="augment_mode"):
        build_dataset(dataset, 32, 8, training=True, augment_mode="mixup")


def test_jpeg_training_crops_decode_only_their_window_exactly(tmp_path):
    # The training stream decodes only a window around each random crop of a
    # JPEG; its batches must equal those of decoding every image whole, for
    # the JPEG kinds cameras and tools write (4:2:0, 4:4:4, progressive,
    # grayscale) and for PNG (decoded whole).
    import dataclasses
    import json

    from PIL import Image

    from csra_tf.data import manifest

    rng = np.random.default_rng(0)
    kinds = [
        dict(format="JPEG", quality=75),
        dict(format="JPEG", quality=90, subsampling=0),
        dict(format="JPEG", quality=80, progressive=True),
        dict(format="JPEG", quality=85, mode="L"),
        dict(format="PNG"),
    ]
    records = []
    for i in range(30):
        height, width = int(rng.integers(40, 130)), int(rng.integers(40, 130))
        small = rng.uniform(0, 255, (height // 8 + 1, width // 8 + 1, 3))
        image = tf.image.resize(small, (height, width)).numpy()
        image += rng.normal(0, 20, image.shape)
        kind = dict(kinds[i % len(kinds)])
        picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
        if kind.pop("mode", None) == "L":
            picture = picture.convert("L")
        name = f"{i}.{'png' if kind['format'] == 'PNG' else 'jpg'}"
        picture.save(tmp_path / name, **kind)
        records.append({"image": name, "labels": ["a" if i % 2 else "b"]})
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    source = manifest(tmp_path / "m.jsonl", progress=False)
    assert source.encoded_fn is not None
    whole = dataclasses.replace(source, encoded_fn=None)
    for repeat in (False, True):
        streams = [
            build_dataset(
                s, 48, 10, training=True, seed=3, repeat=repeat, drop_remainder=True
            ).take(6)
            for s in (source, whole)
        ]
        cropped, decoded = (_collect(stream)[0] for stream in streams)
        assert cropped.shape == (60 if repeat else 30, 48, 48, 3)
        np.testing.assert_allclose(cropped, decoded, atol=1e-3)
