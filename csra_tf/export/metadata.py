"""Writing TFLite metadata that MediaPipe Tasks' `ImageClassifier` reads as is.

The tables are built with MediaPipe's metadata writers (`metadata_info`:
`GeneralMd`, `InputImageTensorMd`, `ClassificationTensorMd`, `LabelFileMd`,
`ScoreCalibrationMd`) and packed as MediaPipe's populator does: the metadata
flatbuffer becomes the model's `TFLITE_METADATA` buffer (TensorFlow's own
flatbuffer tools rewrite the model) and the label and calibration files are
zipped after it. Why not the writers' `MetadataWriter.populate`: see
docs/design_notes.md, "TFLite metadata for MediaPipe".

What the metadata says: the input is RGB pixels, normalised with mean 0 and
std 1 (the model rescales inside; float variants take float pixels in
[0, 255], the full-integer one uint8 pixels); the output `logits` has the
classes.json labels and one sigmoid calibration per class,
`1 / (1 + exp(-(logit + offset)))` with `offset = -logit(threshold)`, so the
scores MediaPipe reports are probabilities shifted so that 0.5 is each class's
threshold (without thresholds, offset 0: the scores are the probabilities).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import zipfile
from collections.abc import Sequence
from io import BytesIO

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as _schema
from tensorflow.lite.tools import flatbuffer_utils

from csra_tf import __version__
from csra_tf.errors import UserError
from csra_tf.inference.tflite_metadata import (
    CALIBRATION_FILE,
    LABELS_FILE,
    METADATA_IDENTIFIER,
    METADATA_NAME,
    threshold_offsets,
)

MIN_PARSER_VERSION = "1.0.0"
"""The metadata parser version the tables need (none is newer than 1.0.0)."""

NORMALIZATION = (0.0, 1.0)
"""Input (mean, std): the model takes pixels in [0, 255] as they are."""

DEFAULT_AUTHOR = "csra-tf"
DEFAULT_LICENSE = (
    "Not declared: the terms of the training data and of the pretrained weights apply."
)


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """The general fields of a model's metadata.

    Attributes:
        name: the model's name.
        description: what it does; a sentence on the scores is appended.
        author: who made it.
        license: the terms it is under.
    """

    name: str = "CSRA multi-label image classifier"
    description: str = (
        "Multi-label image classifier with class-specific residual attention "
        "(CSRA, Zhu & Wu, ICCV 2021)."
    )
    author: str = DEFAULT_AUTHOR
    license: str = DEFAULT_LICENSE


def _writers():
    try:
        from mediapipe.tasks.metadata import metadata_schema_py_generated
        from mediapipe.tasks.python.metadata.metadata_writers import (
            metadata_info,
            writer_utils,
        )
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "Exports carry TFLite metadata written with MediaPipe's metadata "
            "writers: `pip install mediapipe`."
        ) from error
    return metadata_schema_py_generated, metadata_info, writer_utils


def add_metadata(
    model_content: bytes,
    class_names: Sequence[str],
    thresholds: Sequence[float] | np.ndarray | None = None,
    variant: str | None = None,
    info: ModelInfo = ModelInfo(),
) -> bytes:
    """Returns a classifier's `.tflite` with MediaPipe-ready metadata.

    Args:
        model_content: a `.tflite` flatbuffer with one image input `(1|B, S,
            S, 3)` and one output, the logits `(B, C)`; metadata it already
            has is replaced.
        class_names: the `C` class names, in output order.
        thresholds: per-class probability thresholds `(C,)`; default 0.5 for
            every class (the scores are then the probabilities).
        variant: the TFLite variant, named in the version field.
        info: the general fields.

    Returns:
        The flatbuffer with the metadata, the label file and the calibration
        file packed.

    Raises:
        UserError: if the class names or thresholds do not fit the model.

    Example:
    >>> from csra_tf.export import convert_saved_model
    >>> saved_model = "runs/quickstart/export/saved_model"  # needs a trained run
    >>> content = convert_saved_model(saved_model, "float32")  # doctest: +SKIP
    >>> content = add_metadata(content, ["cat", "dog"], [0.4, 0.6])  # doctest: +SKIP
    """
    md, metadata_info, writer_utils = _writers()
    model_buffer = bytearray(model_content)
    num_classes = _check_model(model_buffer, writer_utils)
    names = [str(name) for name in class_names]
    if len(names) != num_classes or any(
        not name or "\n" in name or name != name.strip() for name in names
    ):
        raise UserError(
            f"The model has {num_classes} outputs: give as many class names, each "
            f"a non-empty line. Received: class_names={names}"
        )
    thresholds = check_thresholds(
        np.full(num_classes, 0.5) if thresholds is None else thresholds, num_classes
    )
    calibration = "\n".join(
        f"1.0,1.0,{offset!r}" for offset in threshold_offsets(thresholds).tolist()
    )
    files = {LABELS_FILE: "\n".join(names), CALIBRATION_FILE: calibration}
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for name, text in files.items():
            paths[name] = os.path.join(folder, name)
            with open(paths[name], "w", encoding="utf-8", newline="\n") as f:
                f.write(text)  # no final newline: it would read as one more class
        general = metadata_info.GeneralMd(
            name=info.name,
            version=f"csra-tf {__version__}" + (f", {variant}" if variant else ""),
            description=f"{info.description} {_SCORES}",
            author=info.author,
            licenses=info.license,
        )
        image = metadata_info.InputImageTensorMd(
            name="image",
            description="RGB image, pixels in [0, 255].",
            norm_mean=[NORMALIZATION[0]],
            norm_std=[NORMALIZATION[1]],
            color_space_type=md.ColorSpaceType.RGB,
            tensor_type=writer_utils.get_input_tensor_types(model_buffer)[0],
        )
        scores = metadata_info.ClassificationTensorMd(
            name="logits",
            description=_SCORES,
            label_files=[metadata_info.LabelFileMd(paths[LABELS_FILE])],
            tensor_type=writer_utils.get_output_tensor_types(model_buffer)[0],
            score_calibration_md=metadata_info.ScoreCalibrationMd(
                md.ScoreTransformationType.IDENTITY,
                default_score=0.0,
                file_path=paths[CALIBRATION_FILE],
            ),
        )
        subgraph = md.SubGraphMetadataT()
        subgraph.inputTensorMetadata = [image.create_metadata()]
        subgraph.outputTensorMetadata = [scores.create_metadata()]
    metadata = general.create_metadata()
    metadata.subgraphMetadata = [subgraph]
    metadata.minParserVersion = MIN_PARSER_VERSION
    builder = flatbuffers.Builder(0)
    builder.Finish(metadata.Pack(builder), METADATA_IDENTIFIER)
    return _populate(model_buffer, bytes(builder.Output()), files)


def check_thresholds(thresholds, num_classes: int) -> np.ndarray:
    """Checks per-class probability thresholds.

    Args:
        thresholds: `(C,)` numbers in [0, 1].
        num_classes: `C`.

    Returns:
        The thresholds as float64 `(C,)`.

    Raises:
        UserError: naming the thresholds, if they do not fit.
    """
    values = np.asarray(thresholds, np.float64)
    if values.shape != (num_classes,) or not np.all((values >= 0) & (values <= 1)):
        raise UserError(
            f"`thresholds` must be {num_classes} numbers in [0, 1]. Received: "
            f"thresholds={np.asarray(thresholds).tolist()}"
        )
    return values


_SCORES = (
    "Scores: one sigmoid per class of the logits, calibrated so that 0.5 is "
    "the class's decision threshold (the threshold chosen on validation data "
    "when the export had one, else probability 0.5)."
)


def _check_model(model_buffer: bytearray, writer_utils) -> int:
    """The number of classes of a one-input, one-output `(B, C)` model."""
    subgraph = writer_utils.get_subgraph(model_buffer)
    if subgraph.InputsLength() != 1 or subgraph.OutputsLength() != 1:
        raise UserError(
            "MediaPipe's image classifier needs one image input and one score "
            f"output. Received: {subgraph.InputsLength()} inputs, "
            f"{subgraph.OutputsLength()} outputs"
        )
    shape = subgraph.Tensors(subgraph.Outputs(0)).ShapeAsNumpy()
    if not isinstance(shape, np.ndarray) or shape.ndim != 1 or len(shape) != 2:
        raise UserError(f"Expected a (B, C) output. Received: shape={shape}")
    return int(shape[1])


def _populate(model_buffer: bytearray, metadata: bytes, files: dict) -> bytes:
    """Puts the metadata buffer in the model and zips the files after it."""
    model = flatbuffer_utils.read_model_from_bytearray(model_buffer)
    model.metadata = [
        entry
        for entry in model.metadata or []
        if entry.name.decode("utf-8") != METADATA_NAME
    ]
    buffer = _schema.BufferT()
    buffer.data = np.frombuffer(metadata, np.uint8)
    model.buffers.append(buffer)
    entry = _schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    stream = BytesIO(flatbuffer_utils.convert_object_to_bytearray(model))
    stream.seek(0, os.SEEK_END)
    with zipfile.ZipFile(stream, "a") as archive:
        for name, text in files.items():
            archive.writestr(name, text.encode("utf-8"))
    return stream.getvalue()
