"""Tests for `csra_tf.data.catalog.train_val_sources` (no network)."""

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from csra_tf.config import NAMED_DATASETS
from csra_tf.data import SHAPE_CLASSES, train_val_sources


def test_named_datasets():
    assert NAMED_DATASETS == ("shapes", "voc2007", "voc2012", "coco2014", "wider")


def test_shapes(tmp_path):
    train, val = train_val_sources(
        "shapes",
        data_dir=tmp_path,
        shapes_num_train=6,
        shapes_num_val=4,
        shapes_image_size=32,
        progress=False,
    )
    assert (train.num_examples, val.num_examples) == (6, 4)
    assert train.class_names == val.class_names == list(SHAPE_CLASSES)


@pytest.mark.parametrize(
    "name, num_classes", [("voc2007", 20), ("voc2012", 20), ("coco2014", 80)]
)
def test_tfds_benchmarks(name, num_classes):
    with tfds.testing.mock_data(num_examples=3):
        train, val = train_val_sources(name)
        assert train.num_classes == val.num_classes == num_classes
        assert len(list(train.dataset)) == 3


def test_wider_finds_the_official_files(tmp_path):
    os.makedirs(tmp_path / "Image/train")
    os.makedirs(tmp_path / "Annotations")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(
        tmp_path / "Image/train/a.jpg"
    )
    content = {
        "attribute_id_map": {"0": "Male", "1": "hat"},
        "images": [
            {
                "file_name": "train/a.jpg",
                "targets": [{"attribute": [1, 0], "bbox": [0, 0, 10, 10]}],
            }
        ],
    }
    for name in ("wider_attribute_trainval.json", "wider_attribute_test.json"):
        (tmp_path / "Annotations" / name).write_text(json.dumps(content))
    train, val = train_val_sources("wider", data_dir=tmp_path, progress=False)
    assert train.class_names == val.class_names == ["Male", "hat"]
    assert train.num_examples == val.num_examples == 1
    os.remove(tmp_path / "Annotations/wider_attribute_test.json")
    with pytest.raises(ValueError, match="wider_attribute_test.json not found"):
        train_val_sources("wider", data_dir=tmp_path, progress=False)


def test_manifest_pair_shares_class_names(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "train.jsonl").write_text(
        json.dumps({"image": "a.png", "labels": ["dog", "cat"]}) + "\n"
    )
    (tmp_path / "val.jsonl").write_text(
        json.dumps({"image": "a.png", "labels": ["dog"]})
        + "\n"
        + json.dumps({"image": "gone.png", "labels": ["cat"]})
        + "\n"
    )
    train, val = train_val_sources(
        str(tmp_path / "train.jsonl"),
        val_dataset=tmp_path / "val.jsonl",
        on_bad_record="skip",
        progress=False,
    )
    assert train.class_names == val.class_names == ["cat", "dog"]
    assert val.bad_records == {"missing_file": 1}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dataset": "shapes"}, "Received: data_dir=None"),
        ({"dataset": "wider"}, "Received: data_dir=None"),
        ({"dataset": "train.jsonl"}, "Received: val_dataset=None"),
        ({"dataset": ""}, "Received: dataset=''"),
        ({"dataset": "shapes", "on_bad_record": "x"}, "Received: on_bad_record='x'"),
    ],
)
def test_missing_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_val_sources(**kwargs)
