"""Tests for `csra_tf.data.manifest`: formats, decoding and record validation."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from csra_tf.data import Source, load_boxes, manifest, write_manifest


def _save(path, array, fmt=None, mode=None):
    """Writes an image with PIL and returns its pixels as PIL decodes them."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    image.save(path, fmt)
    return array


def _rgb(height, width, seed):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


def _write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _examples(source):
    return [(image.numpy(), target.numpy()) for image, target in source.dataset]


@pytest.fixture
def images(tmp_path):
    """Three PNG images (lossless, so pixels can be compared) in a subfolder."""
    arrays = {}
    for i, (h, w) in enumerate([(20, 30), (32, 32), (17, 9)]):
        arrays[f"img/{i}.png"] = _save(str(tmp_path / f"img/{i}.png"), _rgb(h, w, i))
    return arrays


def test_jsonl_label_names_infers_sorted_classes(tmp_path, images):
    _write_lines(
        tmp_path / "m.jsonl",
        [
            json.dumps({"image": "img/0.png", "labels": ["dog", "cat"]}),
            "",  # blank lines are allowed
            json.dumps({"image": "img/1.png", "labels": ["bird"], "boxes": [1, 2]}),
            json.dumps({"image": "img/2.png", "labels": []}),
        ],
    )
    source = manifest(tmp_path / "m.jsonl")
    assert isinstance(source, Source)
    assert source.class_names == ["bird", "cat", "dog"]
    assert source.num_examples == 3
    spec = source.dataset.element_spec
    assert spec[0].dtype.name == "uint8" and spec[0].shape.as_list() == [None, None, 3]
    assert spec[1].dtype.name == "float32" and spec[1].shape.as_list() == [3]
    examples = _examples(source)
    np.testing.assert_array_equal(examples[0][0], images["img/0.png"])
    np.testing.assert_array_equal(examples[2][0], images["img/2.png"])
    np.testing.assert_array_equal(
        [target for _, target in examples], [[0, 1, 1], [1, 0, 0], [0, 0, 0]]
    )


def test_jsonl_target_vectors_with_unknowns(tmp_path, images):
    _write_lines(
        tmp_path / "m.jsonl",
        [
            json.dumps({"image": "img/0.png", "target": [1, 0, -1]}),
            json.dumps({"image": "img/1.png", "target": [0.0, -1.0, 1.0]}),
        ],
    )
    source = manifest(tmp_path / "m.jsonl")
    assert source.class_names == ["class_0", "class_1", "class_2"]
    np.testing.assert_array_equal(
        [target for _, target in _examples(source)], [[1, 0, -1], [0, -1, 1]]
    )
    named = manifest(tmp_path / "m.jsonl", class_names=["a", "b", "c"])
    assert named.class_names == ["a", "b", "c"]


def test_given_class_names_fix_order_and_allow_absent_classes(tmp_path, images):
    _write_lines(
        tmp_path / "m.jsonl", [json.dumps({"image": "img/0.png", "labels": ["b"]})]
    )
    source = manifest(tmp_path / "m.jsonl", class_names=["c", "b", "a"])
    assert source.class_names == ["c", "b", "a"]
    np.testing.assert_array_equal(_examples(source)[0][1], [0, 1, 0])


def test_csv_labels_with_separator_and_image_root(tmp_path, images):
    os.makedirs(tmp_path / "lists")
    with open(tmp_path / "lists/m.csv", "w", encoding="utf-8") as f:
        f.write("image,labels\n")
        f.write("img/0.png,traffic light;cat\n")
        f.write(f"{tmp_path / 'img/1.png'},cat\n")  # absolute path
    source = manifest(
        tmp_path / "lists/m.csv", image_root=tmp_path, label_separator=";"
    )
    assert source.class_names == ["cat", "traffic light"]
    examples = _examples(source)
    np.testing.assert_array_equal(examples[1][0], images["img/1.png"])
    np.testing.assert_array_equal([t for _, t in examples], [[1, 1], [1, 0]])


def test_csv_target_column(tmp_path, images):
    with open(tmp_path / "m.csv", "w", encoding="utf-8") as f:
        f.write("id,image,target\n7,img/0.png,1 -1 0\n")
    source = manifest(tmp_path / "m.csv", class_names=["x", "y", "z"])
    np.testing.assert_array_equal(_examples(source)[0][1], [1, -1, 0])


@pytest.mark.parametrize(
    "name, mode, fmt",
    [
        ("gray.png", "L", "PNG"),
        ("rgba.png", "RGBA", "PNG"),
        ("anim.gif", "P", "GIF"),
        ("pic.bmp", "RGB", "BMP"),
        ("pic.jpg", "RGB", "JPEG"),
    ],
)
def test_decodes_every_format_to_rgb(tmp_path, name, mode, fmt):
    rgb = _rgb(12, 10, 3)
    image = Image.fromarray(rgb).convert(mode)
    if mode == "RGBA":  # a varying alpha, which decoding must drop
        image.putalpha(Image.fromarray(_rgb(12, 10, 4)[..., 0]))
    if fmt == "GIF":
        second = Image.fromarray(255 - rgb).convert(mode)
        image.save(tmp_path / name, save_all=True, append_images=[second])
    else:
        image.save(tmp_path / name, fmt)
    write_manifest(tmp_path / "m.jsonl", [{"image": name, "labels": ["a"]}])
    (decoded, target), *_ = _examples(manifest(tmp_path / "m.jsonl"))
    assert decoded.shape == (12, 10, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(target, [1])
    expected = np.asarray(Image.open(tmp_path / name).convert("RGB"), np.int32)
    if fmt == "JPEG":  # decoders may differ by a little
        assert np.abs(decoded.astype(np.int32) - expected).mean() < 2
    else:  # first frame; gray replicated; alpha dropped
        np.testing.assert_array_equal(decoded, expected)


_OK = json.dumps({"image": "img/0.png", "labels": ["a"]})
_VECTOR = json.dumps({"image": "img/0.png", "target": [1, 0]})
# case: (manifest lines, the bad line's number)
_BAD_CASES = {
    "missing_file": ([_OK, json.dumps({"image": "no.png", "labels": []})], 2),
    "unknown_label": (
        [_OK, _OK, json.dumps({"image": "img/0.png", "labels": ["z"]})],
        3,
    ),
    "wrong_length": (
        [_VECTOR, _VECTOR, json.dumps({"image": "img/0.png", "target": [1]})],
        3,
    ),
    "bad_value": ([json.dumps({"image": "img/0.png", "target": [1, 2]})], 1),
    "bool_value": ([json.dumps({"image": "img/0.png", "target": [True, 0]})], 1),
    "malformed_json": ([_OK, '{"image": "img/0.png", "labels": ['], 2),
    "not_an_object": (["[1, 2]"], 1),
    "no_image": ([_OK, json.dumps({"labels": ["a"]})], 2),
    "unlabelled": ([json.dumps({"image": "img/0.png"})], 1),
    "labels_not_list": ([json.dumps({"image": "img/0.png", "labels": "a"})], 1),
    "not_an_image": ([_OK, json.dumps({"image": "m.jsonl", "labels": ["a"]})], 2),
}


@pytest.mark.parametrize("case", sorted(_BAD_CASES))
def test_bad_record_error_names_file_and_line(tmp_path, images, case):
    lines, bad_line = _BAD_CASES[case]
    _write_lines(tmp_path / "m.jsonl", lines)
    class_names = None if case in ("wrong_length", "bad_value") else ["a"]
    with pytest.raises(ValueError, match=rf"m\.jsonl[\s\S]*line {bad_line}:"):
        manifest(tmp_path / "m.jsonl", class_names=class_names)


def test_bad_csv_row_and_header(tmp_path, images):
    with open(tmp_path / "m.csv", "w", encoding="utf-8") as f:
        f.write("image,labels\nimg/0.png,a\nimg/1.png,a,extra\nmissing.png,a\n")
    with pytest.raises(ValueError, match=r"m\.csv[\s\S]*line 3:[\s\S]*line 4:"):
        manifest(tmp_path / "m.csv")
    with open(tmp_path / "h.csv", "w", encoding="utf-8") as f:
        f.write("path,labels\nimg/0.png,a\n")
    with pytest.raises(ValueError, match=r"h\.csv.*line 1"):
        manifest(tmp_path / "h.csv")


def test_all_bad_records_are_listed(tmp_path, images):
    _write_lines(
        tmp_path / "m.jsonl",
        [json.dumps({"image": f"gone{i}.png", "labels": ["a"]}) for i in range(3)],
    )
    with pytest.raises(ValueError, match=r"3 bad record[\s\S]*line 1[\s\S]*line 3"):
        manifest(tmp_path / "m.jsonl")


def test_empty_manifest(tmp_path):
    _write_lines(tmp_path / "m.jsonl", ["", "  "])
    with pytest.raises(ValueError, match=r"m\.jsonl.*no records"):
        manifest(tmp_path / "m.jsonl")
    with open(tmp_path / "m.csv", "w", encoding="utf-8") as f:
        f.write("image,labels\n")
    with pytest.raises(ValueError, match=r"m\.csv.*no records"):
        manifest(tmp_path / "m.csv")


def test_mixed_names_and_vectors_need_class_names(tmp_path, images):
    _write_lines(
        tmp_path / "m.jsonl",
        [
            json.dumps({"image": "img/0.png", "labels": ["b"]}),
            json.dumps({"image": "img/1.png", "target": [1, -1]}),
        ],
    )
    with pytest.raises(ValueError, match="class_names"):
        manifest(tmp_path / "m.jsonl")
    source = manifest(tmp_path / "m.jsonl", class_names=["a", "b"])
    np.testing.assert_array_equal([t for _, t in _examples(source)], [[0, 1], [1, -1]])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"class_names": ["a", "a"]}, "Received: class_names"),
        ({"class_names": []}, "Received: class_names"),
        ({"label_separator": ""}, "Received: label_separator"),
    ],
)
def test_invalid_arguments(tmp_path, images, kwargs, match):
    write_manifest(tmp_path / "m.jsonl", [{"image": "img/0.png", "labels": ["a"]}])
    with pytest.raises(ValueError, match=match):
        manifest(tmp_path / "m.jsonl", **kwargs)
    with pytest.raises(ValueError, match="Received: path"):
        manifest(tmp_path / "absent.jsonl")


@pytest.mark.parametrize("name", ["m.jsonl", "m.csv", "m.txt"])
def test_write_manifest_round_trip(tmp_path, images, name):
    records = [
        {"image": "img/0.png", "labels": ["cat", "dog"], "boxes": []},
        {"image": "img/1.png", "labels": ["dog"]},
    ]
    write_manifest(tmp_path / name, records)
    source = manifest(tmp_path / name)
    assert source.class_names == ["cat", "dog"]
    np.testing.assert_array_equal([t for _, t in _examples(source)], [[1, 1], [0, 1]])
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]


def test_write_manifest_rejects_unlabelled_records(tmp_path):
    with pytest.raises(ValueError, match=r"Received: records\[0\]"):
        write_manifest(tmp_path / "m.jsonl", [{"image": "a.png"}])


def test_load_boxes(tmp_path, images):
    box = {"label": "cat", "box": [0.1, 0.2, 0.5, 0.6]}
    write_manifest(
        tmp_path / "manifest.jsonl",
        [
            {"image": "img/0.png", "labels": ["cat"], "boxes": [box]},
            {"image": "img/1.png", "labels": []},
        ],
    )
    assert load_boxes(tmp_path / "manifest.jsonl") == [[box], []]
    assert load_boxes(tmp_path) == [[box], []]
