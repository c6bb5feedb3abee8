"""Ablation studies and the CSRA-vs-GAP comparison: logic, files, tiny real runs."""

import csv
import dataclasses
import json
import os

import numpy as np
import pytest
from absl import flags

from csra_tf import studies as ablations
from csra_tf.cli import study_programs
from csra_tf.config import TrainConfig
from tests.programs import REPO, run_program

SHAPES_FLAGS = os.path.join(REPO, "experiments", "configs", "shapes_csra.flags")
TINY = dict(
    num_train=64,
    num_val=32,
    shapes_image_size=32,
    image_size=32,
    epochs=1,
    batch_size=16,
)
TINY_FLAGS = [f"--{k}={v}" for k, v in TINY.items()]


class FakeTrain:
    """Stands in for `train`: records configs, writes a made-up metrics.json."""

    def __init__(self):
        self.configs = []

    @staticmethod
    def score(config):
        if config.head == "gap":
            return 0.5 + config.seed / 50
        bonus = {"csra": 0.05, "attention": 0.03}[config.head]
        return 0.5 + bonus + config.lam / 10 + config.num_heads / 100 + config.seed / 50

    def __call__(self, config):
        self.configs.append(config)
        os.makedirs(config.workdir, exist_ok=True)
        value = self.score(config)
        with open(os.path.join(config.workdir, "metrics.json"), "w") as f:
            json.dump({"mAP": value, "CF1": value / 2, "OF1": value / 3}, f)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_lambda_sweep_derives_configs_and_resumes(tmp_path):
    base = TrainConfig(workdir=str(tmp_path), head="gap", epochs=3, num_heads=2)
    fake = FakeTrain()
    summary = ablations.lambda_sweep(base, lams=[0.0, 0.2], seeds=[3, 1], train_fn=fake)

    assert [(c.lam, c.seed) for c in fake.configs] == [
        (0.0, 3),
        (0.0, 1),
        (0.2, 3),
        (0.2, 1),
    ]
    first = fake.configs[0]
    assert first.workdir == str(tmp_path / "lam_0" / "seed_3")
    assert first.data_dir == str(tmp_path / "data")  # one shapes copy per study
    assert dataclasses.replace(
        first, head="gap", lam=0.1, seed=0, workdir=base.workdir, data_dir=""
    ) == dataclasses.replace(base, lam=0.1)  # nothing else changed
    assert {c.head for c in fake.configs} == {"csra"}

    expected = [
        np.mean([fake.score(c) for c in fake.configs[i : i + 2]]) for i in (0, 2)
    ]
    stds = [
        np.std([fake.score(c) for c in fake.configs[i : i + 2]], ddof=1) for i in (0, 2)
    ]
    assert [s["point"] for s in summary] == ["lam_0", "lam_0.2"]
    np.testing.assert_allclose([s["mAP_mean"] for s in summary], expected)
    np.testing.assert_allclose([s["mAP_std"] for s in summary], stds)

    results = read_csv(tmp_path / "results.csv")
    assert [r["point"] for r in results] == ["lam_0", "lam_0.2"]
    assert float(results[1]["mAP_mean"]) == pytest.approx(expected[1], abs=1e-6)
    assert len(results[0]["mAP_per_seed"].split(";")) == 2
    assert len(read_csv(tmp_path / "runs.csv")) == 4
    assert (tmp_path / "lambda.png").stat().st_size > 0

    # Resumable: finished runs are read back; only a new point trains.
    again = FakeTrain()
    ablations.lambda_sweep(base, lams=[0.0, 0.2, 0.5], seeds=[3, 1], train_fn=again)
    assert [(c.lam, c.seed) for c in again.configs] == [(0.5, 3), (0.5, 1)]
    assert len(read_csv(tmp_path / "results.csv")) == 3


@pytest.mark.parametrize(
    "study, labels, field, values",
    [
        (ablations.head_sweep, ["heads_1", "heads_6"], "num_heads", [1, 6]),
        (
            ablations.normalization_ablation,
            ["normalized", "unnormalized"],
            "normalize",
            [True, False],
        ),
        (
            ablations.pooling_ablation,
            ["average", "spatial", "csra"],
            "head",
            ["gap", "attention", "csra"],
        ),
    ],
)
def test_other_studies_vary_one_setting(tmp_path, study, labels, field, values):
    base = TrainConfig(workdir=str(tmp_path), lam=0.3)
    fake = FakeTrain()
    kwargs = {"head_counts": [1, 6]} if study is ablations.head_sweep else {}
    summary = study(base, seeds=[0], train_fn=fake, **kwargs)
    assert [s["point"] for s in summary] == labels
    assert [getattr(c, field) for c in fake.configs] == values
    assert {c.lam for c in fake.configs} == {0.3}
    assert [
        os.path.basename(os.path.dirname(c.workdir)) for c in fake.configs
    ] == labels
    assert len(read_csv(tmp_path / "results.csv")) == len(labels)
    assert len([p for p in os.listdir(tmp_path) if p.endswith(".png")]) == 1


def test_compare_heads_tables(tmp_path):
    base = TrainConfig(workdir=str(tmp_path), lam=0.7, num_heads=4)
    fake = FakeTrain()
    result = ablations.compare_heads(base, seeds=[0, 1, 2], train_fn=fake)
    gap = [0.5 + s / 50 for s in (0, 1, 2)]
    csra = [0.55 + 0.01 + 0.01 + s / 50 for s in (0, 1, 2)]  # H=1, lam=0.1
    np.testing.assert_allclose(result["gap"], gap)
    np.testing.assert_allclose(result["csra"], csra)
    np.testing.assert_allclose(result["difference"], np.subtract(csra, gap))
    assert {(c.head, c.num_heads, c.lam) for c in fake.configs} == {
        ("gap", 4, 0.7),
        ("csra", 1, 0.1),
    }
    rows = read_csv(tmp_path / "comparison.csv")
    assert [r["seed"] for r in rows] == ["0", "1", "2", "mean", "std"]
    assert float(rows[3]["gap_mAP"]) == pytest.approx(np.mean(gap), abs=1e-6)
    assert float(rows[4]["csra_mAP"]) == pytest.approx(np.std(csra, ddof=1), abs=1e-6)
    markdown = (tmp_path / "comparison.md").read_text()
    assert "| 1 | 52.00 | 59.00 | +7.00 |" in markdown
    assert "| mean ± std | 52.00 ± 2.00 | 59.00 ± 2.00 | +7.00 ± 0.00 |" in markdown
    assert "better on 3 of 3 seeds" in markdown


def test_bad_study_arguments(tmp_path):
    base = TrainConfig(workdir=str(tmp_path))
    with pytest.raises(ValueError, match="lams"):
        ablations.lambda_points([-0.1])
    with pytest.raises(ValueError, match="head_counts"):
        ablations.head_points([3])
    with pytest.raises(ValueError, match="seeds"):
        ablations.run_series(base, ablations.pooling_points(), seeds=[0, 0])
    with pytest.raises(ValueError, match="no metrics.json"):
        ablations.run_series(
            base, ablations.normalization_points(), train_fn=lambda config: None
        )


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A 1-epoch, 32 px, 64-image base config sharing one shapes folder."""
    data = tmp_path_factory.mktemp("shapes")
    return TrainConfig(workdir="unused", data_dir=str(data), **TINY)


@pytest.mark.parametrize(
    "study, kwargs, points",
    [
        (ablations.lambda_sweep, {"lams": [0.0, 0.1]}, 2),
        (ablations.head_sweep, {"head_counts": [1, 2]}, 2),
        (ablations.normalization_ablation, {}, 2),
        (ablations.pooling_ablation, {}, 3),
    ],
)
def test_studies_train_at_tiny_size(tmp_path, tiny_base, study, kwargs, points):
    base = dataclasses.replace(tiny_base, workdir=str(tmp_path))
    summary = study(base, seeds=[0], **kwargs)
    assert len(summary) == points
    for row in summary:
        assert 0.0 <= row["mAP_mean"] <= 1.0 and row["num_seeds"] == 1
        assert (tmp_path / row["point"] / "seed_0" / "model.keras").exists()
    assert (tmp_path / "results.csv").exists()


def run_main(main, argv):
    """Runs a study main in-process with parsed flags, then restores the flags."""
    try:
        flags.FLAGS(["prog", *argv])
        main([])
    finally:
        flags.FLAGS.unparse_flags()


def test_lambda_main_reuses_train_flags(tmp_path, tiny_base, capsys):
    run_main(
        study_programs.lambda_sweep_main,
        [
            f"--workdir={tmp_path}",
            f"--flagfile={SHAPES_FLAGS}",
            *TINY_FLAGS,
            f"--data_dir={tiny_base.data_dir}",
            "--lams=0.5",
            "--seeds=0",
        ],
    )
    assert "lam_0.5" in capsys.readouterr().out
    config = TrainConfig.load(tmp_path / "lam_0.5" / "seed_0" / "config.json")
    assert (config.lam, config.image_size, config.epochs) == (0.5, 32, 1)


def test_list_flags_are_checked():
    with pytest.raises(Exception, match="comma-separated ints"):
        study_programs.parse_list(["0", "x"], int, "seeds")
    assert study_programs.parse_list(["0.5", "1"], float, "lams") == [0.5, 1.0]


@pytest.mark.slow
def test_compare_heads_program(tmp_path, tiny_base):
    result = run_program(
        "experiments/compare_heads.py",
        f"--workdir={tmp_path}",
        f"--flagfile={SHAPES_FLAGS}",
        *TINY_FLAGS,
        f"--data_dir={tiny_base.data_dir}",
        "--seeds=0,1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| mean ± std |" in result.stdout
    assert (tmp_path / "comparison.csv").exists()
    assert (tmp_path / "comparison.md").exists()
    # One GAP and one CSRA run per seed, paired in the comparison.
    with open(tmp_path / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["seed"] for row in rows] == ["0", "1", "mean", "std"]
    for row in rows[:2]:
        difference = float(row["csra_mAP"]) - float(row["gap_mAP"])
        assert float(row["difference"]) == pytest.approx(difference)
    for head in ("gap", "csra"):
        assert (tmp_path / head / "seed_1" / "metrics.json").exists()
