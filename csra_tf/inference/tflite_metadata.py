"""Reading the TFLite metadata of an exported classifier: labels and thresholds.

Every `.tflite` that `csra-export` writes carries TFLite metadata in the schema
MediaPipe Tasks reads (`mediapipe/tasks/metadata/metadata_schema.fbs`): a
`TFLITE_METADATA` buffer in the model, and the files it names (the label file,
the score-calibration file) zipped after the flatbuffer. The model's single
output is `logits`; one sigmoid per class turns them into scores,

    score = scale / (1 + exp(-(slope * g(x) + offset))),

with `g` the identity (`x` a logit) or the inverse logistic (`x` a
probability). With scale 1 and slope 1 a score reaches 0.5 exactly where the
probability reaches `sigmoid(-offset)`: that is the class's threshold, so
MediaPipe's `score_threshold=0.5` gives csra-predict's per-class decisions.
"""

from __future__ import annotations

import dataclasses
import io
import os
import zipfile

import numpy as np
from tensorflow.lite.python import schema_py_generated as _schema

from csra_tf.errors import UserError

METADATA_NAME = "TFLITE_METADATA"
"""Name of the model's metadata entry MediaPipe reads."""

METADATA_IDENTIFIER = b"M001"
"""Flatbuffer file identifier of the metadata buffer."""

LABELS_FILE = "labels.txt"
"""The label file packed in each `.tflite` (one class name a line)."""

CALIBRATION_FILE = "score_calibration.txt"
"""The score-calibration file (`scale,slope,offset` a line, one per class)."""

MAX_CALIBRATION_OFFSET = 100.0
"""|offset| bound: a threshold of exactly 0 or 1 becomes sigmoid(-/+100)."""


@dataclasses.dataclass(frozen=True)
class TFLiteMetadata:
    """What a `.tflite` file's metadata says about the classifier.

    Attributes:
        name: the model's name.
        description: what it does.
        version: its version string.
        author: who made it.
        license: the terms it is under.
        class_names: class names in output order (the label file).
        thresholds: float64 `(C,)` per-class probability thresholds from the
            score calibration, or None without one.
    """

    name: str | None
    description: str | None
    version: str | None
    author: str | None
    license: str | None
    class_names: list[str] | None
    thresholds: np.ndarray | None


def _metadata_schema():
    try:
        from mediapipe.tasks.metadata import metadata_schema_py_generated
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "TFLite metadata is read and written with MediaPipe's schema: "
            "`pip install mediapipe`."
        ) from error
    return metadata_schema_py_generated


def read_tflite_metadata(model: str | os.PathLike | bytes) -> TFLiteMetadata | None:
    """Reads the name, labels and thresholds a `.tflite` file carries.

    Args:
        model: a `.tflite` file path or flatbuffer bytes.

    Returns:
        The metadata, or None when the file has none.

    Raises:
        UserError: if the metadata or its files are malformed.

    Example:
    >>> path = "runs/quickstart/export/model_int8.tflite"  # needs a trained run
    >>> metadata = read_tflite_metadata(path)  # doctest: +SKIP
    >>> metadata.class_names[:2], metadata.thresholds[:2]  # doctest: +SKIP
    (['circle', 'square'], array([0.41, 0.37]))
    """
    content = model if isinstance(model, bytes) else _read_bytes(model)
    where = "<bytes>" if isinstance(model, bytes) else os.fspath(model)
    buffer = _metadata_buffer(content)
    if buffer is None:
        return None
    md = _metadata_schema()
    if not md.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0):
        raise UserError(f"The TFLite metadata is not readable. Received: path={where}")
    metadata = md.ModelMetadataT.InitFromObj(
        md.ModelMetadata.GetRootAsModelMetadata(buffer, 0)
    )
    class_names = thresholds = None
    outputs = (metadata.subgraphMetadata or [None])[0]
    outputs = outputs.outputTensorMetadata if outputs is not None else None
    if outputs:
        files = _packed_files(content)
        output = outputs[0]
        for associated in output.associatedFiles or []:
            kind = associated.type
            text = _packed_text(files, associated.name, where)
            if kind == md.AssociatedFileType.TENSOR_AXIS_LABELS and class_names is None:
                class_names = text.split("\n")
            elif kind == md.AssociatedFileType.TENSOR_AXIS_SCORE_CALIBRATION:
                thresholds = _thresholds(text, _transformation(output, md), where)
        if (
            class_names is not None
            and thresholds is not None
            and len(class_names) != len(thresholds)
        ):
            raise UserError(
                f"The TFLite metadata has {len(class_names)} labels but "
                f"{len(thresholds)} calibrations. Received: path={where}"
            )
    return TFLiteMetadata(
        name=_text(metadata.name),
        description=_text(metadata.description),
        version=_text(metadata.version),
        author=_text(metadata.author),
        license=_text(metadata.license),
        class_names=class_names,
        thresholds=thresholds,
    )


def threshold_offsets(thresholds) -> np.ndarray:
    """Calibration offsets `-logit(t)` that put each threshold at score 0.5.

    Args:
        thresholds: per-class probability thresholds `(C,)`.

    Returns:
        float64 offsets `(C,)`, bounded by `MAX_CALIBRATION_OFFSET`.

    Example:
    >>> threshold_offsets([0.2, 0.75]).round(4)
    array([ 1.3863, -1.0986])
    """
    t = np.asarray(thresholds, np.float64)
    with np.errstate(divide="ignore"):
        offsets = np.log1p(-t) - np.log(t)
    return np.clip(offsets, -MAX_CALIBRATION_OFFSET, MAX_CALIBRATION_OFFSET)


def _read_bytes(path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as error:
        raise UserError(
            f"Cannot read the TFLite file. Received: path={path}"
        ) from error


def _metadata_buffer(content: bytes) -> bytes | None:
    model = _schema.Model.GetRootAsModel(content, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == METADATA_NAME.encode():
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return bytes(data) if isinstance(data, np.ndarray) else None
    return None


def _packed_files(content: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:
        return {}


def _packed_text(files: dict[str, bytes], name, where: str) -> str:
    name = _text(name)
    if name not in files:
        raise UserError(
            f"The TFLite metadata names a file '{name}' the model does not pack. "
            f"Received: path={where}"
        )
    return files[name].decode("utf-8")


def _transformation(output, md) -> int:
    for unit in output.processUnits or []:
        if unit.optionsType == md.ProcessUnitOptions.ScoreCalibrationOptions:
            return unit.options.scoreTransformation
    return md.ScoreTransformationType.IDENTITY


def _thresholds(text: str, transformation: int, where: str) -> np.ndarray:
    """Per-class probability thresholds of sigmoid calibrations with scale 1."""
    md = _metadata_schema()
    supported = (
        md.ScoreTransformationType.IDENTITY,
        md.ScoreTransformationType.INVERSE_LOGISTIC,
    )
    thresholds = []
    for line in text.split("\n"):
        values = line.split(",")
        try:
            scale, slope, offset = (float(v) for v in values[:3])
        except ValueError:
            scale = slope = offset = float("nan")
        if (
            transformation not in supported
            or len(values) not in (3, 4)
            or scale != 1.0
            or not slope > 0
            or not np.isfinite(offset)
        ):
            raise UserError(
                "Only sigmoid score calibrations of logits or probabilities with "
                "scale 1 and a positive slope give per-class thresholds. "
                f"Received: line={line!r}, path={where}"
            )
        thresholds.append(1.0 / (1.0 + np.exp(offset / slope)))
    return np.asarray(thresholds, np.float64)


def _text(value) -> str | None:
    return value.decode("utf-8") if isinstance(value, bytes) else value
