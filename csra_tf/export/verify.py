"""Verifying exports: run TFLite models, compare with Keras, mAP and latency."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from csra_tf.export.saved_model import INPUT_NAME, SERVING_KEY
from csra_tf.metrics import evaluate, sigmoid


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
            raise ValueError(
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
            raise ValueError(
                f"The TFLite model has no '{signature_key}' signature (it has "
                f"{sorted(signatures)}). Received: signature_key={signature_key}"
            )
        runner = interpreter.get_signature_runner(signature_key)
        inputs = runner.get_input_details()
        if list(inputs) != [INPUT_NAME]:
            raise ValueError(
                f"Expected one input named '{INPUT_NAME}'. "
                f"Received: inputs={list(inputs)}"
            )
        self._interpreter = interpreter
        self._input = inputs[INPUT_NAME]
        self._outputs = runner.get_output_details()
        self.output_names = sorted(self._outputs)
        self.image_size = int(self._input["shape_signature"][1])
        self.input_dtype = np.dtype(self._input["dtype"])
        self.input_quantization = _quantization(self._input)
        self._batch = None

    def _set_batch(self, batch: int) -> None:
        if batch != self._batch:
            shape = [batch, *self._input["shape_signature"][1:]]
            self._interpreter.resize_tensor_input(self._input["index"], shape)
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
            raise ValueError(
                f"Expected images (B, {self.image_size}, {self.image_size}, 3). "
                f"Received: shape={images.shape}"
            )
        self._set_batch(images.shape[0])
        self._interpreter.set_tensor(self._input["index"], self._quantize_input(images))

    def invoke(self) -> None:
        """Runs the model on the input set last."""
        self._interpreter.invoke()

    def outputs(self) -> dict[str, np.ndarray]:
        """The outputs of the last run, dequantised to float32.

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
        raise ValueError(
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


def collect_outputs(
    predict: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    on_batch: Callable[[int], object] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Runs `predict` over `(images, targets)` batches.

    Args:
        predict: maps float pixels `(B, S, S, 3)` to named outputs, such as
            `{"logits", "probabilities"}`, each `(B, C)`.
        batches: `(images, targets)` pairs (NumPy or tensors).
        on_batch: called with each batch's size (for progress bars).

    Returns:
        `(outputs, targets)`: each output concatenated over the batches, and
        the targets, float32 `(N, C)`.
    """
    outputs, targets = {}, []
    for images, batch_targets in batches:
        images = np.asarray(images, np.float32)
        for name, value in predict(images).items():
            outputs.setdefault(name, []).append(np.asarray(value, np.float32))
        targets.append(np.asarray(batch_targets, np.float32))
        if on_batch is not None:
            on_batch(len(images))
    if not targets:
        raise ValueError("No images to verify on: the evaluation data is empty.")
    return {k: np.concatenate(v) for k, v in outputs.items()}, np.concatenate(targets)


def compare(
    reference: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    targets: np.ndarray,
) -> dict[str, float]:
    """Scores an export's outputs against the reference model's.

    mAP ranks by the `logits` output (through a float64 sigmoid): a ranking
    needs their resolution, since a full-integer model's `probabilities`
    come in steps of 1/256 (and float32 ones saturate at 1 for logits above
    about 17), which ties scores. `mAP_probabilities` ranks by the
    `probabilities` output as it is.

    Args:
        reference: the Keras model's `logits` and `probabilities`, `(N, C)`.
        outputs: the export's `logits` and `probabilities`, `(N, C)`.
        targets: targets `(N, C)` in {1, 0, -1}.

    Returns:
        `max_abs_delta_probability` (max over all entries of |probabilities -
        reference probabilities|), `mAP` and `mAP_probabilities` (in [0, 1],
        `csra_tf.metrics.evaluate`).
    """
    probs = np.asarray(outputs["probabilities"], np.float64)
    reference_probs = np.asarray(reference["probabilities"], np.float64)
    if reference_probs.shape != probs.shape:
        raise ValueError(
            "Reference and export probabilities differ in shape. Received: "
            f"reference.shape={reference_probs.shape}, probs.shape={probs.shape}"
        )
    ranking = sigmoid(outputs["logits"])
    return {
        "max_abs_delta_probability": float(np.max(np.abs(probs - reference_probs))),
        "mAP": float(evaluate(ranking, targets)["mAP"]),
        "mAP_probabilities": float(evaluate(probs, targets)["mAP"]),
    }
