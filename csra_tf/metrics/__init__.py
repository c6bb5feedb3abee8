"""Multi-label metrics: offline evaluation and an exact streaming mAP."""

from csra_tf.metrics.evaluation import (
    average_precision,
    evaluate,
    precision_recall,
    sigmoid,
)
from csra_tf.metrics.streaming import MeanAveragePrecision

__all__ = [
    "MeanAveragePrecision",
    "average_precision",
    "evaluate",
    "precision_recall",
    "sigmoid",
]
