"""Multi-label metrics: the paper's evaluation, a streaming mAP, thresholds and
the pointing game.

Public API:
    evaluate              mAP, CP, CR, CF1, OP, OR, OF1 (+ top-3) and per-class AP
    average_precision     AP of one class
    precision_recall      per-class and overall precision / recall
    sigmoid               float64 NumPy sigmoid
    MeanAveragePrecision  streaming Keras metric, same mAP as `evaluate`
    calibrate_thresholds  per-class F1-maximising thresholds
    calibration_summary   P/R/F1 at 0.5, calibrated and cross-fitted
    format_table          the paper's table columns as text
    TABLE_COLUMNS         their names
"""

from csra_tf.metrics.evaluation import (
    average_precision,
    evaluate,
    precision_recall,
    sigmoid,
)
from csra_tf.metrics.streaming import MeanAveragePrecision
from csra_tf.metrics.table import TABLE_COLUMNS, format_table
from csra_tf.metrics.thresholds import calibrate_thresholds, calibration_summary

__all__ = [
    "TABLE_COLUMNS",
    "MeanAveragePrecision",
    "average_precision",
    "calibrate_thresholds",
    "calibration_summary",
    "evaluate",
    "format_table",
    "precision_recall",
    "sigmoid",
]
