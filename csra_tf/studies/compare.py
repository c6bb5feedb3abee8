"""The embedded result: CSRA against the GAP baseline, same budget, several seeds.

Both heads train from the same base config (data, backbone, epochs, learning
rates); only the head differs. Seeds are paired: seed `s` of both heads sees the
same data and the same backbone initialisation, so the per-seed difference is
the effect of the head.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from csra_tf.config import TrainConfig
from csra_tf.studies.runner import (
    RUNS_FILE,
    Point,
    TrainFn,
    mean_std,
    run_series,
    study_base,
    write_csv,
)

COMPARISON_CSV = "comparison.csv"
COMPARISON_MD = "comparison.md"
DEFAULT_SEEDS = (0, 1, 2)


def compare_heads(
    base: TrainConfig,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    num_heads: int = 1,
    lam: float = 0.1,
    train_fn: TrainFn | None = None,
) -> dict:
    """Trains GAP and CSRA over `seeds`; writes the per-seed table as CSV and MD.

    Runs go to `<workdir>/gap/seed_<s>` and `<workdir>/csra/seed_<s>` (finished
    ones are reused). Writes `runs.csv`, `comparison.csv` (fractions; per-seed
    rows, then `mean` and `std` rows) and `comparison.md` (percent).

    Args:
        base: the shared config; `workdir` is the comparison folder.
        seeds: paired seeds (at least 3 recommended for a std).
        num_heads: CSRA heads.
        lam: CSRA lambda.
        train_fn: see `csra_tf.studies.run_series`.

    Returns:
        `{"seeds", "gap", "csra", "difference"}` with per-seed mAP lists (the
        difference is CSRA - GAP) and `"summary"`: `{name: (mean, std)}`.

    Example:
    >>> base = TrainConfig(workdir="runs/compare")
    >>> result = compare_heads(base, seeds=[0, 1, 2])  # doctest: +SKIP

    (The last line is not run as a doctest: it trains six models.)
    """
    points = [
        Point("gap", "GAP", {"head": "gap"}),
        Point("csra", "CSRA", {"head": "csra", "num_heads": num_heads, "lam": lam}),
    ]
    rows = run_series(base, points, seeds, train_fn=train_fn)
    seeds = [r["seed"] for r in rows if r["point"] == "gap"]
    gap = [r["mAP"] for r in rows if r["point"] == "gap"]
    csra = [r["mAP"] for r in rows if r["point"] == "csra"]
    difference = [c - g for c, g in zip(csra, gap, strict=True)]
    result = {
        "seeds": seeds,
        "gap": gap,
        "csra": csra,
        "difference": difference,
        "summary": {
            name: mean_std(values)
            for name, values in (
                ("gap", gap),
                ("csra", csra),
                ("difference", difference),
            )
        },
    }
    write_csv(os.path.join(base.workdir, RUNS_FILE), rows)
    table = [
        {"seed": s, "gap_mAP": g, "csra_mAP": c, "difference": d}
        for s, g, c, d in zip(seeds, gap, csra, difference, strict=True)
    ]
    for i, label in enumerate(("mean", "std")):
        table.append(
            {
                "seed": label,
                **{
                    column: result["summary"][name][i]
                    for column, name in (
                        ("gap_mAP", "gap"),
                        ("csra_mAP", "csra"),
                        ("difference", "difference"),
                    )
                },
            }
        )
    write_csv(os.path.join(base.workdir, COMPARISON_CSV), table)
    with open(os.path.join(base.workdir, COMPARISON_MD), "w", encoding="utf-8") as f:
        f.write(comparison_markdown(study_base(base), result, num_heads, lam))
    return result


def comparison_markdown(
    base: TrainConfig, result: dict, num_heads: int, lam: float
) -> str:
    """The comparison as a Markdown table, in percent.

    Args:
        base: the shared config (for the description of the budget).
        result: the dict returned by `compare_heads`.
        num_heads: CSRA heads.
        lam: CSRA lambda.

    Returns:
        Markdown text.
    """
    summary = result["summary"]
    wins = sum(d > 0 for d in result["difference"])
    lines = [
        f"# CSRA (H={num_heads}, λ={lam:g}) vs GAP on {base.dataset}",
        "",
        f"Same budget for both heads: backbone `{base.backbone}`, "
        f"{base.image_size} px, {base.epochs} epochs, batch {base.batch_size}, "
        f"lr {base.lr:g} (head ×{base.head_lr_multiplier:g}), "
        f"{base.lr_schedule} schedule"
        + (
            f", {base.num_train} training / {base.num_val} validation images"
            if base.dataset == "shapes"
            else ""
        )
        + ". CSRA classifiers "
        + ("L2-normalised" if base.normalize else "not normalised")
        + ". Validation mAP (%); seeds are paired (same data and initialisation).",
        "",
        "| seed | GAP mAP | CSRA mAP | CSRA − GAP |",
        "|---:|---:|---:|---:|",
    ]
    for seed, g, c, d in zip(
        result["seeds"],
        result["gap"],
        result["csra"],
        result["difference"],
        strict=True,
    ):
        lines.append(f"| {seed} | {100 * g:.2f} | {100 * c:.2f} | {100 * d:+.2f} |")
    cells = [
        f"{100 * summary[k][0]:.2f} ± {100 * summary[k][1]:.2f}"
        for k in ("gap", "csra")
    ]
    diff_mean, diff_std = summary["difference"]
    lines.append(
        f"| mean ± std | {cells[0]} | {cells[1]} | "
        f"{100 * diff_mean:+.2f} ± {100 * diff_std:.2f} |"
    )
    lines += [
        "",
        f"CSRA is better on {wins} of {len(result['seeds'])} seeds "
        "(std: sample standard deviation over seeds).",
        "",
    ]
    return "\n".join(lines)
