"""Table 1 for a trained GAP run: lambda grid, CSV, plot and the absl main."""

import csv
import os

import keras
import numpy as np
import pytest

from csra_tf import run_folder
from csra_tf.config import TrainConfig
from csra_tf.data import build_dataset
from csra_tf.metrics import evaluate
from csra_tf.models import build_classifier, predict_probabilities
from csra_tf.run_folder import load_sources
from csra_tf.studies.training_free_table import (
    fixed_lambda,
    format_row,
    table_one,
    training_free_run,
)
from csra_tf.training_free import with_max_pooling
from tests.programs import run_program


def make_gap_run(workdir, head="gap"):
    """A run folder with an untrained tiny GAP model on a small shapes split."""
    config = TrainConfig(
        workdir=str(workdir),
        num_train=8,
        num_val=24,
        shapes_image_size=32,
        image_size=32,
        head=head,
        batch_size=8,
    )
    os.makedirs(workdir, exist_ok=True)
    run_folder.write_config(config)
    keras.utils.set_random_seed(0)
    model = build_classifier("tiny", num_classes=10, image_size=32, head=head)
    model.save(os.path.join(workdir, "model.keras"))
    return config, model


def test_fixed_lambda_follows_the_paper():
    assert fixed_lambda("resnet101") == 0.02
    assert fixed_lambda("resnet50_v2") == 0.02
    assert fixed_lambda("vit_b16") == 0.2
    assert fixed_lambda("mobilenet_v3_large") == 0.2


def test_table_one_picks_best_and_formats():
    result = table_one("resnet101", {0.0: 0.80, 0.02: 0.81, 0.1: 0.83, 0.5: 0.83}, 0.02)
    assert result.best_lam == 0.1  # ties go to the smaller lambda
    assert (result.baseline, result.best, result.fixed) == (0.80, 0.83, 0.81)
    row = format_row(result).splitlines()[1]
    assert row.split() == [
        "resnet101",
        "80.00",
        "0.1",
        "83.00",
        "+3.00",
        "0.02",
        "81.00",
        "+1.00",
    ]
    with pytest.raises(ValueError, match="lambda"):
        table_one("x", {0.1: 0.5}, 0.1)


def test_training_free_run_writes_csv_and_plot(tmp_path):
    config, model = make_gap_run(tmp_path)
    result = training_free_run(str(tmp_path), lams=[0.1, 0.5], verbose=0)
    assert sorted(result.maps) == [0.0, 0.1, 0.2, 0.5]
    assert result.fixed_lam == 0.2 and result.name == "tiny"
    _, val = load_sources(config)
    dataset = build_dataset(val.dataset, image_size=32, batch_size=8, training=False)
    probs, targets = predict_probabilities(model, dataset, verbose=0)
    assert result.baseline == pytest.approx(evaluate(probs, targets)["mAP"], abs=1e-6)
    probs, _ = predict_probabilities(with_max_pooling(model, 0.5), dataset, verbose=0)
    assert result.maps[0.5] == pytest.approx(evaluate(probs, targets)["mAP"], abs=1e-6)
    with open(tmp_path / "training_free.csv", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [float(r["lam"]) for r in rows] == [0.0, 0.1, 0.2, 0.5]
    np.testing.assert_allclose(
        [float(r["mAP"]) for r in rows],
        [result.maps[k] for k in sorted(result.maps)],
        atol=1e-6,
    )
    assert (tmp_path / "training_free.png").stat().st_size > 0


def test_training_free_run_rejects_csra_runs_and_bad_grids(tmp_path):
    make_gap_run(tmp_path, head="csra")
    with pytest.raises(ValueError, match="Dense"):
        training_free_run(str(tmp_path), verbose=0)
    with pytest.raises(ValueError, match="lams"):
        training_free_run(str(tmp_path), lams=[0.0], verbose=0)
    with pytest.raises(ValueError, match="config.json"):
        training_free_run(str(tmp_path / "missing"), verbose=0)


@pytest.mark.slow
def test_training_free_main(tmp_path):
    make_gap_run(tmp_path)
    result = run_program(
        "experiments/max_pooling_table.py", f"--workdir={tmp_path}", "--lams=0.05,0.3"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    header, row = result.stdout.strip().splitlines()[-2:]
    assert header.split()[:2] == ["model", "baseline"]
    assert row.split()[0] == "tiny"
    assert (tmp_path / "training_free.csv").exists()
    assert (tmp_path / "training_free.png").exists()
