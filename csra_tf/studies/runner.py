"""Running a series of configs over seeds, resumably, and summarising it.

A study is a list of `Point`s (a label, the value it plots at, and overrides of
one base `TrainConfig`). Every (point, seed) trains into
`<workdir>/<point>/seed_<seed>/`; a run whose `metrics.json` exists is read
back, not trained again, so an interrupted study continues where it stopped
(and an interrupted run resumes from its own backup). The study then writes
`runs.csv` (one row per run), `results.csv` (mean and std over seeds per point)
and a plot into `<workdir>`.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from csra_tf.config import TrainConfig
from csra_tf.errors import UserError
from csra_tf.run_folder import METRICS_FILE, read_json
from csra_tf.studies.plotting import plot_summary
from csra_tf.training import train

RUNS_FILE = "runs.csv"
RESULTS_FILE = "results.csv"
SUMMARY_METRICS = ("mAP", "CF1", "OF1")
"""Metrics (fractions in [0, 1], as in metrics.json) kept per run and summarised."""

TrainFn = Callable[[TrainConfig], Any]


@dataclasses.dataclass(frozen=True)
class Point:
    """One setting of a study.

    Args:
        label: folder name and legend entry, e.g. `"lam_0.1"`.
        value: what the point is plotted at: a number (line plot) or a string
            (bar chart).
        overrides: `TrainConfig` fields that differ from the base config.
    """

    label: str
    value: float | str
    overrides: Mapping[str, Any]


def study_base(base: TrainConfig) -> TrainConfig:
    """Shares the embedded dataset between a study's runs.

    Args:
        base: the study's base config; `workdir` is the study folder.

    Returns:
        `base` with `data_dir` set to `<workdir>/data` when the dataset is the
        embedded shapes data and no `data_dir` was given (otherwise every run
        would generate its own copy in its own folder).
    """
    if base.dataset == "shapes" and not base.data_dir:
        return dataclasses.replace(base, data_dir=os.path.join(base.workdir, "data"))
    return base


def run_config(base: TrainConfig, point: Point, seed: int) -> TrainConfig:
    """The config of one (point, seed) run of a study.

    Args:
        base: the study's base config (see `study_base`).
        point: the setting.
        seed: the run's seed.

    Returns:
        `base` with the point's overrides, `seed`, and the workdir
        `<base.workdir>/<point.label>/seed_<seed>`.
    """
    workdir = os.path.join(base.workdir, point.label, f"seed_{seed}")
    return dataclasses.replace(base, **point.overrides, seed=seed, workdir=workdir)


def _check_study(points: Sequence[Point], seeds: Sequence[int]) -> list[int]:
    if not points:
        raise UserError(f"A study needs at least one point. Received: {points}")
    labels = [p.label for p in points]
    if len(set(labels)) != len(labels):
        raise UserError(f"Point labels must be distinct. Received: labels={labels}")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise UserError(
            f"`seeds` must be distinct ints >= 0, at least one. Received: seeds={seeds}"
        )
    return seeds


def run_series(
    base: TrainConfig,
    points: Sequence[Point],
    seeds: Sequence[int] = (0,),
    train_fn: TrainFn | None = None,
) -> list[dict]:
    """Trains every (point, seed) not yet finished; returns one row per run.

    Args:
        base: the base config; its `workdir` is the study folder.
        points: the settings to train.
        seeds: seeds to repeat every point with.
        train_fn: trains one config and writes `metrics.json` into its workdir;
            defaults to `csra_tf.training.train`.

    Returns:
        Rows `{"point", "value", "seed", "mAP", "CF1", "OF1", "workdir"}` in
        point-then-seed order, metrics as fractions.
    """
    seeds = _check_study(points, seeds)
    train_fn = train_fn or train
    base = study_base(base)
    os.makedirs(base.workdir, exist_ok=True)
    rows = []
    for point in points:
        for seed in seeds:
            config = run_config(base, point, seed)
            path = os.path.join(config.workdir, METRICS_FILE)
            if not os.path.exists(path):
                train_fn(config)
            if not os.path.exists(path):
                raise UserError(
                    f"The run wrote no {METRICS_FILE}. Received: "
                    f"workdir={config.workdir}"
                )
            metrics = read_json(path)
            row = {"point": point.label, "value": point.value, "seed": seed}
            row.update({name: float(metrics[name]) for name in SUMMARY_METRICS})
            row["workdir"] = config.workdir
            rows.append(row)
    return rows


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value).

    Args:
        values: one number per seed.

    Returns:
        `(mean, std)`.
    """
    values = np.asarray(values, np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), std


def summarise(rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Per point (in first-seen order): seeds, mean and std of each metric.

    Args:
        rows: the rows of `run_series`.

    Returns:
        Rows `{"point", "value", "num_seeds", "mAP_mean", "mAP_std", ...,
        "mAP_per_seed"}`; `mAP_per_seed` joins the per-seed mAPs with `;`.
    """
    by_point: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_point.setdefault(row["point"], []).append(row)
    summary = []
    for label, runs in by_point.items():
        entry = {"point": label, "value": runs[0]["value"], "num_seeds": len(runs)}
        for name in SUMMARY_METRICS:
            entry[f"{name}_mean"], entry[f"{name}_std"] = mean_std(
                [r[name] for r in runs]
            )
        entry["mAP_per_seed"] = ";".join(f"{r['mAP']:.6f}" for r in runs)
        summary.append(entry)
    return summary


def write_csv(path: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Writes dict rows (same keys) as CSV with a header.

    Args:
        path: output file.
        rows: the rows; the first row's keys are the columns.
    """
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    k: f"{v:.6f}" if isinstance(v, float) and math.isfinite(v) else v
                    for k, v in row.items()
                }
            )


def format_summary(summary: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of `summarise` rows, metrics in percent.

    Args:
        summary: the rows of `summarise`.

    Returns:
        One line per point: label, seeds, mAP, CF1 and OF1 as mean ± std.
    """
    width = max(len("point"), *(len(s["point"]) for s in summary))
    header = f"{'point':<{width}}  seeds  " + "  ".join(
        f"{name:>13s}" for name in SUMMARY_METRICS
    )
    lines = [header]
    for s in summary:
        cells = "  ".join(
            f"{100 * s[f'{n}_mean']:6.2f} ± {100 * s[f'{n}_std']:4.2f}"
            for n in SUMMARY_METRICS
        )
        lines.append(f"{s['point']:<{width}}  {s['num_seeds']:5d}  {cells}")
    return "\n".join(lines)


def run_study(
    base: TrainConfig,
    points: Sequence[Point],
    seeds: Sequence[int],
    name: str,
    xlabel: str,
    title: str,
    train_fn: TrainFn | None = None,
) -> list[dict]:
    """`run_series`, then `runs.csv`, `results.csv` and `<name>.png` in the workdir.

    Args:
        base: the base config; its `workdir` is the study folder.
        points: the settings to train.
        seeds: seeds to repeat every point with.
        name: the plot's file stem.
        xlabel: the plot's x-axis label.
        title: the plot's title.
        train_fn: see `run_series`.

    Returns:
        The `summarise` rows.
    """
    rows = run_series(base, points, seeds, train_fn=train_fn)
    summary = summarise(rows)
    write_csv(os.path.join(base.workdir, RUNS_FILE), rows)
    write_csv(os.path.join(base.workdir, RESULTS_FILE), summary)
    plot_summary(os.path.join(base.workdir, f"{name}.png"), summary, xlabel, title)
    return summary
