"""Predicting labels of image files with a `.keras`, SavedModel or `.tflite` model.

Images of any size and of any format Pillow reads (JPEG, PNG, GIF, BMP, WebP,
TIFF, ...) are decoded to RGB (EXIF orientation applied, grayscale expanded,
transparency composited on white, the first frame of an animation) and resized
to the model's input exactly as the evaluation pipeline does (bilinear, no
aspect-ratio padding). CSRA models also give per-class attention maps, written
as PNG overlays.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TextIO

import keras
import numpy as np

from csra_tf import run_folder
from csra_tf.acceleration import accelerate
from csra_tf.data.pipeline import resize
from csra_tf.errors import UserError
from csra_tf.inference.attention import attention_parts
from csra_tf.inference.images import read_image
from csra_tf.inference.overlays import safe_file_name, write_class_overlays
from csra_tf.inference.runners import (
    ATTENTION_KEY,
    SavedModelRunner,
    TFLiteModel,
    model_image_size,
)
from csra_tf.inference.tflite_metadata import read_tflite_metadata

BACKENDS = ("keras", "saved_model", "tflite")
OUTPUT_FORMATS = ("jsonl", "table")


def backend_for(path: str | os.PathLike) -> str:
    """The backend a model path calls for.

    Args:
        path: a `.keras` file, a SavedModel folder or a `.tflite` file.

    Returns:
        `"keras"`, `"saved_model"` or `"tflite"`.
    """
    path = os.fspath(path)
    if path.endswith(".keras") and os.path.isfile(path):
        return "keras"
    if path.endswith(".tflite") and os.path.isfile(path):
        return "tflite"
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return "saved_model"
    raise UserError(
        "The model must be an existing .keras file, SavedModel folder or .tflite "
        f"file. Received: path={path}"
    )


class Predictor:
    """A classifier behind one interface, whatever its file format.

    Args:
        model_path: a `.keras` file, a SavedModel folder or a `.tflite` file.
        class_names: class names in output order; default a `.tflite` file's
            metadata labels, else the `classes.json` found with the model
            (`csra_tf.run_folder.find_class_names`), else `class_<i>`.
        num_threads: TFLite interpreter threads.

    Attributes:
        thresholds: per-class probability thresholds `(C,)` read from a
            `.tflite` file's score calibration, or None.

    Example:
    >>> predictor = Predictor("runs/shapes/export/model_int8.tflite")  # doctest: +SKIP
    >>> image = predictor.preprocess(read_image("photo.jpg"))  # doctest: +SKIP
    >>> predictor.predict(image[None]).shape  # doctest: +SKIP
    (1, 10)
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        class_names: Sequence[str] | None = None,
        num_threads: int = 1,
    ):
        self.model_path = os.fspath(model_path)
        self.backend = backend_for(self.model_path)
        self._attention = None
        self.thresholds = None
        metadata = None
        if self.backend == "keras":
            self._model = accelerate(
                run_folder.load_model(self.model_path), for_training=False
            )
            self.image_size = model_image_size(self._model)
            self._attention = attention_parts(self._model)
            num_outputs = self._model.output_shape[-1]
        elif self.backend == "saved_model":
            self._model = SavedModelRunner(self.model_path)
            self.image_size = self._model.image_size
            num_outputs = self._num_outputs()
        else:
            self._model = TFLiteModel(self.model_path, num_threads=num_threads)
            self.image_size = self._model.image_size
            num_outputs = self._num_outputs()
            metadata = read_tflite_metadata(self.model_path)
        if metadata is not None:
            if class_names is None:
                class_names = metadata.class_names
            if metadata.thresholds is not None:
                if len(metadata.thresholds) != num_outputs:
                    raise UserError(
                        f"The model has {num_outputs} outputs but its metadata "
                        f"{len(metadata.thresholds)} thresholds. Received: "
                        f"model_path={self.model_path}"
                    )
                self.thresholds = metadata.thresholds
        if class_names is None:
            class_names = run_folder.find_class_names(self.model_path)
        if class_names is None:
            class_names = [f"class_{i}" for i in range(num_outputs)]
        if len(class_names) != num_outputs:
            raise UserError(
                f"The model has {num_outputs} outputs but {len(class_names)} class "
                f"names were given. Received: class_names={list(class_names)}"
            )
        self.class_names = list(class_names)

    def _num_outputs(self) -> int:
        blank = np.zeros((1, *self.input_shape), np.float32)
        return self._probabilities(blank).shape[1]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The model's image shape `(S, S, 3)`."""
        return (self.image_size, self.image_size, 3)

    @property
    def has_attention(self) -> bool:
        """Whether attention maps are available (CSRA `.keras` or SavedModel)."""
        if self.backend == "saved_model":
            return self._model.has_attention
        return self._attention is not None

    def check_attention(self) -> None:
        """Raises a `ValueError` unless attention maps are available."""
        if not self.has_attention:
            raise UserError(
                "Attention maps need a CSRA model as .keras or as a SavedModel "
                f"with an '{ATTENTION_KEY}' signature (TFLite exports and GAP "
                f"models have none). Received: model_path={self.model_path}"
            )

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """Resizes an RGB image to the model input, as the eval pipeline does.

        Args:
            image: uint8 `(H, W, 3)`.

        Returns:
            float32 pixels `(S, S, 3)` in [0, 255].
        """
        return resize(image, (self.image_size, self.image_size)).numpy()

    def _probabilities(self, images: np.ndarray) -> np.ndarray:
        if self.backend == "keras":
            logits = self._model.predict_on_batch(images)
            return keras.ops.convert_to_numpy(keras.ops.sigmoid(logits))
        return np.asarray(self._model(images)["probabilities"], np.float32)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of preprocessed images.

        Args:
            images: float pixels `(B, S, S, 3)` in [0, 255].

        Returns:
            float32 probabilities `(B, C)`.
        """
        return self._probabilities(np.asarray(images, np.float32))

    def predict_with_attention(
        self, images: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities and per-class attention maps.

        Args:
            images: float pixels `(B, S, S, 3)` in [0, 255].

        Returns:
            `(probabilities (B, C), attention (B, h, w, C))`, float32.
        """
        self.check_attention()
        images = np.asarray(images, np.float32)
        if self.backend == "saved_model":
            outputs = self._model(images, ATTENTION_KEY)
            return outputs["probabilities"], outputs["attention"]
        backbone, head = self._attention
        features = backbone(images, training=False)
        probs = keras.ops.sigmoid(head(features))
        attention = head.attention(features)
        return keras.ops.convert_to_numpy(probs), keras.ops.convert_to_numpy(attention)


def predict_files(
    predictor: Predictor,
    paths: Sequence[tuple[str, str | None]],
    thresholds: float | np.ndarray = 0.5,
    batch_size: int = 8,
    attention_dir: str | os.PathLike | None = None,
) -> Iterator[dict]:
    """Predicts labels of image files, one record per file, in order.

    Args:
        predictor: the model.
        paths: `(path, error)` pairs from `expand_image_paths`.
        thresholds: one threshold, or one per class `(C,)`; a class is
            predicted when its probability is `>= ` its threshold.
        batch_size: images per model call.
        attention_dir: if given, write `<stem>_<class>.png` attention overlays
            of each predicted class there.

    Returns:
        An iterator of records: `{"image", "predicted": [{"label",
        "probability"}] (most probable first), "probabilities": {class: p}}`
        (plus `"attention"`: the PNG paths), or `{"image", "error"}` for a file
        that could not be read.
    """
    try:
        thresholds = np.broadcast_to(
            np.asarray(thresholds, np.float64), (len(predictor.class_names),)
        )
    except ValueError as error:
        raise UserError(
            "`thresholds` must be one number or one per class "
            f"({len(predictor.class_names)}). Received: thresholds={thresholds}"
        ) from error
    if batch_size < 1:
        raise UserError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
    if attention_dir is not None:
        predictor.check_attention()
        os.makedirs(attention_dir, exist_ok=True)
    return _predict_files(predictor, paths, thresholds, batch_size, attention_dir)


def _predict_files(predictor, paths, thresholds, batch_size, attention_dir):
    used_stems: set[str] = set()
    pending: list[tuple[str, np.ndarray | None, str | None]] = []

    def flush():
        readable = [(path, image) for path, image, error in pending if error is None]
        probs = attention = None
        if readable:
            batch = np.stack([predictor.preprocess(image) for _, image in readable])
            if attention_dir is None:
                probs = predictor.predict(batch)
            else:
                probs, attention = predictor.predict_with_attention(batch)
        row = 0
        for path, image, error in pending:
            if error is not None:
                yield {"image": path, "error": error}
                continue
            record = _record(path, probs[row], predictor.class_names, thresholds)
            if attention is not None:
                stem = _unique_stem(path, used_stems)
                record["attention"] = _write_overlays(
                    attention_dir, stem, image, attention[row], record, predictor
                )
            row += 1
            yield record
        pending.clear()

    for path, error in paths:
        image = None
        if error is None:
            try:
                image = read_image(path)
            except ValueError as read_error:
                error = str(read_error)
        pending.append((path, image, error))
        if len(pending) >= batch_size:
            yield from flush()
    yield from flush()


def _record(path, probs, class_names, thresholds) -> dict:
    order = np.argsort(-probs, kind="stable")
    return {
        "image": path,
        "predicted": [
            {"label": class_names[c], "probability": round(float(probs[c]), 6)}
            for c in order
            if probs[c] >= thresholds[c]
        ],
        "probabilities": {
            name: round(float(p), 6) for name, p in zip(class_names, probs, strict=True)
        },
    }


def _unique_stem(path: str, used: set[str]) -> str:
    """A file-name stem for an input; same-named inputs get `_1`, `_2`, ..."""
    stem = safe_file_name(os.path.splitext(os.path.basename(path))[0])
    unique, n = stem, 1
    while unique in used:
        unique, n = f"{stem}_{n}", n + 1
    used.add(unique)
    return unique


def _write_overlays(folder, stem, image, attention, record, predictor):
    classes = [
        (
            predictor.class_names.index(entry["label"]),
            entry["label"],
            f"{entry['label']} {entry['probability']:.2f}",
        )
        for entry in record["predicted"]
    ]
    return write_class_overlays(folder, stem, image, attention, classes)


def write_predictions(
    records: Iterable[dict],
    stream: TextIO,
    output_format: str = "jsonl",
    error_stream: TextIO | None = None,
) -> int:
    """Writes prediction records as JSON lines or as a table, as they come.

    Args:
        records: records from `predict_files`.
        stream: where the output goes (flushed after each record).
        output_format: `"jsonl"` (one JSON object per image, errors included
            as `{"image", "error"}`) or `"table"` (image, predicted labels with
            probabilities; `ERROR: ...` for an unreadable file).
        error_stream: also receives one `error: <image>: <reason>` line per
            unreadable file.

    Returns:
        The number of records with an error.
    """
    if output_format not in OUTPUT_FORMATS:
        raise UserError(
            f"`output_format` must be one of {OUTPUT_FORMATS}. "
            f"Received: output_format={output_format}"
        )
    num_errors = 0
    if output_format == "table":
        stream.write(f"{'image':40s} predicted\n")
    for record in records:
        if "error" in record:
            num_errors += 1
            if error_stream is not None:
                error_stream.write(f"error: {record['image']}: {record['error']}\n")
                error_stream.flush()
        if output_format == "jsonl":
            stream.write(json.dumps(record) + "\n")
        elif "error" in record:
            stream.write(f"{record['image']:40s} ERROR: {record['error']}\n")
        else:
            labels = ", ".join(
                f"{p['label']} ({p['probability']:.3f})" for p in record["predicted"]
            )
            stream.write(f"{record['image']:40s} {labels or '-'}\n")
        stream.flush()
    return num_errors
