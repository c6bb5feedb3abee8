"""`csra-export`: SavedModel + TFLite variants, each verified, and the report.

The export folder receives `saved_model/`, `model_<variant>.tflite` for each of
`float32`, `float16`, `dynamic_int8` and `int8`, `classes.json` and
`export_report.json`. Each `.tflite` carries the TFLite metadata MediaPipe's
image classifier reads (labels, input normalisation, and per-class score
calibration from the thresholds; `csra_tf.export.metadata`). Each export is
run on held-out images and compared with the Keras model; the report lists per
variant the file size, the max |delta probability|, the mAP and the median
batch-1 latency. Gates: the SavedModel and the float32 TFLite model must match
the Keras probabilities to `max_float32_delta`; each quantised variant may lose
at most its mAP budget (points). The report is written first, then
`ExportVerificationError` is raised if a gate failed.
"""

from __future__ import annotations

import datetime
import functools
import os
import shutil
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from csra_tf import data, run_folder
from csra_tf.errors import UserError
from csra_tf.export.metadata import ModelInfo, add_metadata, check_thresholds
from csra_tf.export.report import (
    DEFAULT_MAX_FLOAT32_DELTA,
    add_ratios,
    apply_gate,
    instruction_sets,
    resolve_budgets,
    targets_summary,
)
from csra_tf.export.saved_model import export_saved_model
from csra_tf.export.tflite import (
    VARIANTS,
    convert_saved_model,
    list_ops,
    variant_filename,
)
from csra_tf.export.verify import compare
from csra_tf.inference.runners import (
    SavedModelRunner,
    TFLiteModel,
    median_latency_ms,
    model_image_size,
)
from csra_tf.metrics import sigmoid
from csra_tf.models import predict_dataset
from csra_tf.run_folder import EXPORT_REPORT_FILE, SAVED_MODEL_DIR


class ExportVerificationError(RuntimeError):
    """An export failed its verification; `report` holds the written report."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


def export_model(
    model: keras.Model,
    export_dir: str | os.PathLike,
    eval_source: data.Source,
    calibration_source: data.Source,
    variants: Sequence[str] = VARIANTS,
    max_float32_delta: float = DEFAULT_MAX_FLOAT32_DELTA,
    map_budgets: Mapping[str, float] | None = None,
    num_eval_images: int | None = None,
    num_calibration_images: int = 200,
    batch_size: int = 32,
    latency_runs: int = 50,
    num_threads: int = 1,
    seed: int = 0,
    progress: bool = True,
    thresholds: Sequence[float] | np.ndarray | None = None,
    model_info: ModelInfo | None = None,
) -> dict:
    """Exports a classifier as SavedModel and TFLite variants and verifies them.

    Args:
        model: a classifier `(B, S, S, 3)` pixels in [0, 255] -> logits.
        export_dir: output folder (created; existing exports are replaced).
        eval_source: held-out labelled images (the verification set).
        calibration_source: training images for full-integer calibration.
        variants: TFLite variants to write, a subset of `VARIANTS`.
        max_float32_delta: largest |delta probability| allowed for the
            SavedModel and float32 TFLite model against Keras.
        map_budgets: mAP loss (points) allowed per quantised variant; missing
            entries default to `report.DEFAULT_MAP_BUDGETS`. A negative budget
            demands a gain (useful only to test the gate).
        num_eval_images: verify on the first N held-out images (None: all).
        num_calibration_images: calibration images (a seeded sample).
        batch_size: verification batch size.
        latency_runs: timed batch-1 runs per variant.
        num_threads: TFLite interpreter threads.
        seed: seed of the calibration sample.
        progress: show a progress bar per export.
        thresholds: per-class probability thresholds `(C,)` for the `.tflite`
            files' score calibration (MediaPipe's score 0.5 is then each
            class's threshold); default 0.5 for every class.
        model_info: name, description, author and licence of the `.tflite`
            metadata; default `ModelInfo()`.

    Returns:
        The report written to `<export_dir>/export_report.json`.

    Raises:
        ValueError: on bad arguments.
        ExportVerificationError: after writing the report, if a conversion
            failed or a gate was not met.
    """
    budgets = _check_arguments(
        variants,
        max_float32_delta,
        map_budgets,
        num_eval_images,
        num_calibration_images,
        eval_source,
        model,
    )
    if thresholds is not None:
        thresholds = check_thresholds(thresholds, len(eval_source.class_names))
    export_dir = os.fspath(export_dir)
    os.makedirs(export_dir, exist_ok=True)
    image_size = model_image_size(model)
    eval_data = eval_source.dataset
    if num_eval_images:
        eval_data = eval_data.take(num_eval_images)
    eval_batches = data.build_dataset(eval_data, image_size, batch_size, training=False)
    total = _count(eval_source.num_examples, num_eval_images)
    first_image = next(eval_batches.unbatch().take(1).as_numpy_iterator())[0][None]
    run_folder.write_class_names(export_dir, eval_source.class_names)

    def verify(predict, bar):
        return predict_dataset(
            predict, eval_batches.as_numpy_iterator(), verbose=0, on_batch=bar.update
        )

    def keras_outputs(images):
        logits = keras.ops.convert_to_numpy(model.predict_on_batch(images))
        return {"logits": logits, "probabilities": sigmoid(logits).astype(np.float32)}

    with _bar("keras", total, progress) as bar:
        reference, targets = verify(keras_outputs, bar)
    report = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "cpu_instruction_sets": instruction_sets(),
        "image_size": image_size,
        "class_names": list(eval_source.class_names),
        "num_eval_images": int(len(targets)),
        "num_calibration_images": num_calibration_images,
        "num_threads": num_threads,
        "gates": {"max_float32_delta": max_float32_delta, "map_budgets": budgets},
        "keras": {"mAP": compare(reference, reference, targets)["mAP"]},
        "tflite_metadata": {
            "labels": list(eval_source.class_names),
            "thresholds": None
            if thresholds is None
            else [float(t) for t in np.asarray(thresholds).ravel()],
        },
        "note": (
            "mAP ranks by the logits output; mAP_probabilities by the float32 "
            "probabilities (for .tflite files, the sigmoid of their logits), "
            "which saturate at 1 for logits above about 17 and tie scores."
        ),
    }
    failures = []

    keras_map = report["keras"]["mAP"]
    gate = functools.partial(
        apply_gate,
        keras_map=keras_map,
        max_float32_delta=max_float32_delta,
        budgets=budgets,
    )
    with _bar(SAVED_MODEL_DIR, total, progress) as bar:
        bar.set_postfix_str("writing")
        saved_model_dir = export_saved_model(
            model, os.path.join(export_dir, SAVED_MODEL_DIR)
        )
        bar.set_postfix_str("verifying")
        runner = SavedModelRunner(saved_model_dir)
        entry = compare(reference, verify(runner, bar)[0], targets)
        entry.update(path=SAVED_MODEL_DIR, signatures=runner.signature_keys)
        failures.append(gate(SAVED_MODEL_DIR, entry))
        report["saved_model"] = entry

    calibration = _calibration_batches(
        calibration_source, image_size, num_calibration_images, batch_size, seed
    )
    report["variants"] = {}
    for variant in variants:
        with _bar(variant, total, progress) as bar:
            entry = {"file": variant_filename(variant)}
            report["variants"][variant] = entry
            path = os.path.join(export_dir, entry["file"])
            if os.path.exists(path):
                os.remove(path)  # never leave a stale file from an earlier export
            try:
                bar.set_postfix_str("converting")
                content = convert_saved_model(
                    saved_model_dir, variant, calibration if variant == "int8" else None
                )
                content = add_metadata(
                    content,
                    eval_source.class_names,
                    thresholds,
                    variant,
                    model_info or ModelInfo(),
                )
            except Exception as error:  # noqa: BLE001 - reported, then raised
                entry.update(passed=False, error=f"{type(error).__name__}: {error}")
                failures.append(f"{variant}: conversion failed: {error}")
                continue
            with open(path, "wb") as f:
                f.write(content)
            tflite = TFLiteModel(path, num_threads=num_threads)
            entry.update(
                size_bytes=len(content),
                ops=list_ops(content),
                input=_input_entry(tflite),
                output=_output_entry(tflite),
            )
            bar.set_postfix_str("verifying")
            entry.update(compare(reference, verify(tflite, bar)[0], targets))
            bar.set_postfix_str("timing")
            entry["median_latency_ms"] = tflite.latency_ms(first_image, latency_runs)
            failures.append(gate(variant, entry))

    report["keras"]["median_latency_ms"] = median_latency_ms(
        lambda: model.predict_on_batch(first_image), latency_runs
    )
    add_ratios(report["variants"])
    report["targets"] = targets_summary(report["variants"])
    failures = [failure for failure in failures if failure]
    report["passed"] = not failures
    report["failures"] = failures
    run_folder.write_json(os.path.join(export_dir, EXPORT_REPORT_FILE), report)
    if failures:
        raise ExportVerificationError(
            "Export verification failed (report: "
            f"{os.path.join(export_dir, EXPORT_REPORT_FILE)}):\n  "
            + "\n  ".join(failures),
            report,
        )
    return report


def export_workdir(
    workdir: str | os.PathLike,
    export_dir: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    data_overrides: dict | None = None,
    **kwargs,
) -> dict:
    """Exports the model of a `csra-train` workdir, verified on its val split.

    Calibration images come from the run's training split. A `thresholds.json`
    in the workdir (`csra-eval --calibrate_thresholds`) becomes the `.tflite`
    files' score calibration and is copied next to the exports.

    Args:
        workdir: a `csra-train` workdir (config.json, classes.json, model.keras).
        export_dir: output folder; default `<workdir>/export`.
        checkpoint: model file; default `<workdir>/model.keras`.
        data_overrides: other data for the run (`run_folder.DATA_FIELDS`).
        **kwargs: passed on to `export_model`.

    Returns:
        The export report.
    """
    workdir = os.fspath(workdir)
    config = run_folder.read_config(workdir, data_overrides)
    train_source, val_source = run_folder.load_sources(
        config, run_folder.saved_class_names(workdir)
    )
    model = run_folder.load_model(
        checkpoint or os.path.join(workdir, run_folder.MODEL_FILE)
    )
    export_dir = os.fspath(export_dir or os.path.join(workdir, run_folder.EXPORT_DIR))
    _use_saved_thresholds(workdir, export_dir, val_source.class_names, kwargs)
    kwargs.setdefault("seed", config.seed)
    return export_model(model, export_dir, val_source, train_source, **kwargs)


def export_model_file(
    model_path: str | os.PathLike,
    eval_manifest: str | os.PathLike,
    calibration_manifest: str | os.PathLike | None = None,
    image_root: str | os.PathLike | None = None,
    export_dir: str | os.PathLike | None = None,
    **kwargs,
) -> dict:
    """Exports a `.keras` file, verified on a labelled manifest.

    Class names come from a `classes.json` next to the model file when there is
    one (so manifest labels map to the model's outputs), else from the manifest;
    a `thresholds.json` there becomes the `.tflite` score calibration.

    Args:
        model_path: the `.keras` classifier.
        eval_manifest: held-out labelled images (JSON lines or CSV manifest).
        calibration_manifest: training images for int8 calibration; default
            `eval_manifest` (acceptable, but calibrating on the images you
            verify on flatters the int8 mAP).
        image_root: folder relative image paths resolve against.
        export_dir: output folder; default `export/` next to the model file.
        **kwargs: passed on to `export_model`.

    Returns:
        The export report.
    """
    model_path = os.fspath(model_path)
    model = run_folder.load_model(model_path)
    model_dir = os.path.dirname(model_path)
    class_names = run_folder.saved_class_names(model_dir)
    eval_source = data.manifest(eval_manifest, image_root, class_names=class_names)
    calibration_source = (
        data.manifest(
            calibration_manifest, image_root, class_names=eval_source.class_names
        )
        if calibration_manifest
        else eval_source
    )
    export_dir = os.fspath(export_dir or os.path.join(model_dir, run_folder.EXPORT_DIR))
    _use_saved_thresholds(model_dir, export_dir, eval_source.class_names, kwargs)
    return export_model(model, export_dir, eval_source, calibration_source, **kwargs)


def _use_saved_thresholds(folder, export_dir, class_names, kwargs) -> None:
    """Passes the folder's `thresholds.json` on (unless `thresholds` is given)
    and copies it next to the exports."""
    path = os.path.join(folder, run_folder.THRESHOLDS_FILE)
    if kwargs.get("thresholds") is not None or not os.path.exists(path):
        return
    kwargs["thresholds"] = run_folder.load_thresholds(path, class_names)
    os.makedirs(export_dir, exist_ok=True)
    shutil.copyfile(path, os.path.join(export_dir, run_folder.THRESHOLDS_FILE))


def _check_arguments(
    variants,
    max_float32_delta,
    map_budgets,
    num_eval_images,
    num_calibration_images,
    eval_source,
    model,
) -> dict:
    """Validates `export_model`'s arguments; returns the full mAP budgets."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants or len(set(variants)) != len(variants):
        raise UserError(
            f"`variants` must be distinct names from {VARIANTS}. Received: "
            f"variants={list(variants)}"
        )
    if not max_float32_delta >= 0:
        raise UserError(
            f"`max_float32_delta` must be >= 0. Received: max_float32_delta="
            f"{max_float32_delta}"
        )
    budgets = resolve_budgets(map_budgets)
    if num_eval_images is not None and num_eval_images < 1:
        raise UserError(
            f"`num_eval_images` must be >= 1 or None. Received: num_eval_images="
            f"{num_eval_images}"
        )
    if num_calibration_images < 1:
        raise UserError(
            "`num_calibration_images` must be >= 1. Received: "
            f"num_calibration_images={num_calibration_images}"
        )
    if model.output_shape[-1] != len(eval_source.class_names):
        raise UserError(
            f"The model has {model.output_shape[-1]} outputs but the evaluation "
            f"data has {len(eval_source.class_names)} classes. Received: "
            f"class_names={eval_source.class_names}"
        )
    return budgets


def _calibration_batches(source, image_size, num_images, batch_size, seed):
    """A callable giving a seeded sample of training images, batched."""
    # A shuffle buffer of a few times the sample spreads it over a sorted
    # manifest without decoding the whole training set.
    images = source.dataset.shuffle(4 * num_images, seed=seed).take(num_images)
    batches = data.build_dataset(images, image_size, batch_size, training=False)
    return lambda: (images for images, _ in batches.as_numpy_iterator())


def _input_entry(tflite: TFLiteModel) -> dict:
    entry = {"dtype": tflite.input_dtype.name}
    if tflite.input_quantization is not None:
        entry["scale"], entry["zero_point"] = tflite.input_quantization
    return entry


def _output_entry(tflite: TFLiteModel) -> dict:
    (name,) = tflite.output_names
    entry = {"name": name, "dtype": tflite.output_dtypes[name].name}
    if tflite.output_quantization[name] is not None:
        entry["scale"], entry["zero_point"] = tflite.output_quantization[name]
    return entry


def _count(num_examples: int | None, limit: int | None) -> int | None:
    if num_examples is None:
        return limit
    return min(num_examples, limit) if limit else num_examples


def _bar(name: str, total: int | None, enabled: bool) -> tqdm:
    return tqdm(total=total, desc=f"{name:>12s}", unit="img", disable=not enabled)
