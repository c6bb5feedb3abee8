"""Tests for `csra_tf.data.shapes`: the embedded dataset."""

import importlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from csra_tf.data import SHAPE_CLASSES, generate_shapes, load_boxes, shapes, shapes_dir
from csra_tf.data.shapes import COMPLETE_MARKER

# `csra_tf.data.shapes` is the function; the module is reached through importlib.
shapes_module = importlib.import_module("csra_tf.data.shapes")


def _records(split_dir):
    with open(os.path.join(split_dir, "manifest.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _files(folder):
    contents = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                contents[os.path.relpath(path, folder)] = f.read()
    return contents


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """200 images of 64 px, enough to look at statistics."""
    folder = str(tmp_path_factory.mktemp("shapes") / "train")
    generate_shapes(folder, num_images=200, image_size=64, seed=5, progress=False)
    return folder


def test_classes():
    assert len(SHAPE_CLASSES) >= 8
    assert len(set(SHAPE_CLASSES)) == len(SHAPE_CLASSES)


def test_generation_is_deterministic(tmp_path):
    for name in ("a", "b"):
        generate_shapes(tmp_path / name, 20, image_size=40, seed=7, progress=False)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(first) == 20 + 3  # images, manifest, meta, marker
    assert first == second
    generate_shapes(tmp_path / "c", 20, image_size=40, seed=8, progress=False)
    other = _files(tmp_path / "c")
    assert other["images/000000.jpg"] != first["images/000000.jpg"]


def test_files_meta_and_images(generated):
    with open(os.path.join(generated, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    assert meta["num_images"] == 200 and meta["seed"] == 5
    assert meta["class_names"] == list(SHAPE_CLASSES)
    assert os.path.exists(os.path.join(generated, COMPLETE_MARKER))
    records = _records(generated)
    assert len(records) == 200
    with Image.open(os.path.join(generated, records[0]["image"])) as image:
        assert image.format == "JPEG" and image.size == (64, 64)
        pixels = np.asarray(image.convert("RGB"), np.float32)
    assert pixels.std() > 20  # a cluttered background, not a flat one


def test_labels_match_boxes(generated):
    records = _records(generated)
    assert load_boxes(generated) == [record["boxes"] for record in records]
    counts = []
    for record in records:
        box_labels = [box["label"] for box in record["boxes"]]
        assert 1 <= len(box_labels) <= 4
        assert record["labels"] == [c for c in SHAPE_CLASSES if c in box_labels]
        for box in record["boxes"]:
            x0, y0, x1, y1 = box["box"]
            assert 0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0
        counts.append(len(box_labels))
    assert set(counts) == {1, 2, 3, 4}
    all_labels = {box["label"] for r in records for box in r["boxes"]}
    assert all_labels == set(SHAPE_CLASSES)
    # An image can hold two objects of the same class.
    assert any(len(r["labels"]) < len(r["boxes"]) for r in records)


def test_object_sizes_spread_and_many_small(generated):
    sizes = np.array(
        [
            max(box["box"][2] - box["box"][0], box["box"][3] - box["box"][1]) / 2
            for record in _records(generated)
            for box in record["boxes"]
        ]
    )
    # Radii are 4-20 % of the side; a box's half-size is close to the radius.
    assert sizes.min() < 0.05 and sizes.max() > 0.17
    assert sizes.max() <= 0.21
    assert np.median(sizes) < 0.11  # many small ones
    assert (sizes < 0.07).mean() > 0.25


def test_objects_stand_out_from_the_background(generated):
    """An object's box differs from the ring of pixels around it."""
    contrasts = []
    for record in _records(generated)[:50]:
        with Image.open(os.path.join(generated, record["image"])) as image:
            pixels = np.asarray(image.convert("RGB"), np.float32)
        for box in record["boxes"]:
            x0, y0, x1, y1 = (int(round(v * 64)) for v in box["box"])
            cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
            centre = pixels[cy, cx] if box["label"] != "ring" else None
            if centre is None:
                continue
            contrasts.append(np.abs(centre - np.median(pixels.reshape(-1, 3), 0)).sum())
    assert np.median(contrasts) > 60


def test_shapes_source_and_reuse(tmp_path, monkeypatch):
    kwargs = dict(image_size=32, num_train=24, num_val=12, seed=1, progress=False)
    train = shapes(tmp_path, "train", **kwargs)
    val = shapes(tmp_path, "val", **kwargs)
    assert train.class_names == list(SHAPE_CLASSES)
    assert (train.num_examples, val.num_examples) == (24, 12)
    image, target = next(iter(train.dataset))
    assert image.shape == (32, 32, 3) and image.dtype.name == "uint8"
    assert target.shape == (len(SHAPE_CLASSES),) and target.dtype.name == "float32"
    train_dir = shapes_dir(tmp_path, "train", **kwargs)
    val_dir = shapes_dir(tmp_path, "val", **kwargs)
    assert os.path.dirname(train_dir) == os.path.dirname(val_dir)
    assert os.path.basename(os.path.dirname(train_dir)).startswith("shapes-")
    train_files, val_files = _files(train_dir), _files(val_dir)
    assert train_files["images/000000.jpg"] != val_files["images/000000.jpg"]

    def fail(*args, **kwargs):
        raise AssertionError("regenerated a complete split")

    monkeypatch.setattr(shapes_module, "generate_shapes", fail)
    again = shapes(tmp_path, "train", **kwargs)
    assert again.num_examples == 24
    assert _files(train_dir) == train_files


def test_interrupted_generation_is_redone(tmp_path, monkeypatch):
    kwargs = dict(image_size=32, num_train=10, num_val=10, seed=0, progress=False)
    split_dir = shapes_dir(tmp_path, "val", **kwargs)
    complete = _files(split_dir)
    # Simulate a crash: the marker is missing and an image is truncated.
    os.remove(os.path.join(split_dir, COMPLETE_MARKER))
    with open(os.path.join(split_dir, "images/000003.jpg"), "wb") as f:
        f.write(b"\xff\xd8")
    calls = []
    real = shapes_module.generate_shapes
    monkeypatch.setattr(
        shapes_module,
        "generate_shapes",
        lambda *args, **kw: calls.append(args) or real(*args, **kw),
    )
    source = shapes(tmp_path, "val", **kwargs)
    assert len(calls) == 1
    assert _files(split_dir) == complete
    assert source.num_examples == 10
    leftovers = os.listdir(os.path.dirname(split_dir))
    assert not [name for name in leftovers if "tmp" in name]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_images": 0}, "Received: num_images=0"),
        ({"image_size": -4}, "Received: image_size=-4"),
        ({"min_objects": 3, "max_objects": 2}, "max_objects=2"),
        ({"min_radius": 0.3, "max_radius": 0.2}, "min_radius=0.3"),
        ({"jpeg_quality": 0}, "Received: jpeg_quality=0"),
    ],
)
def test_generate_invalid_arguments(tmp_path, kwargs, match):
    arguments = {"num_images": 2, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=match):
        generate_shapes(tmp_path, **arguments)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "test"}, "Received: split='test'"),
        ({"num_train": 0}, "Received: num_train=0"),
        ({"seed": -1}, "Received: seed=-1"),
    ],
)
def test_shapes_invalid_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        shapes(tmp_path, **kwargs)
