"""TFLite conversion: float32, float16, dynamic-range int8 and full-integer int8.

Every variant is converted from the `serving_default` signature of the exported
SavedModel (images `(B, S, S, 3)` -> `{"logits", "probabilities"}`, dynamic
batch), keeping its one `logits` output: MediaPipe's image classifier takes a
model with one score tensor, and its metadata's per-class sigmoid calibration
(`csra_tf.export.metadata`) turns logits into probabilities exactly, where a
full-integer `probabilities` output would come in steps of 1/256. Only builtin
TFLite ops are used, and the converted flatbuffer is scanned for custom or
select-TF ("Flex") ops so that an export can never silently need the
TensorFlow runtime on the device.

Full-integer input and output: the model's input is float pixels in [0, 255]
and its first op rescales them to [0, 1]. The full-integer variant takes
**uint8** images: calibration is anchored so the input's quantisation is
exactly `scale = 1, zero_point = 0`, so a phone feeds raw camera pixels with no
arithmetic at all, and the only extra op is one builtin `QUANTIZE` (uint8 ->
int8, a shift by 128). Its logits come out as **uint8** (one more `QUANTIZE`,
int8 -> uint8: MediaPipe reads uint8 or float32 scores, not int8), so every
tensor of the graph is integer and the model runs on integer-only
accelerators; read the output with its scale and zero point (see
`csra_tf.inference.TFLiteModel`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as _schema

from csra_tf._startup import CONVERTER_LINES, filtered_native_stderr
from csra_tf.errors import UserError
from csra_tf.inference.runners import INPUT_NAME, SERVING_KEY
from csra_tf.run_folder import TFLITE_FILE

VARIANTS = ("float32", "float16", "dynamic_int8", "int8")
"""The TFLite variants, in export order."""

QUANTIZED_VARIANTS = ("float16", "dynamic_int8", "int8")
"""The variants judged by an mAP budget (float32 is judged by its max delta)."""

INT8_INPUT_TYPE = np.uint8
"""Input dtype of the full-integer variant: raw pixels, scale 1, zero point 0."""

INT8_OUTPUT_TYPE = np.uint8
"""Output dtype of the full-integer variant (a type MediaPipe reads)."""

OUTPUT_NAME = "logits"
"""The one output of every `.tflite` variant."""

_FLEX_PREFIX = "Flex"
_PIXEL_RANGE = (0.0, 255.0)


def variant_filename(variant: str) -> str:
    """File name of a variant inside the export folder.

    Args:
        variant: one of `VARIANTS`.

    Returns:
        `model_<variant>.tflite`.
    """
    _check_variant(variant)
    return TFLITE_FILE.format(variant=variant)


def convert_saved_model(
    saved_model_dir: str | os.PathLike,
    variant: str,
    representative_images: Callable[[], Iterable[np.ndarray]] | None = None,
    signature_key: str = SERVING_KEY,
) -> bytes:
    """Converts one signature of a SavedModel to a TFLite variant.

    Args:
        saved_model_dir: a SavedModel written by `export_saved_model`.
        variant: `"float32"`, `"float16"` (float16 weights), `"dynamic_int8"`
            (int8 weights, float activations) or `"int8"` (full integer:
            uint8 input, int8 weights and activations, uint8 output).
        representative_images: for `"int8"` only: a callable returning a fresh
            iterable of float32 pixel batches `(B, S, S, 3)` in [0, 255]
            (typically 100-500 training images) used to calibrate activations.
        signature_key: the signature whose `logits` output is converted.

    Returns:
        The `.tflite` flatbuffer (signature `serving_default`: `images` ->
        `logits`, without metadata), checked to hold builtin ops only.

    Raises:
        ValueError: on a bad argument, or if the converted model holds a custom
            or select-TF op.
    """
    _check_variant(variant)
    if (variant == "int8") != (representative_images is not None):
        raise UserError(
            "`representative_images` is required for the int8 variant and only "
            f"for it. Received: variant={variant}, representative_images="
            f"{representative_images!r}"
        )
    converter = _logits_converter(saved_model_dir, signature_key)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = lambda: _calibration_feed(
            representative_images()
        )
        converter.inference_input_type = tf.as_dtype(INT8_INPUT_TYPE)
        converter.inference_output_type = tf.as_dtype(INT8_OUTPUT_TYPE)
    with warnings.catch_warnings(), filtered_native_stderr(CONVERTER_LINES):
        # Calibration runs TF's own (deprecated) interpreter; nothing to act on.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        model_content = converter.convert()
    check_builtin_ops(model_content)
    return model_content


def _logits_converter(saved_model_dir, signature_key) -> tf.lite.TFLiteConverter:
    """A converter of a signature's `logits` output alone (same input)."""
    loaded = tf.saved_model.load(os.fspath(saved_model_dir))
    if signature_key not in loaded.signatures:
        raise UserError(
            f"The SavedModel has no '{signature_key}' signature. "
            f"Received: saved_model_dir={saved_model_dir}"
        )
    serve = loaded.signatures[signature_key]
    spec = serve.structured_input_signature[1][INPUT_NAME]

    @tf.function(input_signature=[tf.TensorSpec(spec.shape, spec.dtype, INPUT_NAME)])
    def logits(images):
        return {OUTPUT_NAME: serve(**{INPUT_NAME: images})[OUTPUT_NAME]}

    return tf.lite.TFLiteConverter.from_concrete_functions(
        [logits.get_concrete_function()], loaded
    )


def list_ops(model_content: bytes) -> list[str]:
    """Names of the distinct ops of a TFLite flatbuffer, in first-use order.

    Builtin ops are named as in the TFLite schema (`"CONV_2D"`); custom and
    select-TF ops by their custom code (`"FlexErf"`). The flatbuffer is read
    directly, so this works for models no interpreter could load.

    Args:
        model_content: a `.tflite` flatbuffer.

    Returns:
        The op names.
    """
    model = _schema.Model.GetRootAsModel(bytearray(model_content), 0)
    builtin_names = {
        value: name
        for name, value in vars(_schema.BuiltinOperator).items()
        if not name.startswith("_")
    }
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == _schema.BuiltinOperator.CUSTOM:
            name = (code.CustomCode() or b"").decode("utf-8") or "CUSTOM"
        else:
            name = builtin_names.get(builtin, f"BUILTIN_{builtin}")
        if name not in names:
            names.append(name)
    return names


def check_builtin_ops(model_content: bytes) -> list[str]:
    """Fails loudly if a TFLite model needs a custom or select-TF op.

    Args:
        model_content: a `.tflite` flatbuffer.

    Returns:
        The model's op names (`list_ops`), when all are builtin.

    Raises:
        ValueError: naming the offending ops.
    """
    ops = list_ops(model_content)
    builtin_names = set(vars(_schema.BuiltinOperator))
    foreign = [op for op in ops if op not in builtin_names or op == "CUSTOM"]
    if foreign:
        kind = (
            "select-TF (Flex)"
            if any(op.startswith(_FLEX_PREFIX) for op in foreign)
            else "custom"
        )
        raise UserError(
            f"The TFLite model needs {kind} ops, but exports must use builtin "
            f"TFLite ops only. Received: ops={foreign}"
        )
    return ops


def _calibration_feed(batches: Iterable[np.ndarray]) -> Iterator[dict]:
    """Feeds calibration images one at a time, anchoring the pixel range.

    The first image is fed once more with one pixel set to 0 and one to 255,
    so the calibrated input range is exactly [0, 255] (uint8 scale 1, zero
    point 0) whatever the images' own extremes; two pixels of one extra sample
    do not move any other tensor's range measurably.
    """
    anchored = False
    for batch in batches:
        batch = np.asarray(batch, np.float32)
        if batch.ndim != 4:
            raise UserError(
                "Representative images must be batches (B, S, S, 3). "
                f"Received: shape={batch.shape}"
            )
        for image in batch:
            image = np.clip(image, *_PIXEL_RANGE)[None]
            if not anchored:
                anchor = image.copy()
                anchor[0, 0, 0, :] = _PIXEL_RANGE[0]
                anchor[0, -1, -1, :] = _PIXEL_RANGE[1]
                yield {INPUT_NAME: anchor}
                anchored = True
            yield {INPUT_NAME: image}
    if not anchored:
        raise UserError("`representative_images` yielded no images.")


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise UserError(
            f"`variant` must be one of {VARIANTS}. Received: variant={variant}"
        )
