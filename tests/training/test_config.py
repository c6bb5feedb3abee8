"""TrainConfig: validation and JSON round trip."""

import pytest

from csra_tf.training import TrainConfig


def test_json_round_trip(tmp_path):
    config = TrainConfig(workdir=str(tmp_path), head="gap", lam=0.3, epochs=2)
    config.save(str(tmp_path / "config.json"))
    assert TrainConfig.load(str(tmp_path / "config.json")) == config


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr_schedule": "linear"},
        {"unknown_as": "positive"},
        {"batch_size": 0},
        {"lr": 0.0},
        {"dataset": "train.jsonl"},  # a manifest without a validation manifest
    ],
)
def test_invalid_values_raise(kwargs):
    with pytest.raises(ValueError, match="Received"):
        TrainConfig(workdir="w", **kwargs)


def test_unknown_field_in_file_raises(tmp_path):
    (tmp_path / "config.json").write_text('{"workdir": "w", "colour": "red"}')
    with pytest.raises(ValueError, match="colour"):
        TrainConfig.load(str(tmp_path / "config.json"))
