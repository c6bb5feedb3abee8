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
_OK_1 = json.dumps({"image": "img/1.png", "labels": ["a"]})
_VECTOR = json.dumps({"image": "img/0.png", "target": [1, 0]})
_VECTOR_1 = json.dumps({"image": "img/1.png", "target": [1, 0]})
# case: (manifest lines, the bad line's number, its reason)
_BAD_CASES = {
    "missing_file": (
        [_OK, json.dumps({"image": "no.png", "labels": []})],
        2,
        "missing_file",
    ),
    "unknown_label": (
        [_OK, _OK_1, json.dumps({"image": "img/2.png", "labels": ["z"]})],
        3,
        "unknown_label",
    ),
    "index_out_of_range": (
        [_OK, json.dumps({"image": "img/1.png", "labels": [0, 1]})],
        2,
        "label_out_of_range",
    ),
    "negative_index": (
        [json.dumps({"image": "img/1.png", "labels": [-1]})],
        1,
        "label_out_of_range",
    ),
    "wrong_length": (
        [_VECTOR, _VECTOR_1, json.dumps({"image": "img/2.png", "target": [1]})],
        3,
        "wrong_length",
    ),
    "bad_value": (
        [json.dumps({"image": "img/0.png", "target": [1, 2]})],
        1,
        "bad_value",
    ),
    "bool_value": (
        [json.dumps({"image": "img/0.png", "target": [True, 0]})],
        1,
        "bad_value",
    ),
    "malformed_json": ([_OK, '{"image": "img/0.png", "labels": ['], 2, "malformed"),
    "not_an_object": (["[1, 2]"], 1, "malformed"),
    "no_image": ([_OK, json.dumps({"labels": ["a"]})], 2, "malformed"),
    "unlabelled": ([json.dumps({"image": "img/0.png"})], 1, "unlabelled"),
    "labels_not_list": (
        [json.dumps({"image": "img/0.png", "labels": "a"})],
        1,
        "malformed",
    ),
    "mixed_names_and_indices": (
        [json.dumps({"image": "img/0.png", "labels": ["a", 0]})],
        1,
        "malformed",
    ),
    "not_an_image": (
        [_OK, json.dumps({"image": "m.jsonl", "labels": ["a"]})],
        2,
        "unreadable_image",
    ),
    "duplicate": ([_OK, _OK_1, _OK], 3, "duplicate"),
}


@pytest.mark.parametrize("case", sorted(_BAD_CASES))
def test_bad_record_error_names_file_line_and_reason(tmp_path, images, case):
    lines, bad_line, reason = _BAD_CASES[case]
    _write_lines(tmp_path / "m.jsonl", lines)
    class_names = None if case in ("wrong_length", "bad_value", "bool_value") else ["a"]
    with pytest.raises(
        ValueError,
        match=rf"m\.jsonl[\s\S]*1 bad record[\s\S]*line {bad_line}: {reason}:",
    ):
        manifest(tmp_path / "m.jsonl", class_names=class_names)


@pytest.mark.parametrize("case", sorted(_BAD_CASES))
def test_bad_record_skipped_and_counted(tmp_path, images, case):
    lines, bad_line, reason = _BAD_CASES[case]
    _write_lines(tmp_path / "m.jsonl", lines)
    class_names = None if case in ("wrong_length", "bad_value", "bool_value") else ["a"]
    if len(lines) == 1:  # nothing would be left: still an error
        with pytest.raises(ValueError, match="No usable record"):
            manifest(
                tmp_path / "m.jsonl", class_names=class_names, on_bad_record="skip"
            )
        return
    source = manifest(
        tmp_path / "m.jsonl", class_names=class_names, on_bad_record="skip"
    )
    assert source.bad_records == {reason: 1}
    assert source.num_examples == len(lines) - 1 == len(_examples(source))


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


def _broken_images(tmp_path):
    """A zero-byte file, a truncated JPEG, a corrupted JPEG and a text file."""
    data_path = tmp_path / "img/good.jpg"
    _save(str(data_path), _rgb(48, 64, 5), "JPEG")
    data = data_path.read_bytes()
    (tmp_path / "img/empty.jpg").write_bytes(b"")
    (tmp_path / "img/truncated.jpg").write_bytes(data[: len(data) // 2])
    corrupted = bytearray(data)
    for k in range(len(data) // 3, len(data) - 2, 97):
        corrupted[k] = (corrupted[k] + 77) % 256
    (tmp_path / "img/corrupted.jpg").write_bytes(bytes(corrupted))
    (tmp_path / "img/text.png").write_text("not an image")
    return {
        "img/empty.jpg": "empty_file",
        "img/truncated.jpg": "unreadable_image",
        "img/corrupted.jpg": "unreadable_image",
        "img/text.png": "unreadable_image",
    }


def test_broken_image_files_are_bad_records(tmp_path, images):
    broken = _broken_images(tmp_path)
    names = ["img/0.png", *broken, "img/good.jpg"]
    write_manifest(tmp_path / "m.jsonl", [{"image": n, "labels": ["a"]} for n in names])
    with pytest.raises(ValueError) as error:
        manifest(tmp_path / "m.jsonl")
    message = str(error.value)
    assert "4 bad record(s)" in message
    for line, reason in enumerate(broken.values(), start=2):
        assert f"line {line}: {reason}:" in message
    source = manifest(tmp_path / "m.jsonl", on_bad_record="skip")
    assert source.bad_records == {"empty_file": 1, "unreadable_image": 3}
    assert source.num_examples == 2 == len(_examples(source))


def test_error_lists_ten_and_counts_the_rest(tmp_path, images):
    lines = [json.dumps({"image": f"gone{i}.png", "labels": ["a"]}) for i in range(13)]
    _write_lines(tmp_path / "m.jsonl", [_OK, *lines])
    with pytest.raises(ValueError) as error:
        manifest(tmp_path / "m.jsonl")
    message = str(error.value)
    assert "13 bad record(s)" in message and "... and 3 more" in message
    assert "line 11: missing_file" in message and "line 12:" not in message
    assert "on_bad_record='skip'" in message


def test_skip_keeps_the_good_records_in_order(tmp_path, images):
    _write_lines(
        tmp_path / "m.jsonl",
        [
            json.dumps({"image": "img/2.png", "labels": ["b"]}),
            json.dumps({"image": "gone.png", "labels": ["a"]}),
            json.dumps({"image": "img/0.png", "labels": ["a", "b"]}),
            json.dumps({"image": "img/2.png", "labels": ["a"]}),
        ],
    )
    source = manifest(tmp_path / "m.jsonl", on_bad_record="skip")
    assert source.bad_records == {"duplicate": 1, "missing_file": 1}
    examples = _examples(source)
    np.testing.assert_array_equal(examples[0][0], images["img/2.png"])
    np.testing.assert_array_equal(examples[1][0], images["img/0.png"])
    np.testing.assert_array_equal([t for _, t in examples], [[0, 1], [1, 1]])


def test_label_indices(tmp_path, images):
    _write_lines(
        tmp_path / "m.jsonl",
        [
            json.dumps({"image": "img/0.png", "labels": [2, 0]}),
            json.dumps({"image": "img/1.png", "labels": []}),
        ],
    )
    source = manifest(tmp_path / "m.jsonl")
    assert source.class_names == ["class_0", "class_1", "class_2"]
    np.testing.assert_array_equal(
        [t for _, t in _examples(source)], [[1, 0, 1], [0] * 3]
    )
    named = manifest(tmp_path / "m.jsonl", class_names=["x", "y", "z", "w"])
    np.testing.assert_array_equal(_examples(named)[0][1], [1, 0, 1, 0])


def test_empty_manifest_is_an_error_even_when_skipping(tmp_path):
    _write_lines(tmp_path / "m.jsonl", [""])
    with pytest.raises(ValueError, match="no records"):
        manifest(tmp_path / "m.jsonl", on_bad_record="skip")


def test_progress_bar(tmp_path, images, capfd):
    write_manifest(tmp_path / "m.jsonl", [{"image": "img/0.png", "labels": ["a"]}])
    manifest(tmp_path / "m.jsonl", progress=False)
    assert "Checking" not in capfd.readouterr().err
    manifest(tmp_path / "m.jsonl", progress=True)
    assert "Checking m.jsonl" in capfd.readouterr().err


def test_source_keeps_undecoded_records(tmp_path, images):
    write_manifest(tmp_path / "m.jsonl", [{"image": "img/1.png", "labels": ["a"]}])
    source = manifest(tmp_path / "m.jsonl")
    path, target = next(iter(source.records))
    assert path.numpy().decode().endswith(os.path.join("img", "1.png"))
    image, decoded_target = source.decode_fn(path, target)
    np.testing.assert_array_equal(image.numpy(), images["img/1.png"])
    np.testing.assert_array_equal(decoded_target, [1])


def test_invalid_on_bad_record(tmp_path, images):
    write_manifest(tmp_path / "m.jsonl", [{"image": "img/0.png", "labels": ["a"]}])
    with pytest.raises(ValueError, match="Received: on_bad_record='ignore'"):
        manifest(tmp_path / "m.jsonl", on_bad_record="ignore")
