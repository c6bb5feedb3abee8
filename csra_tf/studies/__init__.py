"""Studies: the paper's ablations, the CSRA-vs-GAP comparison, Table 1 and the
attention report of a run.

Public API:
    Point                   one setting of a study (label, plotted value, overrides)
    run_series              trains every (point, seed) not yet finished (resumable)
    run_study               run_series + runs.csv, results.csv and a plot
    summarise               mean and std over seeds per point
    format_summary          summarise rows as a plain-text table
    lambda_sweep            CSRA lambda (Fig. 5)
    head_sweep              number of heads H (Table 7)
    normalization_ablation  classifier normalisation on / off (Table 8)
    pooling_ablation        average vs spatial vs CSRA (Table 6)
    compare_heads           CSRA vs GAP over paired seeds -> CSV + Markdown
    LAMBDAS, HEAD_COUNTS    the paper's sweep values
    training_free_run       Table 1 of a GAP run: training-free max pooling vs lambda
    attention_report        overlays and the pointing game of a CSRA run
"""

from csra_tf.studies.attention_report import attention_report
from csra_tf.studies.compare import compare_heads, comparison_markdown
from csra_tf.studies.runner import (
    RESULTS_FILE,
    RUNS_FILE,
    Point,
    format_summary,
    mean_std,
    run_config,
    run_series,
    run_study,
    summarise,
)
from csra_tf.studies.sweeps import (
    HEAD_COUNTS,
    LAMBDAS,
    head_points,
    head_sweep,
    lambda_points,
    lambda_sweep,
    normalization_ablation,
    normalization_points,
    pooling_ablation,
    pooling_points,
)
from csra_tf.studies.training_free_table import training_free_run

__all__ = [
    "HEAD_COUNTS",
    "LAMBDAS",
    "RESULTS_FILE",
    "RUNS_FILE",
    "Point",
    "attention_report",
    "compare_heads",
    "comparison_markdown",
    "format_summary",
    "head_points",
    "head_sweep",
    "lambda_points",
    "lambda_sweep",
    "mean_std",
    "normalization_ablation",
    "normalization_points",
    "pooling_ablation",
    "pooling_points",
    "run_config",
    "run_series",
    "run_study",
    "summarise",
    "training_free_run",
]
