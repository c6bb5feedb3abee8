"""The paper's table columns as plain text (percentages)."""

from __future__ import annotations

TABLE_COLUMNS = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1")
"""The columns of the paper's tables, in order."""


def format_table(metrics: dict) -> str:
    """Formats the paper's table columns as percentages, all labels and top-3.

    Args:
        metrics: the dict returned by `csra_tf.metrics.evaluate`.

    Returns:
        A plain-text table with rows `all` and `top-3`.
    """
    header = f"{'':6s}" + "".join(f"{c:>8s}" for c in TABLE_COLUMNS)
    rows = [header]
    for label, suffix in (("all", ""), ("top-3", "_top3")):
        rows.append(
            f"{label:6s}"
            + "".join(f"{100 * metrics[c + suffix]:8.2f}" for c in TABLE_COLUMNS)
        )
    return "\n".join(rows)
