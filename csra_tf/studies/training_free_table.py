"""The paper's Table 1 for a trained GAP run: training-free max pooling vs lambda.

The backbone runs once over the validation data; every lambda is then scored
from the kept average- and max-pooled class scores.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from csra_tf import run_folder
from csra_tf.errors import UserError
from csra_tf.metrics import evaluate, sigmoid
from csra_tf.models import predict_dataset
from csra_tf.studies.plotting import plot_lambda_curve
from csra_tf.training_free import head_activation, pooled_scores_model

DEFAULT_LAMBDAS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0)
"""The lambda grid searched for the "varying lambda" column."""

FIXED_LAMBDA_RESNET = 0.02
FIXED_LAMBDA_OTHER = 0.2


def pooled_class_scores(
    model: keras.Model, dataset: tf.data.Dataset, verbose: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs the backbone once over a dataset and keeps both pooled scores.

    Args:
        model: a classifier accepted by `with_max_pooling`.
        dataset: batched `(images, targets)`.
        verbose: 1 shows a progress bar.

    Returns:
        `(average, maximum, targets)`: float32 `(N, C)` pooled scores before
        the activation, and the targets.
    """
    pooled = pooled_scores_model(model)
    scores, targets = predict_dataset(pooled.predict_on_batch, dataset, verbose)
    return scores[:, 0], scores[:, 1], targets


def scores_to_probabilities(scores: np.ndarray, activation=None) -> np.ndarray:
    """Turns pooled scores into probabilities for the metrics.

    Args:
        scores: `(N, C)` scores before the head's activation.
        activation: the head's activation; None or linear means the model
            returns logits, which get the sigmoid (multi-label).

    Returns:
        float32 `(N, C)` probabilities.
    """
    activation = keras.activations.get(activation)
    if activation is keras.activations.linear:
        return sigmoid(scores).astype(np.float32)
    out = activation(ops.convert_to_tensor(np.asarray(scores, np.float32)))
    return np.asarray(ops.convert_to_numpy(out), np.float32)


def map_by_lambda(
    average: np.ndarray,
    maximum: np.ndarray,
    targets: np.ndarray,
    lams: Sequence[float],
    activation=None,
) -> dict[float, float]:
    """mAP of `activation(average + lam * maximum)` for every `lam`.

    Args:
        average: `(N, C)` average-pooled scores (from `pooled_class_scores`).
        maximum: `(N, C)` max-pooled scores.
        targets: `(N, C)` targets (1, 0, -1 unknown).
        lams: the values of `lam` to score.
        activation: the head's activation (see `scores_to_probabilities`).

    Returns:
        `{lam: mAP}` in the order of `lams`, mAP as a fraction.
    """
    return {
        float(lam): evaluate(
            scores_to_probabilities(average + lam * maximum, activation), targets
        )["mAP"]
        for lam in lams
    }


def fixed_lambda(backbone: str) -> float:
    """The paper's fixed lambda: 0.02 for the ResNet family, 0.2 otherwise.

    Args:
        backbone: a backbone name, e.g. `"resnet101"` or `"vit_b16"`.

    Returns:
        The lambda of Table 1's "fixed lambda" column.
    """
    return FIXED_LAMBDA_RESNET if backbone.startswith("resnet") else FIXED_LAMBDA_OTHER


@dataclasses.dataclass(frozen=True)
class TrainingFreeResult:
    """One row of Table 1, plus the whole curve.

    Args:
        name: the model's label (its backbone).
        maps: `{lam: mAP}` over the grid, `0.0` (the baseline) included.
        best_lam: the grid's best lambda.
        fixed_lam: the paper's fixed lambda for this backbone.
    """

    name: str
    maps: dict[float, float]
    best_lam: float
    fixed_lam: float

    @property
    def baseline(self) -> float:
        """mAP of the unchanged model (lambda = 0)."""
        return self.maps[0.0]

    @property
    def best(self) -> float:
        """mAP at the best lambda of the grid."""
        return self.maps[self.best_lam]

    @property
    def fixed(self) -> float:
        """mAP at the fixed lambda."""
        return self.maps[self.fixed_lam]


def table_one(
    name: str,
    maps: dict[float, float],
    fixed_lam: float,
) -> TrainingFreeResult:
    """Picks the best lambda of a `{lam: mAP}` curve.

    Args:
        name: the model's label.
        maps: mAP by lambda; must include 0 (the baseline) and `fixed_lam`.
        fixed_lam: the fixed lambda.

    Returns:
        The `TrainingFreeResult`; ties go to the smaller lambda.
    """
    for required in (0.0, fixed_lam):
        if required not in maps:
            raise UserError(
                f"`maps` must include lambda {required}. Received: lambdas="
                f"{sorted(maps)}"
            )
    grid = sorted(lam for lam in maps if lam > 0)
    best_lam = max(grid, key=lambda lam: (maps[lam], -lam))
    return TrainingFreeResult(name, dict(maps), best_lam, fixed_lam)


def format_row(result: TrainingFreeResult) -> str:
    """Formats a Table-1 row (mAP in %).

    Args:
        result: the run's `TrainingFreeResult`.

    Returns:
        A header line and one row: model, baseline, varying lambda (lambda,
        mAP, difference) and fixed lambda (lambda, mAP, difference).
    """
    header = (
        f"{'model':16s}{'baseline':>10s}{'best lam':>10s}{'mAP':>8s}{'diff':>8s}"
        f"{'fixed lam':>11s}{'mAP':>8s}{'diff':>8s}"
    )
    row = (
        f"{result.name:16s}{100 * result.baseline:10.2f}{result.best_lam:10g}"
        f"{100 * result.best:8.2f}{100 * (result.best - result.baseline):+8.2f}"
        f"{result.fixed_lam:11g}{100 * result.fixed:8.2f}"
        f"{100 * (result.fixed - result.baseline):+8.2f}"
    )
    return f"{header}\n{row}"


def write_csv(path: str, result: TrainingFreeResult) -> None:
    """Writes `lam, mAP, diff` per lambda (fractions), baseline first.

    Args:
        path: output CSV file.
        result: the run's `TrainingFreeResult`.
    """
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["lam", "mAP", "diff", "best", "fixed"])
        for lam in sorted(result.maps):
            writer.writerow(
                [
                    f"{lam:g}",
                    f"{result.maps[lam]:.6f}",
                    f"{result.maps[lam] - result.baseline:+.6f}",
                    int(lam == result.best_lam),
                    int(lam == result.fixed_lam),
                ]
            )


def training_free_run(
    workdir: str,
    lams: Sequence[float] = DEFAULT_LAMBDAS,
    fixed_lam: float | None = None,
    checkpoint: str | None = None,
    batch_size: int | None = None,
    verbose: int = 1,
) -> TrainingFreeResult:
    """Scores a trained GAP run with training-free max pooling over lambdas.

    Writes `<workdir>/training_free.csv` and `<workdir>/training_free.png`.

    Args:
        workdir: a `csra-train` workdir of a `head="gap"` run.
        lams: the lambda grid (positive values).
        fixed_lam: the fixed lambda; default `fixed_lambda(config.backbone)`.
        checkpoint: model file; default `<workdir>/model.keras`.
        batch_size: evaluation batch size; default the run's.
        verbose: 1 shows a progress bar.

    Returns:
        The `TrainingFreeResult`.
    """
    if not lams or min(lams) <= 0:
        raise UserError(f"`lams` must be positive values. Received: lams={lams}")
    run = run_folder.load_run(workdir, checkpoint)
    config, model = run.config, run.model
    average, maximum, targets = pooled_class_scores(
        model, run.val_batches(batch_size), verbose=verbose
    )
    fixed_lam = fixed_lambda(config.backbone) if fixed_lam is None else fixed_lam
    grid = sorted({0.0, float(fixed_lam), *(float(lam) for lam in lams)})
    maps = map_by_lambda(average, maximum, targets, grid, head_activation(model))
    result = table_one(config.backbone, maps, float(fixed_lam))
    write_csv(os.path.join(workdir, run_folder.TRAINING_FREE_CSV), result)
    plot_lambda_curve(os.path.join(workdir, run_folder.TRAINING_FREE_PLOT), result)
    return result
