"""Tests for bad-record handling and image-file checks."""

import numpy as np
import pytest
from PIL import Image

from csra_tf.data import BAD_RECORD_REASONS, BadRecord
from csra_tf.data.image_files import check_image_files
from csra_tf.data.records import resolve_bad_records


def test_bad_record_text_and_reason_check():
    assert str(BadRecord(3, "missing_file", "x.jpg")) == "line 3: missing_file: x.jpg"
    located = BadRecord(1, "bad_box", "empty", location="images[0].targets[2]")
    assert str(located) == "images[0].targets[2]: bad_box: empty"
    with pytest.raises(ValueError, match="Received: reason='oops'"):
        BadRecord(1, "oops", "")


def test_resolve_error_skip_and_nothing_left():
    bad = [BadRecord(5, "duplicate", "d"), BadRecord(2, "missing_file", "m")]
    assert resolve_bad_records("f.jsonl", [], 3, "error") == {}
    with pytest.raises(
        ValueError, match=r"'f.jsonl' \(2 bad[\s\S]*line 2[\s\S]*line 5"
    ):
        resolve_bad_records("f.jsonl", bad, 3, "error")
    counts = resolve_bad_records("f.jsonl", bad + bad[:1], 3, "skip")
    assert counts == {"duplicate": 2, "missing_file": 1}
    assert list(counts) == [r for r in BAD_RECORD_REASONS if r in counts]
    with pytest.raises(ValueError, match="No usable record"):
        resolve_bad_records("f.jsonl", bad, 0, "skip")
    with pytest.raises(ValueError, match="Received: on_bad_record='drop'"):
        resolve_bad_records("f.jsonl", bad, 3, "drop")


def test_check_image_files_sizes_and_problems(tmp_path):
    good = tmp_path / "good.jpg"
    Image.fromarray(np.full((30, 50, 3), 90, np.uint8)).save(good)
    data = good.read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.jpg").mkdir()
    paths = [
        str(tmp_path / name)
        for name in ["good.jpg", "truncated.jpg", "empty.png", "none.jpg", "folder.jpg"]
    ]
    sizes, problems = check_image_files(paths, progress=False)
    assert sizes == [(30, 50), None, None, None, None]
    assert {i: reason for i, (reason, _) in problems.items()} == {
        1: "unreadable_image",
        2: "empty_file",
        3: "missing_file",
        4: "missing_file",
    }
    assert "truncated.jpg" in problems[1][1] and "{{" not in problems[1][1]


def test_pil_verify_misses_a_truncated_jpeg(tmp_path):
    """Why the check decodes: PIL's `verify()` accepts a truncated JPEG."""
    path = tmp_path / "a.jpg"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    Image.open(path).verify()  # no error
    _, problems = check_image_files([str(path)], progress=False)
    assert problems[0][0] == "unreadable_image"
