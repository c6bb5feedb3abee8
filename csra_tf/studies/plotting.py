"""The studies' figures, written as PNG with matplotlib's Agg canvas (no display)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _figure(size: tuple[float, float] = (6, 4)):
    """A new figure on an Agg canvas and its one axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _save(figure, path: str) -> None:
    figure.tight_layout()
    figure.savefig(path)


def plot_summary(
    path: str, summary: Sequence[Mapping[str, Any]], xlabel: str, title: str
) -> None:
    """Plots mAP (%) mean ± std per point as a PNG (matplotlib, Agg canvas).

    Numeric point values give a line with error bars (paper Fig. 5 style),
    string values a bar chart; points are evenly spaced, labelled by value.

    Args:
        path: output PNG.
        summary: the rows of `summarise`.
        xlabel: x-axis label.
        title: figure title.
    """
    means = [100 * s["mAP_mean"] for s in summary]
    stds = [100 * s["mAP_std"] for s in summary]
    values = [s["value"] for s in summary]
    figure, axes = _figure()
    xs = list(range(len(values)))
    if all(isinstance(v, (int, float)) for v in values):
        axes.errorbar(xs, means, yerr=stds, marker="o", capsize=4)
        labels = [f"{v:g}" for v in values]
    else:
        axes.bar(xs, means, yerr=stds, capsize=4, color="tab:blue")
        labels = [str(v) for v in values]
        low = min(m - s for m, s in zip(means, stds, strict=True))
        axes.set_ylim(max(0.0, low - 5.0), min(100.0, max(means) + 5.0))
    axes.set_xticks(xs)
    axes.set_xticklabels(labels)
    axes.margins(x=0.1, y=0.2)
    for x, m, s in zip(xs, means, stds, strict=True):
        axes.annotate(
            f"{m:.1f}±{s:.1f}",
            (x, m),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
        )
    axes.set_xlabel(xlabel)
    axes.set_ylabel("mAP (%)")
    axes.set_title(f"{title} (n seeds = {summary[0]['num_seeds']})")
    axes.grid(alpha=0.3)
    _save(figure, path)


def plot_lambda_curve(path: str, result) -> None:
    """Plots mAP (%) against lambda as a PNG (matplotlib, Agg canvas).

    Args:
        path: output PNG.
        result: a `csra_tf.studies.training_free_table.TrainingFreeResult`.
    """
    lams = sorted(result.maps)
    maps = [100 * result.maps[lam] for lam in lams]
    figure, axes = _figure()
    axes.plot(lams, maps, marker="o", label="avg + lam * max")
    axes.axhline(100 * result.baseline, color="grey", linestyle="--", label="GAP")
    axes.plot(
        [result.fixed_lam],
        [100 * result.fixed],
        marker="s",
        linestyle="none",
        color="tab:red",
        label=f"fixed lam = {result.fixed_lam:g}",
    )
    axes.set_xlabel("lambda")
    axes.set_ylabel("mAP (%)")
    axes.set_title(f"Training-free max pooling: {result.name}")
    axes.grid(alpha=0.3)
    axes.legend()
    _save(figure, path)
