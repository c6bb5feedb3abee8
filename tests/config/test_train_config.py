"""TrainConfig: validation and JSON round trip."""

import pytest

from csra_tf import run_folder
from csra_tf.config import TrainConfig


def test_json_round_trip(tmp_path):
    config = TrainConfig(workdir=str(tmp_path), head="gap", lam=0.3, epochs=2)
    run_folder.write_config(config)
    assert TrainConfig.load(str(tmp_path / "config.json")) == config


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr_schedule": "linear"},
        {"unknown_as": "positive"},
        {"batch_size": 0},
        {"lr": 0.0},
        # a manifest without a validation manifest or a split
        {"dataset": "train.jsonl", "val_split": 0.0},
        {"lam": -1.0},
        {"num_heads": 3},  # no paper temperatures for 3 heads
        {"num_heads": 2, "temperatures": (1.0,)},
        {"num_heads": 2, "temperatures": (1.0, 0.0)},
        {"val_split": 1.0},
        {"dropout": 1.0},
        {"head": "mlp"},
    ],
)
def test_invalid_values_raise(kwargs):
    with pytest.raises(ValueError, match="Received"):
        TrainConfig(workdir="w", **kwargs)


def test_unknown_field_in_file_raises(tmp_path):
    (tmp_path / "config.json").write_text('{"workdir": "w", "colour": "red"}')
    with pytest.raises(ValueError, match="colour"):
        TrainConfig.load(str(tmp_path / "config.json"))


def test_temperatures_are_tuples_and_inf_round_trips(tmp_path):
    config = TrainConfig(
        workdir=str(tmp_path), num_heads=3, temperatures=[1, 2, float("inf")]
    )
    assert config.temperatures == (1.0, 2.0, float("inf"))
    assert config.head_temperatures() == (1.0, 2.0, float("inf"))
    run_folder.write_config(config)
    assert TrainConfig.load(str(tmp_path / "config.json")) == config
    assert TrainConfig(workdir="w").head_temperatures() is None


def test_num_heads_error_names_the_temperatures_flag():
    with pytest.raises(ValueError, match="--temperatures"):
        TrainConfig(workdir="w", num_heads=3)


def test_manifest_with_split_needs_no_validation_manifest():
    config = TrainConfig(workdir="w", dataset="train.jsonl", val_split=0.2)
    assert config.val_dataset == "" and config.val_split == 0.2
