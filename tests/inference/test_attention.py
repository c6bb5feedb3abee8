"""Attention maps, the pointing game on a hand-made model, overlays on a run."""

import json
import os

import keras
import numpy as np
import pytest

from csra_tf import run_folder
from csra_tf.config import TrainConfig
from csra_tf.inference.attention import (
    attention_maps,
    pointing_game,
    pointing_game_report,
)
from csra_tf.metrics.pointing_game import peak_points
from csra_tf.models import build_classifier
from csra_tf.studies import attention_report
from tests.programs import run_program

CLASSES = ["red", "green", "blue"]


def colour_model(head="csra"):
    """32 px images -> 4x4 map of mean RGB per 8x8 cell; class c reads channel c."""
    pixels = keras.Input((32, 32, 3))
    features = keras.layers.AveragePooling2D(8)(pixels)
    backbone = keras.Model(pixels, features, name="cell_colours")
    model = build_classifier(backbone, num_classes=3, head=head, image_size=32)
    model.head.set_weights([np.eye(3, dtype="float32")])
    return model


def image_with(cells):
    """A black image with a saturated colour filling the given (row, col) cells."""
    image = np.zeros((32, 32, 3), np.uint8)
    for (row, col), channel in cells.items():
        image[8 * row : 8 * row + 8, 8 * col : 8 * col + 8, channel] = 255
    return image


def box_around(row, col, label):
    return {"label": label, "box": [col / 4, row / 4, (col + 1) / 4, (row + 1) / 4]}


@pytest.mark.parametrize("head", ["csra", "attention"])
def test_attention_peaks_at_the_coloured_cell(head):
    model = colour_model(head)
    image = image_with({(1, 2): 0, (3, 0): 1})
    maps = attention_maps(model, image[None])
    assert maps.shape == (1, 4, 4, 3)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    assert np.unravel_index(maps[0, ..., 0].argmax(), (4, 4)) == (1, 2)
    assert np.unravel_index(maps[0, ..., 1].argmax(), (4, 4)) == (3, 0)
    np.testing.assert_allclose(peak_points(maps)[0, 0], [0.625, 0.375])
    np.testing.assert_allclose(peak_points(maps)[0, 1], [0.125, 0.875])


def test_pointing_game_hit_and_miss():
    model = colour_model()
    images = [
        image_with({(1, 2): 0, (3, 0): 1}),
        # A differently sized image: resized to 32 px, the cells keep their place.
        np.repeat(np.repeat(image_with({(0, 3): 2}), 2, axis=0), 2, axis=1),
    ]
    boxes = [
        [
            box_around(1, 2, "red"),  # hit: the red peak is in this cell
            box_around(0, 0, "green"),  # miss: the green peak is at (3, 0)
            box_around(2, 2, "green"),
        ],
        [box_around(0, 3, "blue")],  # hit
    ]
    report = pointing_game_report(model, images, boxes, CLASSES)
    assert (report["hits"], report["pairs"]) == (2, 3)
    assert report["per_class"]["green"] == {"score": 0.0, "hits": 0, "pairs": 1}
    assert report["per_class"]["blue"]["score"] == 1.0
    assert pointing_game(model, images, boxes, CLASSES) == pytest.approx(2 / 3)
    # A box of the right class anywhere covering the peak counts; borders included.
    wide = [[{"label": "green", "box": [0.0, 0.75, 0.125, 1.0]}], []]
    assert pointing_game(model, images, wide, CLASSES) == 1.0


def test_pointing_game_tolerance_strict_score_and_chance():
    model = colour_model()
    images = [image_with({(1, 2): 0})]  # red peak: cell (1, 2), centre (0.625, 0.375)
    # A 5 % object inside the peak cell that misses the cell centre.
    small = [[{"label": "red", "box": [0.51, 0.26, 0.55, 0.30]}]]
    report = pointing_game_report(model, images, small, CLASSES)
    assert report["score"] == 1.0  # within half a cell (the default)
    assert report["score_strict"] == 0.0  # the centre itself is outside
    # Only the peak cell's centre is within half a cell of the box: 1 of 16.
    assert report["chance"] == pytest.approx(1 / 16)
    assert pointing_game(model, images, small, CLASSES, tolerance=0.0) == 0.0
    # In the next cell but more than half a cell from the peak: a miss.
    beside = [[{"label": "red", "box": [0.80, 0.30, 0.85, 0.35]}]]
    assert pointing_game(model, images, beside, CLASSES) == 0.0
    assert pointing_game(model, images, beside, CLASSES, tolerance=0.2) == 1.0
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(model, images, small, CLASSES, tolerance=-0.1)


def test_bad_inputs():
    model = colour_model()
    image = image_with({(0, 0): 0})[None]
    with pytest.raises(ValueError, match="unknown class"):
        pointing_game(model, image, [[box_around(0, 0, "cat")]], CLASSES)
    with pytest.raises(ValueError, match="one box list per image"):
        pointing_game(model, image, [], CLASSES)
    with pytest.raises(ValueError, match="GAP head"):
        attention_maps(build_classifier("tiny", 3, head="gap", image_size=32), image)


def make_run(workdir):
    """A run folder with an untrained tiny model on a small shapes split."""
    config = TrainConfig(
        workdir=str(workdir),
        num_train=8,
        num_val=12,
        shapes_image_size=32,
        image_size=32,
    )
    os.makedirs(workdir, exist_ok=True)
    run_folder.write_config(config)
    model = build_classifier("tiny", num_classes=10, image_size=32)
    model.save(os.path.join(workdir, "model.keras"))


def test_attention_report_writes_overlays_and_score(tmp_path):
    make_run(tmp_path)
    report = attention_report(str(tmp_path), num_images=3, batch_size=5)
    assert report["num_images"] == 12
    assert 0.0 <= report["score_strict"] <= report["score"] <= 1.0
    assert 0.0 < report["chance"] < 1.0
    assert report["pairs"] >= 12  # every shapes image holds at least one object
    assert report["overlays"]
    for path in report["overlays"]:
        assert os.path.dirname(path) == str(tmp_path / "attention")
        assert path.endswith(".png") and os.path.getsize(path) > 0
    assert {os.path.basename(p)[:4] for p in report["overlays"]} == {
        "0000",
        "0001",
        "0002",
    }
    saved = json.loads((tmp_path / "pointing_game.json").read_text())
    assert saved["score"] == report["score"] and saved["pairs"] == report["pairs"]


@pytest.mark.slow
def test_attention_maps_main(tmp_path):
    make_run(tmp_path)
    result = run_program(
        "experiments/attention_maps.py", f"--workdir={tmp_path}", "--num_images=2"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Pointing game:" in result.stdout
    assert (tmp_path / "pointing_game.json").exists()
    assert os.listdir(tmp_path / "attention")
