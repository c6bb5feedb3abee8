"""MediaPipe Tasks' ImageClassifier runs every exported `.tflite` as it is.

The client is MediaPipe's own (`mediapipe.tasks.python.vision.ImageClassifier`,
the engine behind its Android, iOS and web APIs); the reference is
csra-predict on the same file with no side files.
"""

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import mediapipe as mp
import numpy as np
import pytest
from mediapipe.tasks.metadata import metadata_schema_py_generated as md
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.vision import ImageClassifier, ImageClassifierOptions
from PIL import Image
from tensorflow.lite.python import schema_py_generated as tflite_schema

from csra_tf.export import add_metadata
from csra_tf.export.tflite import VARIANTS
from csra_tf.inference import (
    Predictor,
    TFLiteModel,
    expand_image_paths,
    predict_files,
    read_image,
    read_tflite_metadata,
)
from tests.exported_model import CLASS_NAMES, labelled_images

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
NUM_IMAGES = 24
# Most images a full-integer variant may label differently: its logits come in
# quantisation steps, and MediaPipe's runtime may round one step differently.
INT8_DISAGREEMENTS = NUM_IMAGES // 8


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """PNG files of images none of the fixture's data sets holds."""
    folder = tmp_path_factory.mktemp("held_out")
    images, _ = labelled_images(np.random.default_rng(21), NUM_IMAGES)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def thresholds(exported, held_out):
    """Per-class thresholds that split the held-out images (between two of the
    float32 model's probabilities, never on one)."""
    export_dir, _ = exported
    predictor = Predictor(export_dir / "model_float32.tflite")
    records = predict_files(predictor, expand_image_paths([str(held_out)]))
    probs = np.array([list(r["probabilities"].values()) for r in records])
    ranked = np.sort(probs, axis=0)
    rows = [NUM_IMAGES // 4, NUM_IMAGES // 2, NUM_IMAGES // 2, 3 * NUM_IMAGES // 4]
    return np.array([(ranked[r - 1, c] + ranked[r, c]) / 2 for c, r in enumerate(rows)])


def bare_copy(content, folder, name):
    """The model alone in a folder (no classes.json or thresholds.json)."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def mediapipe_labels(path, image_dir):
    """MediaPipe's categories at score_threshold=0.5, per image file."""
    options = ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(path)),
        score_threshold=0.5,
        max_results=-1,
    )
    results = {}
    with ImageClassifier.create_from_options(options) as classifier:
        for name in sorted(os.listdir(image_dir)):
            image = mp.Image.create_from_file(str(image_dir / name))
            (head,) = classifier.classify(image).classifications
            results[name] = head.categories
    return results


def predict_labels(path, image_dir):
    """csra-predict's labels (thresholds from the file alone) and the logits."""
    predictor = Predictor(path)
    paths = expand_image_paths([str(image_dir)])
    records = predict_files(predictor, paths, thresholds=predictor.thresholds)
    images = np.stack([predictor.preprocess(read_image(p)) for p, _ in paths])
    logits = TFLiteModel(path)(images)["logits"].astype(np.float64)
    return predictor, {
        os.path.basename(r["image"]): ({p["label"] for p in r["predicted"]}, row)
        for r, row in zip(records, logits, strict=True)
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_mediapipe_gives_csra_predict_labels(
    exported, held_out, thresholds, tmp_path, variant
):
    export_dir, _ = exported
    written = (export_dir / f"model_{variant}.tflite").read_bytes()
    calibrated = add_metadata(written, CLASS_NAMES, thresholds, variant)
    for content, expected_thresholds in ((written, 0.5), (calibrated, thresholds)):
        path = bare_copy(content, tmp_path / "bare", f"{variant}.tflite")
        predictor, predicted = predict_labels(path, held_out)
        assert predictor.class_names == CLASS_NAMES  # from the metadata
        np.testing.assert_allclose(
            predictor.thresholds, np.broadcast_to(expected_thresholds, (4,))
        )
        categories = mediapipe_labels(path, held_out)
        assert set(categories) == set(predicted)
        disagreements = 0
        for name, (labels, logits) in predicted.items():
            for category in categories[name]:
                assert category.category_name == CLASS_NAMES[category.index]
            disagreements += {c.category_name for c in categories[name]} != labels
            # MediaPipe's score: sigmoid(logit - logit(threshold)).
            t = np.broadcast_to(expected_thresholds, logits.shape)
            expected = 1 / (1 + np.exp(-(logits - np.log(t) + np.log1p(-t))))
            for category in categories[name]:
                assert category.score == pytest.approx(
                    expected[category.index], abs=1e-5 if variant != "int8" else 0.05
                )
        allowed = INT8_DISAGREEMENTS if variant == "int8" else 0
        assert disagreements <= allowed, (variant, disagreements)
    # The thresholds split the images: the label sets vary.
    assert len({frozenset(labels) for labels, _ in predicted.values()}) > 2


def test_metadata_fields_as_mediapipe_schema_reads_them(exported):
    export_dir, _ = exported
    content = (export_dir / "model_int8.tflite").read_bytes()
    model = tflite_schema.Model.GetRootAsModel(content, 0)
    names = [model.Metadata(i).Name() for i in range(model.MetadataLength())]
    entry = model.Metadata(names.index(b"TFLITE_METADATA"))
    buffer = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    metadata = md.ModelMetadataT.InitFromObj(
        md.ModelMetadata.GetRootAsModelMetadata(buffer, 0)
    )
    assert metadata.name and metadata.description and metadata.author
    assert metadata.license and b"int8" in metadata.version
    (subgraph,) = metadata.subgraphMetadata
    (image,) = subgraph.inputTensorMetadata
    (normalization,) = image.processUnits
    assert normalization.options.mean == [0.0] and normalization.options.std == [1.0]
    assert image.content.contentProperties.colorSpace == md.ColorSpaceType.RGB
    (scores,) = subgraph.outputTensorMetadata
    files = {f.type: f.name.decode() for f in scores.associatedFiles}
    labels = files[md.AssociatedFileType.TENSOR_AXIS_LABELS]
    calibration = files[md.AssociatedFileType.TENSOR_AXIS_SCORE_CALIBRATION]
    (unit,) = scores.processUnits
    assert unit.options.scoreTransformation == md.ScoreTransformationType.IDENTITY
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.read(labels).decode() == "\n".join(CLASS_NAMES)
        lines = archive.read(calibration).decode().split("\n")
    # One line per class and no final newline (it would read as a fifth class).
    assert lines == ["1.0,1.0,0.0"] * len(CLASS_NAMES)


def test_add_metadata_checks_its_arguments(exported):
    export_dir, _ = exported
    content = (export_dir / "model_float32.tflite").read_bytes()
    with pytest.raises(ValueError, match="Received: class_names="):
        add_metadata(content, CLASS_NAMES[:3])
    with pytest.raises(ValueError, match="Received: class_names="):
        add_metadata(content, ["cat", "dog\nwolf", "car", "tree"])
    with pytest.raises(ValueError, match=r"thresholds=\[0.5, 0.5, 0.5, 1.5\]"):
        add_metadata(content, CLASS_NAMES, [0.5, 0.5, 0.5, 1.5])
    # Replacing the metadata keeps one entry and the newest files.
    again = add_metadata(add_metadata(content, CLASS_NAMES), list("abcd"), [0.0] * 4)
    metadata = read_tflite_metadata(again)
    assert metadata.class_names == list("abcd")
    np.testing.assert_allclose(metadata.thresholds, 0.0, atol=1e-40)
    model = tflite_schema.Model.GetRootAsModel(again, 0)
    names = [model.Metadata(i).Name() for i in range(model.MetadataLength())]
    assert names.count(b"TFLITE_METADATA") == 1


@pytest.mark.slow
def test_csra_predict_reads_a_bare_tflite(exported, held_out, thresholds, tmp_path):
    """The console script, given the int8 file alone, names MediaPipe's labels."""
    export_dir, _ = exported
    content = add_metadata(
        (export_dir / "model_int8.tflite").read_bytes(), CLASS_NAMES, thresholds
    )
    path = bare_copy(content, tmp_path / "bare", "model.tflite")
    shutil.copytree(held_out, tmp_path / "images")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "csra_tf.cli.csra_predict",
            f"--model={path}",
            str(tmp_path / "images"),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""  # its own output only: no LiteRT or TF notices
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == NUM_IMAGES
    assert list(records[0]["probabilities"]) == CLASS_NAMES
    categories = mediapipe_labels(path, tmp_path / "images")
    disagreements = sum(
        {p["label"] for p in r["predicted"]}
        != {c.category_name for c in categories[os.path.basename(r["image"])]}
        for r in records
    )
    assert disagreements <= INT8_DISAGREEMENTS
    # Per-class thresholds, not 0.5: some label differs from a 0.5 cut.
    at_half = [{n for n, p in r["probabilities"].items() if p >= 0.5} for r in records]
    assert at_half != [{p["label"] for p in r["predicted"]} for r in records]
