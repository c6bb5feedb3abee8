"""Tests for `csra_tf.data.wider` on a small file in the official format."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from csra_tf.data import Source, wider

# Ids deliberately out of order in the file: names must come out in id order.
ATTRIBUTE_ID_MAP = {"2": "hat", "0": "Male", "1": "longHair"}
CLASS_NAMES = ["Male", "longHair", "hat"]


def _image(path, height, width, seed, fmt):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    # Smooth content, so that JPEG decoders agree closely.
    small = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), np.uint8)
    array = np.asarray(Image.fromarray(small).resize((width, height)))
    Image.fromarray(array).save(path, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture
def wider_dir(tmp_path):
    """Three images (two JPEG in train/, one PNG in val/) and an annotation file."""
    root = tmp_path / "Image"
    pixels = {
        "train/0--Parade/a.jpg": _image(
            str(root / "train/0--Parade/a.jpg"), 40, 60, 0, "JPEG"
        ),
        "train/1--Handshaking/b.jpg": _image(
            str(root / "train/1--Handshaking/b.jpg"), 32, 32, 1, "JPEG"
        ),
        "val/0--Parade/c.png": _image(
            str(root / "val/0--Parade/c.png"), 30, 20, 2, "PNG"
        ),
    }
    images = [
        {
            "file_name": "train/0--Parade/a.jpg",
            "scene_id": 0,
            "targets": [
                {"attribute": [1, -1, 0], "bbox": [10, 5, 20, 30]},
                # Float box reaching past the right and bottom edges: clipped.
                {"attribute": [-1, 1, 1], "bbox": [50.5, 30.2, 20, 20]},
            ],
        },
        {"file_name": "train/1--Handshaking/b.jpg", "scene_id": 1, "targets": []},
        {
            "file_name": "val/0--Parade/c.png",
            "scene_id": 0,
            # Starts left of and above the image: clipped to the origin.
            "targets": [{"attribute": [0, 0, -1], "bbox": [-4, -3, 10, 12]}],
        },
    ]
    path = tmp_path / "wider_attribute_trainval.json"
    _write(path, images)
    return tmp_path, root, pixels


def _write(path, images):
    content = {
        "attribute_id_map": ATTRIBUTE_ID_MAP,
        "scene_id_map": {"0": "Parade", "1": "Handshaking"},
        "images": images,
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(content, f)


def _collect(source):
    return [(image.numpy(), target.numpy()) for image, target in source.dataset]


def test_one_example_per_person_cropped_and_relabelled(wider_dir):
    tmp_path, root, pixels = wider_dir
    source = wider(tmp_path / "wider_attribute_trainval.json", root)
    assert isinstance(source, Source)
    assert source.class_names == CLASS_NAMES
    assert source.num_examples == 3 and source.bad_records == {}
    spec = source.dataset.element_spec
    assert spec[0].dtype.name == "uint8" and spec[0].shape.as_list() == [None, None, 3]
    assert spec[1].shape.as_list() == [3]
    examples = _collect(source)
    np.testing.assert_array_equal(
        [target for _, target in examples],
        [[1, 0, -1], [0, 1, 1], [-1, -1, 0]],  # 1 -> 1, -1 -> 0, 0 -> -1
    )
    # JPEG crops are decoded region-only: they match a whole decode with the
    # same decoder but for chroma upsampling along the crop's far edges.
    whole = tf.io.decode_jpeg(tf.io.read_file(str(root / "train/0--Parade/a.jpg")))
    whole = whole.numpy().astype(np.int32)
    crops = [image.astype(np.int32) for image, _ in examples]
    assert crops[0].shape == (30, 20, 3)
    assert np.abs(crops[0] - whole[5:35, 10:30]).mean() < 0.5
    assert crops[1].shape == (10, 10, 3)  # x 50-60 (floor / clip), y 30-40
    assert np.abs(crops[1] - whole[30:40, 50:60]).mean() < 0.5
    # ... and PIL's decode to within JPEG decoder differences.
    pil = pixels["train/0--Parade/a.jpg"].astype(np.int32)
    assert np.abs(crops[0] - pil[5:35, 10:30]).mean() < 3
    np.testing.assert_array_equal(crops[2], pixels["val/0--Parade/c.png"][0:9, 0:6])


@pytest.mark.parametrize("split, expected", [("train", 2), ("val", 1), (None, 3)])
def test_split_selects_by_folder(wider_dir, split, expected):
    tmp_path, root, _ = wider_dir
    source = wider(tmp_path / "wider_attribute_trainval.json", root, split=split)
    assert source.num_examples == expected == len(_collect(source))


def test_split_without_people_is_an_error(wider_dir):
    tmp_path, root, _ = wider_dir
    with pytest.raises(ValueError, match="no person in split 'test'"):
        wider(tmp_path / "wider_attribute_trainval.json", root, split="test")


def _bad_file(tmp_path, root):
    """One good person, then one bad person of each kind."""
    with open(root / "train/0--Parade/a.jpg", "rb") as f:
        data = f.read()
    with open(root / "train/trunc.jpg", "wb") as f:
        f.write(data[: len(data) // 2])
    open(root / "train/empty.jpg", "wb").close()
    good = {"attribute": [1, 1, 1], "bbox": [0, 0, 10, 10]}
    images = [
        {
            "file_name": "train/0--Parade/a.jpg",
            "targets": [
                good,
                {"attribute": [1, 1, 1], "bbox": [70, 0, 10, 10]},  # outside
                {"attribute": [1, 1, 1], "bbox": [5, 5, 0, 10]},  # zero width
                {"attribute": [1, 1], "bbox": [0, 0, 10, 10]},
                {"attribute": [1, 2, 1], "bbox": [0, 0, 10, 10]},
                {"attribute": [1, 1, 1], "bbox": [0, 0, 10]},
            ],
        },
        {"file_name": "train/gone.jpg", "targets": [good]},
        {"file_name": "train/empty.jpg", "targets": [good]},
        {"file_name": "train/trunc.jpg", "targets": [good]},
        {"targets": [good]},
    ]
    path = tmp_path / "bad.json"
    _write(path, images)
    return path


def test_bad_records_error_lists_where_and_why(wider_dir):
    tmp_path, root, _ = wider_dir
    path = _bad_file(tmp_path, root)
    with pytest.raises(ValueError) as error:
        wider(path, root)
    message = str(error.value)
    assert "bad.json" in message and "9 bad record(s)" in message
    for expected in [
        r"images[0] (train/0--Parade/a.jpg) targets[1]: bad_box",
        r"images[0] (train/0--Parade/a.jpg) targets[2]: bad_box",
        r"targets[3]: wrong_length",
        r"targets[4]: bad_value",
        r"targets[5]: bad_box",
        r"images[1] (train/gone.jpg) targets[0]: missing_file",
        r"images[2] (train/empty.jpg) targets[0]: empty_file",
        r"images[3] (train/trunc.jpg) targets[0]: unreadable_image",
        r"images[4]: malformed",
    ]:
        assert expected in message


def test_bad_records_skipped_and_counted(wider_dir):
    tmp_path, root, _ = wider_dir
    source = wider(_bad_file(tmp_path, root), root, on_bad_record="skip")
    assert source.num_examples == 1 == len(_collect(source))
    assert source.bad_records == {
        "malformed": 1,
        "wrong_length": 1,
        "bad_value": 1,
        "bad_box": 3,
        "missing_file": 1,
        "empty_file": 1,
        "unreadable_image": 1,
    }


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "trainval"}, "Received: split='trainval'"),
        ({"on_bad_record": "warn"}, "Received: on_bad_record='warn'"),
        ({"annotation_json": "absent.json"}, "Received: annotation_json="),
    ],
)
def test_invalid_arguments(wider_dir, kwargs, match):
    tmp_path, root, _ = wider_dir
    arguments = {"annotation_json": tmp_path / "wider_attribute_trainval.json"}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        wider(image_root=root, **arguments)


def test_invalid_attribute_map(tmp_path):
    with open(tmp_path / "w.json", "w", encoding="utf-8") as f:
        json.dump({"attribute_id_map": {"1": "a"}, "images": []}, f)
    with pytest.raises(ValueError, match="keys must be 0"):
        wider(tmp_path / "w.json", tmp_path)
