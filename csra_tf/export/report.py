"""The export report: verification gates, targets, JSON file and text table."""

from __future__ import annotations

import math
from collections.abc import Mapping

from csra_tf.errors import UserError
from csra_tf.export.tflite import QUANTIZED_VARIANTS

DEFAULT_MAX_FLOAT32_DELTA = 1e-4
"""Largest |delta probability| of the SavedModel and float32 TFLite vs Keras."""

DEFAULT_MAP_BUDGETS = {"float16": 0.25, "dynamic_int8": 1.0, "int8": 1.0}
"""mAP loss (points) each quantised variant may have against the Keras model."""

TARGETS = {
    "int8_size_ratio": 0.3,
    "int8_map_loss_points": 1.0,
    "int8_latency_ratio": 0.6,
}
"""Targets reported (not enforced) for the full-integer model vs float32."""


def resolve_budgets(map_budgets: Mapping[str, float] | None) -> dict[str, float]:
    """`DEFAULT_MAP_BUDGETS` updated with the given budgets.

    Args:
        map_budgets: mAP loss budgets (points) by quantised variant; a
            negative budget demands a gain (useful only to test the gate).

    Returns:
        A budget for every quantised variant.
    """
    budgets = dict(DEFAULT_MAP_BUDGETS)
    for name, budget in (map_budgets or {}).items():
        if name not in QUANTIZED_VARIANTS or not math.isfinite(budget):
            raise UserError(
                f"`map_budgets` maps {QUANTIZED_VARIANTS} to finite points. "
                f"Received: map_budgets={dict(map_budgets)}"
            )
        budgets[name] = float(budget)
    return budgets


def apply_gate(
    name: str,
    entry: dict,
    keras_map: float,
    max_float32_delta: float,
    budgets: Mapping[str, float],
) -> str | None:
    """Judges one export and records its mAP loss and gate in `entry`.

    The SavedModel and float32 variant are judged by their max |delta
    probability|, the quantised variants by their mAP loss in points.

    Args:
        name: `"saved_model"` or a TFLite variant.
        entry: the export's report entry with `max_abs_delta_probability` and
            `mAP`; receives `mAP_loss_points`, `gate` and `passed`.
        keras_map: the Keras model's mAP on the same images.
        max_float32_delta: the float gate.
        budgets: mAP budgets of the quantised variants (`resolve_budgets`).

    Returns:
        A failure message, or None when the export passed.
    """
    entry["mAP_loss_points"] = 100.0 * (keras_map - entry["mAP"])
    failure = None
    if name in budgets:
        entry["gate"] = {"mAP_loss_points": budgets[name]}
        if entry["mAP_loss_points"] > budgets[name]:
            failure = (
                f"{name}: mAP loss {entry['mAP_loss_points']:.3f} points > budget "
                f"{budgets[name]:g}"
            )
    else:
        entry["gate"] = {"max_abs_delta_probability": max_float32_delta}
        delta = entry["max_abs_delta_probability"]
        if delta > max_float32_delta:
            failure = (
                f"{name}: max |delta probability| {delta:.3g} > {max_float32_delta:g}"
            )
    entry["passed"] = failure is None
    return failure


def add_ratios(variants: dict) -> None:
    """Adds each variant's size and latency relative to the float32 variant.

    Args:
        variants: the report's `variants` entries (updated in place).
    """
    base = variants.get("float32", {})
    if "size_bytes" not in base:
        return
    for entry in variants.values():
        if "size_bytes" in entry:
            entry["size_ratio_to_float32"] = entry["size_bytes"] / base["size_bytes"]
            entry["latency_ratio_to_float32"] = (
                entry["median_latency_ms"] / base["median_latency_ms"]
            )


def targets_summary(variants: dict) -> dict:
    """The int8 targets with the measured figures and whether they are met.

    Args:
        variants: the report's `variants` entries, after `add_ratios`.

    Returns:
        `{target name: {"target", "measured", "met"}}` (None when not measured).
    """
    int8 = variants.get("int8", {})
    measured = {
        "int8_size_ratio": int8.get("size_ratio_to_float32"),
        "int8_map_loss_points": int8.get("mAP_loss_points"),
        "int8_latency_ratio": int8.get("latency_ratio_to_float32"),
    }
    return {
        name: {
            "target": limit,
            "measured": measured[name],
            "met": None if measured[name] is None else measured[name] <= limit,
        }
        for name, limit in TARGETS.items()
    }


# CPU instruction sets that decide which TFLite kernels run (XNNPACK, ruy):
# /proc/cpuinfo flag -> name.
_INSTRUCTION_SETS = {
    "avx2": "AVX2",
    "fma": "FMA",
    "avx_vnni": "AVX-VNNI",
    "avx512f": "AVX-512F",
    "avx512bw": "AVX-512BW",
    "avx512_vnni": "AVX-512-VNNI",
    "avx512_bf16": "AVX-512-BF16",
    "amx_int8": "AMX-INT8",
    "asimd": "NEON",
    "asimddp": "NEON-DOTPROD",
}


INT8_DOT_PRODUCT_SETS = ("AVX-VNNI", "AVX-512-VNNI", "AMX-INT8", "NEON-DOTPROD")
"""Instruction sets with int8 dot products, which make int8 kernels fast."""


def instruction_sets(cpuinfo_path: str = "/proc/cpuinfo") -> list[str]:
    """The vector instruction sets of this CPU that matter for TFLite latency.

    The same int8 model can be slower than float32 on an AVX2-only CPU and
    several times faster on one with AVX-512 VNNI, so the report names them.

    Args:
        cpuinfo_path: the Linux CPU description to read.

    Returns:
        Names such as `["AVX2", "FMA", "AVX-512F", "AVX-512-VNNI"]`; empty when
        the file cannot be read (another OS).
    """
    try:
        with open(cpuinfo_path, encoding="utf-8") as f:
            flags = set()
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags.update(line.split(":", 1)[1].split())
    except OSError:
        return []
    return [name for flag, name in _INSTRUCTION_SETS.items() if flag in flags]


def format_report(report: dict) -> str:
    """The report as a text table (one row per export).

    Args:
        report: a report from `export_model`.

    Returns:
        The table, with a final PASSED / FAILED line.
    """
    header = (
        f"{'export':14s}{'size MB':>9s}{'x f32':>7s}{'max|dp|':>10s}{'mAP':>8s}"
        f"{'loss pt':>9s}{'ms/img':>8s}{'x f32':>7s}  gate"
    )
    rows = [header]
    keras = report.get("keras", {})
    rows.append(
        f"{'keras':14s}{'':9s}{'':7s}{'':10s}{_pct(keras.get('mAP'))}{'':9s}"
        f"{_num(keras.get('median_latency_ms'), 8, '.3f')}"
    )
    entries = {}
    if "saved_model" in report:
        entries["saved_model"] = report["saved_model"]
    entries.update(report.get("variants", {}))
    for name, entry in entries.items():
        if "error" in entry:
            rows.append(f"{name:14s}conversion failed: {entry['error']}")
            continue
        size = entry.get("size_bytes")
        rows.append(
            f"{name:14s}{_num(None if size is None else size / 2**20, 9, '.3f')}"
            f"{_num(entry.get('size_ratio_to_float32'), 7, '.2f')}"
            f"{_num(entry.get('max_abs_delta_probability'), 10, '.2e')}"
            f"{_pct(entry.get('mAP'))}{_num(entry.get('mAP_loss_points'), 9, '.2f')}"
            f"{_num(entry.get('median_latency_ms'), 8, '.3f')}"
            f"{_num(entry.get('latency_ratio_to_float32'), 7, '.2f')}"
            f"  {'pass' if entry.get('passed') else 'FAIL'}"
        )
    for name, target in report.get("targets", {}).items():
        if target["measured"] is not None:
            verdict = "met" if target["met"] else "NOT met"
            rows.append(
                f"target {name} <= {target['target']:g}: "
                f"{target['measured']:.3f} ({verdict})"
            )
    if report.get("cpu_instruction_sets") is not None:
        sets = ", ".join(report["cpu_instruction_sets"]) or "unknown"
        rows.append(
            f"latencies measured with {report.get('num_threads', '?')} thread(s) "
            f"on a CPU with {sets}"
        )
    advice = int8_latency_advice(report)
    if advice:
        rows.append(advice)
    rows.append("PASSED" if report.get("passed") else "FAILED")
    return "\n".join(rows)


def int8_latency_advice(report: dict) -> str | None:
    """Why the int8 model is not faster than float32 here, when that is so.

    Without int8 dot-product instructions (`INT8_DOT_PRODUCT_SETS`), XNNPACK's
    x86 int8 kernels widen int8 to int16 and multiply-add with `vpmaddwd`:
    16 products per cycle, as many as float32 FMA gives, so int8 cannot be
    much faster and its per-tile requantisation makes it a little slower.

    Args:
        report: a report from `export_model`.

    Returns:
        One line for the table, or None when int8 was faster, was not
        measured, or the CPU has dot-product instructions.
    """
    ratio = report.get("variants", {}).get("int8", {}).get("latency_ratio_to_float32")
    sets = report.get("cpu_instruction_sets")
    if ratio is None or ratio < 1.0 or not sets:
        return None
    if any(name in sets for name in INT8_DOT_PRODUCT_SETS):
        return None
    return (
        f"int8 is not faster than float32 here ({ratio:.2f}x): this CPU has no int8 "
        "dot-product instructions (VNNI, AMX, ARM dot product), and without them "
        "int8 kernels multiply-add no more values per cycle than float32 FMA; int8 "
        "still cuts the size 4x and is faster on phones and VNNI CPUs"
    )


def _num(value, width: int, spec: str) -> str:
    return f"{'-':>{width}s}" if value is None else f"{value:>{width}{spec}}"


def _pct(value) -> str:
    return _num(None if value is None else 100.0 * value, 8, ".2f")
