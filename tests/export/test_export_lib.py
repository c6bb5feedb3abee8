"""export_model: files, report, gates; export_workdir and the csra-export CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from csra_tf.data import Source, write_manifest
from csra_tf.data.shapes import SHAPE_CLASSES
from csra_tf.export import ExportVerificationError, export_model, export_model_file
from csra_tf.export.report import apply_gate, format_report
from csra_tf.export.tflite import VARIANTS
from csra_tf.inference import read_tflite_metadata
from tests.exported_model import CLASS_NAMES

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_export_writes_every_file_and_the_report(exported):
    export_dir, report = exported
    names = set(os.listdir(export_dir))
    assert {f"model_{v}.tflite" for v in VARIANTS} <= names
    assert {"saved_model", "classes.json", "export_report.json"} <= names
    assert json.loads((export_dir / "classes.json").read_text()) == CLASS_NAMES
    on_disk = json.loads((export_dir / "export_report.json").read_text())
    assert on_disk["passed"] is True and on_disk["failures"] == []
    assert on_disk["num_eval_images"] == 48
    assert 0.5 < on_disk["keras"]["mAP"] <= 1.0
    assert on_disk["saved_model"]["max_abs_delta_probability"] <= 1e-5
    assert on_disk["saved_model"]["signatures"] == ["attention", "serving_default"]
    for variant in VARIANTS:
        entry = on_disk["variants"][variant]
        size = os.path.getsize(export_dir / f"model_{variant}.tflite")
        assert entry["size_bytes"] == size
        assert entry["size_ratio_to_float32"] == pytest.approx(
            size / on_disk["variants"]["float32"]["size_bytes"]
        )
        assert 0 <= entry["max_abs_delta_probability"] < 0.1
        assert 0 < entry["mAP"] <= 1
        assert entry["mAP_loss_points"] == pytest.approx(
            100 * (on_disk["keras"]["mAP"] - entry["mAP"])
        )
        assert entry["median_latency_ms"] > 0 and entry["passed"]
        assert not any(op.startswith("Flex") for op in entry["ops"])
    assert on_disk["variants"]["float32"]["max_abs_delta_probability"] <= 1e-4
    assert on_disk["variants"]["int8"]["input"] == {
        "dtype": "uint8",
        "scale": 1.0,
        "zero_point": 0,
    }
    assert on_disk["variants"]["int8"]["output"]["dtype"] == "uint8"
    assert on_disk["variants"]["float16"]["output"] == {
        "name": "logits",
        "dtype": "float32",
    }
    assert on_disk["tflite_metadata"] == {"labels": CLASS_NAMES, "thresholds": None}
    assert on_disk["variants"]["int8"]["size_ratio_to_float32"] < 0.3
    assert set(on_disk["targets"]) == {
        "int8_size_ratio",
        "int8_map_loss_points",
        "int8_latency_ratio",
    }
    table = format_report(report)
    assert table.splitlines()[-1] == "PASSED"
    assert all(name in table for name in ("keras", "saved_model", *VARIANTS))


def test_gate_fails_on_an_impossible_budget_after_writing_the_report(
    model, sources, tmp_path
):
    eval_source, calibration_source = sources
    with pytest.raises(ExportVerificationError, match="float16: mAP loss") as error:
        export_model(
            model,
            tmp_path,
            eval_source,
            calibration_source,
            variants=["float32", "float16"],
            map_budgets={"float16": -100.0},  # would need a 100-point gain
            latency_runs=2,
            progress=False,
        )
    report = json.loads((tmp_path / "export_report.json").read_text())
    assert report == json.loads(json.dumps(error.value.report))
    assert report["passed"] is False
    assert report["variants"]["float32"]["passed"] is True
    assert report["variants"]["float16"]["passed"] is False
    assert report["variants"]["float16"]["gate"] == {"mAP_loss_points": -100.0}
    assert len(report["failures"]) == 1
    assert format_report(report).splitlines()[-1] == "FAILED"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"variants": ["float32", "int4"]}, "Received: variants="),
        ({"variants": []}, "Received: variants="),
        ({"max_float32_delta": -1.0}, "Received: max_float32_delta=-1.0"),
        ({"map_budgets": {"float32": 1.0}}, "Received: map_budgets="),
        ({"num_eval_images": 0}, "Received: num_eval_images=0"),
        ({"num_calibration_images": 0}, "Received: num_calibration_images=0"),
    ],
)
def test_export_arguments_are_checked(model, sources, tmp_path, kwargs, match):
    eval_source, calibration_source = sources
    with pytest.raises(ValueError, match=match):
        export_model(model, tmp_path, eval_source, calibration_source, **kwargs)


def test_export_model_file_from_manifests(classes_dir, sources, tmp_path):
    eval_source, _ = sources
    records = []
    for i, (image, target) in enumerate(eval_source.dataset.take(12)):
        path = tmp_path / f"{i}.png"
        Image.fromarray(image.numpy()).save(path)
        labels = [n for n, t in zip(CLASS_NAMES, target.numpy(), strict=True) if t == 1]
        records.append({"image": path.name, "labels": labels})
    write_manifest(tmp_path / "val.jsonl", records)
    report = export_model_file(
        classes_dir / "model.keras",
        tmp_path / "val.jsonl",
        export_dir=tmp_path / "out",
        variants=["float32"],
        latency_runs=2,
        progress=False,
    )
    assert report["num_eval_images"] == 12 and report["passed"]
    assert report["class_names"] == CLASS_NAMES  # the model's classes.json order
    assert (tmp_path / "out" / "model_float32.tflite").exists()


@pytest.mark.slow
def test_csra_export_cli_on_a_workdir(model, tmp_path):
    from csra_tf import run_folder
    from csra_tf.config import TrainConfig

    workdir = tmp_path / "run"
    workdir.mkdir()
    run_folder.write_config(
        TrainConfig(
            workdir=str(workdir),
            num_train=32,
            num_val=24,
            shapes_image_size=32,
            image_size=32,
        )
    )
    from csra_tf.models import build_classifier

    build_classifier("tiny", num_classes=10, image_size=32).save(
        workdir / "model.keras"
    )
    class_names = list(SHAPE_CLASSES)  # the run's data: the shapes dataset
    thresholds = dict(zip(class_names, np.linspace(0.1, 0.9, 10), strict=True))
    (workdir / "thresholds.json").write_text(json.dumps(thresholds))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "csra_tf.cli.csra_export",
            f"--workdir={workdir}",
            "--variants=float32,int8",
            "--int8_map_budget=100",
            "--num_calibration_images=16",
            "--latency_runs=3",
            "--model_author=Jo Doe",
            "--model_license=CC-BY-4.0",
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    export_dir = workdir / "export"
    report = json.loads((export_dir / "export_report.json").read_text())
    assert report["num_eval_images"] == 24 and report["passed"]
    assert sorted(report["variants"]) == ["float32", "int8"]
    assert (export_dir / "thresholds.json").exists()
    assert report["tflite_metadata"]["thresholds"] == pytest.approx(
        list(thresholds.values())
    )
    metadata = read_tflite_metadata(export_dir / "model_int8.tflite")
    assert metadata.class_names == class_names
    assert (metadata.author, metadata.license) == ("Jo Doe", "CC-BY-4.0")
    np.testing.assert_allclose(metadata.thresholds, list(thresholds.values()))
    assert result.stdout.strip().splitlines()[-1] == "PASSED"

    # A failed gate: exit status 1, the table still printed, the reason on stderr.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "csra_tf.cli.csra_export",
            f"--workdir={workdir}",
            "--variants=float32,float16",
            "--float16_map_budget=-100",
            "--latency_runs=1",
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1] == "FAILED"
    assert "float16: mAP loss" in result.stderr


def test_a_failed_conversion_is_reported(model, sources, tmp_path):
    eval_source, calibration_source = sources
    empty = Source(
        dataset=calibration_source.dataset.take(0),
        class_names=calibration_source.class_names,
        num_examples=0,
    )
    (tmp_path / "model_int8.tflite").write_bytes(b"stale")
    with pytest.raises(ExportVerificationError, match="int8: conversion failed"):
        export_model(
            model, tmp_path, eval_source, empty, variants=["int8"], progress=False
        )
    report = json.loads((tmp_path / "export_report.json").read_text())
    assert "yielded no images" in report["variants"]["int8"]["error"]
    assert not (tmp_path / "model_int8.tflite").exists()


def test_apply_gate():
    budgets = {"float16": 0.5, "dynamic_int8": 1.0, "int8": 1.0}
    entry = {"max_abs_delta_probability": 2e-4, "mAP": 0.9}
    failure = apply_gate("float32", entry, 0.9, 1e-4, budgets)
    assert failure == "float32: max |delta probability| 0.0002 > 0.0001"
    assert entry["passed"] is False and entry["mAP_loss_points"] == 0.0
    entry = {"max_abs_delta_probability": 0.3, "mAP": 0.895}
    assert apply_gate("int8", entry, 0.9, 1e-4, budgets) is None
    assert entry["mAP_loss_points"] == pytest.approx(0.5) and entry["passed"]
    entry = {"max_abs_delta_probability": 0.0, "mAP": 0.88}
    failure = apply_gate("int8", entry, 0.9, 1e-4, budgets)
    assert failure == "int8: mAP loss 2.000 points > budget 1"


def test_instruction_sets_are_read_from_cpuinfo(tmp_path):
    from csra_tf.export.report import instruction_sets

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni\n"
    )
    assert instruction_sets(str(cpuinfo)) == ["AVX2", "FMA", "AVX-512F", "AVX-512-VNNI"]
    assert instruction_sets(str(tmp_path / "missing")) == []


@pytest.mark.parametrize(
    "sets, ratio, advised",
    [
        (["AVX2", "FMA"], 1.19, True),
        (["AVX2", "FMA", "AVX-512F", "AVX-512-VNNI"], 1.19, False),
        (["NEON", "NEON-DOTPROD"], 1.05, False),
        (["AVX2", "FMA"], 0.8, False),
        ([], 1.19, False),  # unknown CPU: nothing to explain
    ],
)
def test_slow_int8_is_explained_only_without_dot_products(sets, ratio, advised):
    from csra_tf.export.report import int8_latency_advice

    report = {
        "cpu_instruction_sets": sets,
        "variants": {
            "float32": {"latency_ratio_to_float32": 1.0},
            "int8": {"latency_ratio_to_float32": ratio},
        },
        "passed": True,
    }
    advice = int8_latency_advice(report)
    assert (advice is not None) == advised
    table = format_report(report).splitlines()
    assert table[-1] == "PASSED"
    if advised:
        assert table[-2] == advice and f"({ratio:.2f}x)" in advice
