"""Prediction: image formats, path arguments, three backends, overlays, CLI."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from csra_tf import data
from csra_tf.inference import (
    Predictor,
    expand_image_paths,
    predict_files,
    read_image,
    write_predictions,
)
from tests.exported_model import CLASS_NAMES, IMAGE_SIZE, smooth_images

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory):
    """Images in several formats and sizes, plus one corrupt file."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(5)
    rgb = smooth_images(rng, 4, 50, 70)
    Image.fromarray(rgb[0]).save(folder / "a_rgb.jpg", quality=95)
    Image.fromarray(rgb[1][..., 0]).save(folder / "b_gray.png")
    rgba = np.dstack([rgb[2], np.full((50, 70), 128, np.uint8)])
    rgba[:10, :, 3] = 0  # fully transparent band
    Image.fromarray(rgba, "RGBA").save(folder / "c_rgba.png")
    frames = [
        Image.fromarray(rgb[3]).convert("P"),
        Image.fromarray(rgb[0]).convert("P"),
    ]
    frames[0].save(folder / "d_anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(rgb[3]).save(folder / "e.bmp")
    big = smooth_images(rng, 1, 1200, 1800)[0]
    Image.fromarray(big).save(folder / "f_large.jpg", quality=90)
    (folder / "g_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (folder / "notes.txt").write_text("not an image, not listed for the folder")
    return folder


def test_read_image_handles_formats(images_dir):
    for name, shape in [
        ("a_rgb.jpg", (50, 70, 3)),
        ("b_gray.png", (50, 70, 3)),
        ("c_rgba.png", (50, 70, 3)),
        ("d_anim.gif", (50, 70, 3)),
        ("e.bmp", (50, 70, 3)),
        ("f_large.jpg", (1200, 1800, 3)),
    ]:
        image = read_image(images_dir / name)
        assert image.shape == shape and image.dtype == np.uint8, name
    gray = read_image(images_dir / "b_gray.png")
    assert (gray[..., 0] == gray[..., 2]).all()
    rgba = read_image(images_dir / "c_rgba.png")
    assert (rgba[:10] == 255).all()  # transparency composited on white
    sixteen = io.BytesIO()
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(sixteen, format="PNG")
    assert (read_image(sixteen) == 255).all()
    with pytest.raises(ValueError, match="cannot read the image"):
        read_image(images_dir / "g_corrupt.jpg")


def test_preprocess_matches_the_eval_pipeline(images_dir, classes_dir, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        json.dumps({"image": str(images_dir / "b_gray.png"), "labels": ["cat"]}) + "\n"
    )
    source = data.manifest(manifest, class_names=CLASS_NAMES)
    ((batch, _),) = data.build_dataset(source.dataset, IMAGE_SIZE, 1, training=False)
    predictor = Predictor(classes_dir / "model.keras")
    np.testing.assert_array_equal(
        predictor.preprocess(read_image(images_dir / "b_gray.png")), batch[0].numpy()
    )


def test_expand_image_paths(images_dir):
    expanded = dict(expand_image_paths([str(images_dir)]))
    assert len(expanded) == 7 and not any(expanded.values())
    assert str(images_dir / "notes.txt") not in expanded
    matches = expand_image_paths([str(images_dir / "*.png")])
    assert [os.path.basename(p) for p, _ in matches] == ["b_gray.png", "c_rgba.png"]
    assert expand_image_paths([str(images_dir / "notes.txt")]) == [
        (str(images_dir / "notes.txt"), None)
    ]
    ((_, error),) = expand_image_paths([str(images_dir / "missing.jpg")])
    assert error == "no such file or folder"
    ((_, error),) = expand_image_paths([str(images_dir / "*.webp")])
    assert error == "no file matches this pattern"


def test_three_backends_agree(images_dir, classes_dir, exported):
    export_dir, _ = exported
    paths = expand_image_paths([str(images_dir)])
    results = {}
    for path in (
        classes_dir / "model.keras",
        export_dir / "saved_model",
        export_dir / "model_float32.tflite",
    ):
        predictor = Predictor(path)
        assert predictor.class_names == CLASS_NAMES  # found classes.json
        records = list(predict_files(predictor, paths, batch_size=3))
        assert [os.path.basename(r["image"]) for r in records] == sorted(
            os.listdir(images_dir)
        )[:7]
        errors = [r for r in records if "error" in r]
        assert [os.path.basename(r["image"]) for r in errors] == ["g_corrupt.jpg"]
        results[predictor.backend] = np.array(
            [list(r["probabilities"].values()) for r in records if "error" not in r]
        )
    assert set(results) == {"keras", "saved_model", "tflite"}
    np.testing.assert_allclose(results["saved_model"], results["keras"], atol=1e-5)
    np.testing.assert_allclose(results["tflite"], results["keras"], atol=1e-4)


def test_records_apply_per_class_thresholds(images_dir, exported):
    export_dir, _ = exported
    predictor = Predictor(export_dir / "model_int8.tflite")
    paths = [(str(images_dir / "a_rgb.jpg"), None)]
    (record,) = predict_files(predictor, paths, thresholds=[0.0, 1.1, 0.0, 1.1])
    assert [p["label"] for p in record["predicted"]] == sorted(
        ["cat", "car"], key=lambda name: -record["probabilities"][name]
    )
    with pytest.raises(ValueError, match="one number or one per class"):
        predict_files(predictor, paths, thresholds=[0.5, 0.5])


def test_attention_overlays(images_dir, exported, classes_dir, tmp_path):
    export_dir, _ = exported
    paths = [
        (str(images_dir / "a_rgb.jpg"), None),
        (str(images_dir / "e.bmp"), None),
        (str(images_dir / "a_rgb.jpg"), None),
    ]
    for backend_path in (classes_dir / "model.keras", export_dir / "saved_model"):
        out = tmp_path / os.path.basename(backend_path)
        predictor = Predictor(backend_path)
        records = list(
            predict_files(predictor, paths, thresholds=0.0, attention_dir=out)
        )
        for record in records:
            assert len(record["attention"]) == len(CLASS_NAMES)
        assert os.path.basename(records[2]["attention"][0]).startswith("a_rgb_1_")
        assert len(os.listdir(out)) == 3 * len(CLASS_NAMES)
        overlay = Image.open(records[0]["attention"][0])
        # The 70 x 50 image, enlarged 4x to reach 256 px.
        assert overlay.format == "PNG" and overlay.size == (280, 200)
    with pytest.raises(ValueError, match="Attention maps need a CSRA model"):
        predict_files(
            Predictor(export_dir / "model_float32.tflite"), paths, attention_dir=out
        )


def test_write_predictions_formats(images_dir, exported):
    export_dir, _ = exported
    predictor = Predictor(export_dir / "model_float32.tflite")
    paths = expand_image_paths(
        [str(images_dir / "a_rgb.jpg"), str(images_dir / "g_corrupt.jpg")]
    )
    out, err = io.StringIO(), io.StringIO()
    assert write_predictions(predict_files(predictor, paths), out, "jsonl", err) == 1
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert set(first) == {"image", "predicted", "probabilities"}
    assert list(first["probabilities"]) == CLASS_NAMES
    assert "cannot read the image" in second["error"]
    assert err.getvalue().startswith(f"error: {paths[1][0]}: cannot read")
    table = io.StringIO()
    write_predictions(predict_files(predictor, paths), table, "table")
    lines = table.getvalue().splitlines()
    assert lines[0].split() == ["image", "predicted"] and "ERROR:" in lines[2]


@pytest.mark.slow
def test_csra_predict_cli(images_dir, exported, tmp_path):
    export_dir, _ = exported
    thresholds = tmp_path / "thresholds.json"
    thresholds.write_text(json.dumps(dict.fromkeys(CLASS_NAMES, 0.0)))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "csra_tf.cli.csra_predict",
            f"--model={export_dir / 'saved_model'}",
            f"--thresholds={thresholds}",
            f"--attention_dir={tmp_path / 'attention'}",
            str(images_dir),
            str(images_dir / "missing.png"),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 8
    assert sum("error" in r for r in records) == 2
    ok = [r for r in records if "error" not in r]
    assert all(len(r["predicted"]) == len(CLASS_NAMES) for r in ok)
    assert len(os.listdir(tmp_path / "attention")) == 6 * len(CLASS_NAMES)
    assert "2 file(s) could not be read" in result.stderr
