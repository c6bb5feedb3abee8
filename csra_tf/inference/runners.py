"""Running an exported classifier: SavedModel signatures and `.tflite` files.

Both runners take float pixels `(B, S, S, 3)` in [0, 255] and return
`{"logits", "probabilities"}` as NumPy arrays, like the Keras model's
`serving_default` signature (a `.tflite` export has the `logits` output alone;
its probabilities are their sigmoid).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from csra_tf._startup import filtered_native_stderr
from csra_tf.errors import UserError
from csra_tf.metrics import sigmoid

SERVING_KEY = "serving_default"
"""Signature: images -> {"logits", "probabilities"} (contract)."""

ATTENTION_KEY = "attention"
"""Signature of CSRA models: images -> {"logits", "probabilities", "attention"}."""

INPUT_NAME = "images"
"""Name of the image input of every signature."""


def model_image_size(model: keras.Model) -> int:
    """The side of the square images a classifier takes.

    Args:
        model: a classifier `(B, S, S, 3) -> (B, C)`.

    Returns:
        `S`.
    """
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[1] != shape[2]:
        raise UserError(
            "Export needs a model taking square RGB images of a fixed size "
            f"(B, S, S, 3). Received: input_shape={shape}"
        )
    return int(shape[1])


class SavedModelRunner:
    """Runs a SavedModel's signatures on NumPy image batches.

    Args:
        path: a SavedModel folder written by `export_saved_model`.

    Example:
    >>> runner = SavedModelRunner("runs/shapes/export/saved_model")  # doctest: +SKIP
    >>> runner(images)["probabilities"].shape  # doctest: +SKIP
    (8, 10)
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        loaded = tf.saved_model.load(self.path)
        if SERVING_KEY not in loaded.signatures:
            raise UserError(
                f"The SavedModel has no '{SERVING_KEY}' signature. "
                f"Received: path={self.path}"
            )
        self._loaded = loaded  # keeps the signatures' variables alive
        self._signatures = dict(loaded.signatures)
        spec = self._signatures[SERVING_KEY].structured_input_signature[1]
        self.image_size = int(spec[INPUT_NAME].shape[1])

    @property
    def signature_keys(self) -> list[str]:
        """The SavedModel's signature names, sorted."""
        return sorted(self._signatures)

    @property
    def has_attention(self) -> bool:
        """Whether the SavedModel has the `attention` signature."""
        return ATTENTION_KEY in self._signatures

    def __call__(
        self, images: np.ndarray, signature_key: str = SERVING_KEY
    ) -> dict[str, np.ndarray]:
        """Runs one signature.

        Args:
            images: float pixels `(B, S, S, 3)` in [0, 255].
            signature_key: `"serving_default"` or `"attention"`.

        Returns:
            The signature's outputs as NumPy arrays.
        """
        if signature_key not in self._signatures:
            raise UserError(
                f"The SavedModel has no '{signature_key}' signature. "
                f"Received: signature_key={signature_key}"
            )
        outputs = self._signatures[signature_key](
            **{INPUT_NAME: tf.convert_to_tensor(images, tf.float32)}
        )
        return {name: value.numpy() for name, value in outputs.items()}


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "Running .tflite models needs the LiteRT interpreter: "
            "`pip install ai-edge-litert`."
        ) from error
    return Interpreter


class TFLiteModel:
    """Runs a `.tflite` classifier with the LiteRT interpreter on float pixels.

    Quantised inputs are quantised (`q = round(x / scale) + zero_point`,
    clipped to the dtype) and quantised outputs dequantised
    (`(q - zero_point) * scale`), so every variant is called the same way. The
    batch dimension is resized on demand.

    Args:
        model: a `.tflite` file path or flatbuffer bytes.
        num_threads: interpreter threads.
        signature_key: the signature to run.

    Example:
    >>> model = TFLiteModel("runs/shapes/export/model_int8.tflite")  # doctest: +SKIP
    >>> model(images)["probabilities"].shape  # doctest: +SKIP
    (8, 10)
    """

    def __init__(
        self,
        model: str | os.PathLike | bytes,
        num_threads: int = 1,
        signature_key: str = SERVING_KEY,
    ):
        if not isinstance(num_threads, int) or num_threads < 1:
            raise UserError(
                "`num_threads` must be a positive int. "
                f"Received: num_threads={num_threads}"
            )
        interpreter_class = _interpreter_class()
        if isinstance(model, bytes):
            interpreter = interpreter_class(
                model_content=model, num_threads=num_threads
            )
        else:
            interpreter = interpreter_class(
                model_path=os.fspath(model), num_threads=num_threads
            )
        signatures = interpreter.get_signature_list()
        if signature_key not in signatures:
            raise UserError(
                f"The TFLite model has no '{signature_key}' signature (it has "
                f"{sorted(signatures)}). Received: signature_key={signature_key}"
            )
        runner = interpreter.get_signature_runner(signature_key)
        inputs = runner.get_input_details()
        if list(inputs) != [INPUT_NAME]:
            raise UserError(
                f"Expected one input named '{INPUT_NAME}'. "
                f"Received: inputs={list(inputs)}"
            )
        self._interpreter = interpreter
        self._input = inputs[INPUT_NAME]
        self._outputs = runner.get_output_details()
        self.output_names = sorted(self._outputs)
        self.output_dtypes = {
            name: np.dtype(details["dtype"]) for name, details in self._outputs.items()
        }
        self.output_quantization = {
            name: _quantization(details) for name, details in self._outputs.items()
        }
        self.image_size = int(self._input["shape_signature"][1])
        self.input_dtype = np.dtype(self._input["dtype"])
        self.input_quantization = _quantization(self._input)
        self._batch = None
        self._invoked = False

    def _set_batch(self, batch: int) -> None:
        if batch != self._batch:
            shape = [batch, *self._input["shape_signature"][1:]]
            self._interpreter.resize_tensor_input(self._input["index"], shape)
            with filtered_native_stderr():  # LiteRT announces its delegate here
                self._interpreter.allocate_tensors()
            self._batch = batch

    def _quantize_input(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if self.input_quantization is None:
            return images.astype(self.input_dtype)
        scale, zero_point = self.input_quantization
        info = np.iinfo(self.input_dtype)
        quantized = np.round(images / scale) + zero_point
        return np.clip(quantized, info.min, info.max).astype(self.input_dtype)

    def set_input(self, images: np.ndarray) -> None:
        """Sets the input tensor (resizing the batch when it changes).

        Args:
            images: float pixels `(B, S, S, 3)` in [0, 255].
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != (self.image_size,) * 2 + (3,):
            raise UserError(
                f"Expected images (B, {self.image_size}, {self.image_size}, 3). "
                f"Received: shape={images.shape}"
            )
        self._set_batch(images.shape[0])
        self._interpreter.set_tensor(self._input["index"], self._quantize_input(images))

    def invoke(self) -> None:
        """Runs the model on the input set last."""
        if self._invoked:
            self._interpreter.invoke()
            return
        with filtered_native_stderr():  # LiteRT announces its delegate here
            self._interpreter.invoke()
        self._invoked = True

    def outputs(self) -> dict[str, np.ndarray]:
        """The outputs of the last run, dequantised to float32.

        A model with a `logits` output and no `probabilities` output (every
        export since the exports carry MediaPipe metadata) also gets
        `probabilities`: the float32 sigmoid of the logits.

        Returns:
            A dict from output name to float32 array.
        """
        result = {}
        for name, details in self._outputs.items():
            value = self._interpreter.get_tensor(details["index"])
            quantization = _quantization(details)
            if quantization is not None:
                scale, zero_point = quantization
                value = (value.astype(np.float32) - zero_point) * scale
            result[name] = np.asarray(value, np.float32)
        if "probabilities" not in result and "logits" in result:
            result["probabilities"] = sigmoid(result["logits"]).astype(np.float32)
        return result

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Runs the model.

        Args:
            images: float pixels `(B, S, S, 3)` in [0, 255].

        Returns:
            The outputs (`logits`, `probabilities`) as float32 arrays.
        """
        self.set_input(images)
        self.invoke()
        return self.outputs()

    def latency_ms(
        self, image: np.ndarray, num_runs: int = 50, warmup: int = 5
    ) -> float:
        """Median time of one batch-1 `invoke`, in milliseconds.

        Args:
            image: float pixels `(1, S, S, 3)`.
            num_runs: timed runs.
            warmup: untimed runs first.

        Returns:
            The median latency in ms.
        """
        self.set_input(image)
        return median_latency_ms(self.invoke, num_runs=num_runs, warmup=warmup)


def _quantization(details: dict) -> tuple[float, int] | None:
    """Per-tensor `(scale, zero_point)` of a quantised tensor, else None."""
    scale, zero_point = details["quantization"]
    if not np.issubdtype(np.dtype(details["dtype"]), np.integer) or scale == 0:
        return None
    return float(scale), int(zero_point)


def median_latency_ms(
    fn: Callable[[], object], num_runs: int = 50, warmup: int = 5
) -> float:
    """Median wall time of `fn()` in milliseconds.

    Args:
        fn: the call to time.
        num_runs: timed calls.
        warmup: untimed calls first.

    Returns:
        The median, in ms.
    """
    if num_runs < 1 or warmup < 0:
        raise UserError(
            "`num_runs` must be >= 1 and `warmup` >= 0. "
            f"Received: num_runs={num_runs}, warmup={warmup}"
        )
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(num_runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)
