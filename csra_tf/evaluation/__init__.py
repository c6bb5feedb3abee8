"""Evaluating a finished run: the paper's metrics and calibrated thresholds.

Public API:
    evaluate_run   re-evaluates a run folder's model on its validation data
"""

from csra_tf.evaluation.evaluate_run import evaluate_run

__all__ = ["evaluate_run"]
