"""The paper's ablations (§4.3), each a series of configs from one base config.

- `lambda_sweep`: CSRA's lambda (Fig. 5).
- `head_sweep`: the number of attention heads H with the paper's temperatures
  (Table 7).
- `normalization_ablation`: unit-norm classifiers on / off (Table 8).
- `pooling_ablation`: average only (GAP), spatial attention only, and both, i.e.
  CSRA (Table 6).

Every point keeps the base config's training budget (epochs, learning rates,
data, seed list) and changes only the head settings named here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from csra_tf.config import DEFAULT_TEMPERATURES, TrainConfig
from csra_tf.errors import UserError
from csra_tf.studies.runner import Point, TrainFn, run_study

LAMBDAS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
"""Fig. 5's lambda values."""
HEAD_COUNTS = (1, 2, 4, 6, 8)
"""Table 7's numbers of heads."""


def lambda_points(lams: Sequence[float] = LAMBDAS) -> list[Point]:
    """CSRA points `lam_<lambda>`, one per lambda.

    Args:
        lams: finite lambdas >= 0.

    Returns:
        The points.
    """
    lams = [float(lam) for lam in lams]
    if not lams or any(not math.isfinite(lam) or lam < 0 for lam in lams):
        raise UserError(
            f"`lams` must be finite numbers >= 0, at least one. Received: lams={lams}"
        )
    return [Point(f"lam_{lam:g}", lam, {"head": "csra", "lam": lam}) for lam in lams]


def head_points(head_counts: Sequence[int] = HEAD_COUNTS) -> list[Point]:
    """CSRA points `heads_<H>` with the paper's temperatures for each H.

    Args:
        head_counts: numbers of heads, each one of 1, 2, 4, 6, 8.

    Returns:
        The points.
    """
    head_counts = [int(h) for h in head_counts]
    if not head_counts or any(h not in DEFAULT_TEMPERATURES for h in head_counts):
        raise UserError(
            f"`head_counts` must be among {sorted(DEFAULT_TEMPERATURES)}. "
            f"Received: head_counts={head_counts}"
        )
    return [
        Point(f"heads_{h}", h, {"head": "csra", "num_heads": h}) for h in head_counts
    ]


def normalization_points() -> list[Point]:
    """CSRA with unit-norm classifiers (`normalized`) and without (`unnormalized`).

    Returns:
        The two points.
    """
    return [
        Point("normalized", "normalized", {"head": "csra", "normalize": True}),
        Point("unnormalized", "unnormalized", {"head": "csra", "normalize": False}),
    ]


def pooling_points() -> list[Point]:
    """Table 6's rows: `average` (GAP), `spatial` (attention only), `csra` (both).

    Returns:
        The three points.
    """
    return [
        Point("average", "average (GAP)", {"head": "gap"}),
        Point("spatial", "spatial only", {"head": "attention"}),
        Point("csra", "average + spatial (CSRA)", {"head": "csra"}),
    ]


def lambda_sweep(
    base: TrainConfig,
    lams: Sequence[float] = LAMBDAS,
    seeds: Sequence[int] = (0,),
    train_fn: TrainFn | None = None,
) -> list[dict]:
    """Trains CSRA at every lambda (paper Fig. 5); writes CSVs and `lambda.png`.

    Args:
        base: the base config; its `workdir` is the study folder.
        lams: the lambdas.
        seeds: seeds to repeat every point with.
        train_fn: see `csra_tf.studies.run_series`.

    Returns:
        The `summarise` rows, one per lambda.

    Example:
    >>> base = TrainConfig(workdir="runs/lambda")
    >>> rows = lambda_sweep(base, lams=[0.0, 0.1])  # doctest: +SKIP

    (The last line is not run as a doctest: it trains two models.)
    """
    return run_study(
        base,
        lambda_points(lams),
        seeds,
        "lambda",
        "lambda",
        f"CSRA lambda sweep (H={base.num_heads})",
        train_fn,
    )


def head_sweep(
    base: TrainConfig,
    head_counts: Sequence[int] = HEAD_COUNTS,
    seeds: Sequence[int] = (0,),
    train_fn: TrainFn | None = None,
) -> list[dict]:
    """Trains CSRA with H heads for every H (paper Table 7); writes `heads.png`.

    Args:
        base: the base config (its `lam` is kept); `workdir` is the study folder.
        head_counts: numbers of heads.
        seeds: seeds to repeat every point with.
        train_fn: see `csra_tf.studies.run_series`.

    Returns:
        The `summarise` rows, one per H.
    """
    return run_study(
        base,
        head_points(head_counts),
        seeds,
        "heads",
        "heads H",
        f"CSRA heads (lambda={base.lam:g})",
        train_fn,
    )


def normalization_ablation(
    base: TrainConfig, seeds: Sequence[int] = (0,), train_fn: TrainFn | None = None
) -> list[dict]:
    """CSRA with and without classifier normalisation (paper Table 8).

    Args:
        base: the base config; `workdir` is the study folder.
        seeds: seeds to repeat every point with.
        train_fn: see `csra_tf.studies.run_series`.

    Returns:
        The `summarise` rows, `normalized` then `unnormalized`.
    """
    return run_study(
        base,
        normalization_points(),
        seeds,
        "normalization",
        "classifier",
        f"Classifier normalisation (H={base.num_heads}, lambda={base.lam:g})",
        train_fn,
    )


def pooling_ablation(
    base: TrainConfig, seeds: Sequence[int] = (0,), train_fn: TrainFn | None = None
) -> list[dict]:
    """Average only vs spatial only vs CSRA (paper Table 6).

    Args:
        base: the base config (its `num_heads` and `lam` are kept for the
            attention heads); `workdir` is the study folder.
        seeds: seeds to repeat every point with.
        train_fn: see `csra_tf.studies.run_series`.

    Returns:
        The `summarise` rows: `average`, `spatial`, `csra`.
    """
    return run_study(
        base,
        pooling_points(),
        seeds,
        "pooling",
        "pooling",
        f"Average vs spatial pooling (H={base.num_heads}, lambda={base.lam:g})",
        train_fn,
    )
