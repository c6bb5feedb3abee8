"""Tests for `csra_tf.data.tfds_sources` on mocked TFDS data (no network).

Mocked examples have random image sizes and random object lists (empty ones
included), and the mock does not keep a sequence's fields the same length;
expected targets are computed here, in NumPy, from the raw mocked examples.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from csra_tf.data import Source, coco, voc

NUM_EXAMPLES = 12


def _raw_examples(name):
    """The mocked examples as NumPy, read straight from `tfds.load`."""
    dataset = tfds.load(name, split="train", shuffle_files=False)
    return list(tfds.as_numpy(dataset))


def _expected_voc_target(objects, num_classes=20):
    target = np.zeros(num_classes, np.float32)
    flags = list(objects["is_difficult"])
    for position, label in enumerate(objects["label"]):
        difficult = flags[position] if position < len(flags) else False
        if not difficult:
            target[label] = 1.0
        elif target[label] == 0.0:
            target[label] = -1.0
    return target


def _collect(source):
    return [(image.numpy(), target.numpy()) for image, target in source.dataset]


@pytest.mark.parametrize("year", [2007, "2012"])
def test_voc_targets_follow_the_difficult_rule(year):
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        source = voc(year, "train")
        raw = _raw_examples(f"voc/{year}")
        examples = _collect(source)
    assert isinstance(source, Source)
    assert source.num_classes == 20
    assert source.class_names[:3] == ["aeroplane", "bicycle", "bird"]
    assert source.num_examples == NUM_EXAMPLES == len(examples)
    spec = source.dataset.element_spec
    assert spec[0].dtype.name == "uint8" and spec[0].shape.as_list() == [None, None, 3]
    assert spec[1].dtype.name == "float32" and spec[1].shape.as_list() == [20]
    seen = set()
    for (image, target), example in zip(examples, raw, strict=True):
        np.testing.assert_array_equal(image, example["image"])
        expected = _expected_voc_target(example["objects"])
        np.testing.assert_array_equal(target, expected)
        seen |= set(np.unique(expected))
    assert seen == {-1.0, 0.0, 1.0}  # the mock data exercises every case


def test_voc_handles_images_without_objects():
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        raw = _raw_examples("voc/2007")
        examples = _collect(voc(2007, "train"))
    empty = [i for i, ex in enumerate(raw) if len(ex["objects"]["label"]) == 0]
    for i in empty:
        np.testing.assert_array_equal(examples[i][1], np.zeros(20))


def test_coco_counts_every_object_crowd_included():
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        source = coco("validation", drop_unannotated=False)
        raw = _raw_examples("coco/2014")
        examples = _collect(source)
    assert source.num_classes == 80 and len(source.class_names) == 80
    assert source.num_examples == NUM_EXAMPLES
    crowd_only = 0
    for (image, target), example in zip(examples, raw, strict=True):
        np.testing.assert_array_equal(image, example["image"])
        expected = np.zeros(80, np.float32)
        expected[example["objects"]["label"]] = 1.0
        np.testing.assert_array_equal(target, expected)
        labels, crowd = example["objects"]["label"], example["objects"]["is_crowd"]
        n = min(len(labels), len(crowd))
        crowd_only += len(set(labels[:n][crowd[:n]]) - set(labels[:n][~crowd[:n]]))
    assert crowd_only > 0  # some classes are present through crowd objects only


def test_coco_drops_images_without_annotations():
    # TFDS's mock COCO images all have objects: empty three of them.
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        raw = _raw_examples("coco/2014")
    for i in (0, 4, 9):
        raw[i]["objects"] = {k: v[:0] for k, v in raw[i]["objects"].items()}

    def as_dataset(builder, *args, **kwargs):
        specs = tf.nest.map_structure(
            lambda info: tf.TensorSpec(info.shape, info.dtype),
            builder.info.features.get_tensor_info(),
        )
        return tf.data.Dataset.from_generator(lambda: iter(raw), output_signature=specs)

    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES, as_dataset_fn=as_dataset):
        source = coco("validation")
        examples = _collect(source)
    annotated = [ex for ex in raw if len(ex["objects"]["label"]) > 0]
    assert len(annotated) == NUM_EXAMPLES - 3
    assert source.num_examples == len(examples) == len(annotated)
    for (image, _), example in zip(examples, annotated, strict=True):
        np.testing.assert_array_equal(image, example["image"])


def test_source_order_is_stable():
    with tfds.testing.mock_data(num_examples=4):
        first = [t for _, t in _collect(voc(2007, "validation"))]
        second = [t for _, t in _collect(voc(2007, "validation"))]
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("year", [2010, "voc", None, True])
def test_voc_rejects_other_years(year):
    with pytest.raises(ValueError, match="Received: year="):
        voc(year, "train")


@pytest.mark.parametrize("split", ["", None, 3])
def test_split_must_be_a_string(split):
    with pytest.raises(ValueError, match="Received: split="):
        coco(split)
