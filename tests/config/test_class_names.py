"""Tests for class-name files (classes.json)."""

import json

import pytest

from csra_tf.config import load_class_names, save_class_names


def test_class_names_round_trip(tmp_path):
    save_class_names(tmp_path / "classes.json", ["cat", "traffic light"])
    assert json.loads((tmp_path / "classes.json").read_text()) == [
        "cat",
        "traffic light",
    ]
    assert load_class_names(tmp_path / "classes.json") == ["cat", "traffic light"]
    assert [p.name for p in tmp_path.iterdir()] == ["classes.json"]


@pytest.mark.parametrize("names", [[], ["a", "a"], ["a", ""], "ab", [1]])
def test_class_names_are_validated(tmp_path, names):
    with pytest.raises(ValueError, match="Received: class_names="):
        save_class_names(tmp_path / "c.json", names)
    (tmp_path / "c.json").write_text(json.dumps(names))
    with pytest.raises(ValueError, match="Received: the content of"):
        load_class_names(tmp_path / "c.json")
