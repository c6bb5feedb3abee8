"""The run folder: names, JSON, classes/thresholds checks, the validation split."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

from csra_tf import run_folder
from csra_tf.config import TrainConfig
from csra_tf.errors import UserError


def _manifest(tmp_path, num=30):
    rng = np.random.default_rng(0)
    records = []
    for i in range(num):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).save(
            tmp_path / f"{i}.png"
        )
        labels = ["cat"] if i % 3 else ["dog"]
        if i % 10 == 0:
            labels.append("bird")
        records.append({"image": f"{i}.png", "labels": labels})
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_val_split_is_written_and_reused(tmp_path):
    path = _manifest(tmp_path)
    config = TrainConfig(
        workdir=str(tmp_path / "run"), dataset=str(path), val_split=0.2
    )
    train, val = run_folder.load_sources(config)
    assert train.num_examples + val.num_examples == 30
    assert 4 <= val.num_examples <= 8
    assert train.class_names == val.class_names == ["bird", "cat", "dog"]
    saved = json.loads((tmp_path / "run" / "val_split.json").read_text())
    assert saved["num_records"] == 30 and len(saved["val_records"]) == val.num_examples
    # A resumed run reads the saved split, even under another seed.
    again = TrainConfig(
        workdir=str(tmp_path / "run"), dataset=str(path), val_split=0.2, seed=9
    )
    _, val_again = run_folder.load_sources(again)
    first = [t.tolist() for _, t in val.dataset.as_numpy_iterator()]
    second = [t.tolist() for _, t in val_again.dataset.as_numpy_iterator()]
    assert first == second
    # A changed manifest does not silently reuse the old split.
    path.write_text("\n".join(path.read_text().splitlines()[:20]) + "\n")
    with pytest.raises(ValueError, match="changed since the split"):
        run_folder.load_sources(config)


def test_json_is_atomic_and_numpy_aware(tmp_path):
    path = tmp_path / "x.json"
    run_folder.write_json(path, {"a": np.float32(1.5), "b": np.arange(2)})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1]}
    assert os.listdir(tmp_path) == ["x.json"]
    (tmp_path / "bad.json").write_text("{\n  oops")
    with pytest.raises(ValueError, match=r"bad.json:2: not valid JSON"):
        run_folder.read_json(tmp_path / "bad.json")


def test_class_names_and_thresholds_are_checked(tmp_path):
    run_folder.write_class_names(tmp_path, ["cat", "dog"])
    assert run_folder.read_class_names(tmp_path) == ["cat", "dog"]
    # Found next to a model file and one folder up (W/export/ inside W).
    assert run_folder.find_class_names(tmp_path / "m.keras") == ["cat", "dog"]
    assert run_folder.find_class_names(tmp_path / "export" / "m.tflite") == [
        "cat",
        "dog",
    ]
    assert run_folder.find_class_names(tmp_path / "a" / "b" / "m.tflite") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "classes.json").write_text('["cat", "cat"]')
    with pytest.raises(ValueError, match="distinct"):
        run_folder.read_class_names(tmp_path / "bad")
    run_folder.save_thresholds(tmp_path / "t.json", [0.3, 0.6], ["cat", "dog"])
    np.testing.assert_allclose(
        run_folder.load_thresholds(tmp_path / "t.json", ["cat", "dog"]), [0.3, 0.6]
    )
    with pytest.raises(ValueError, match="missing"):
        run_folder.load_thresholds(tmp_path / "t.json", ["cat", "dog", "cow"])


def test_missing_run_and_data_overrides(tmp_path):
    with pytest.raises(ValueError, match="No config.json"):
        run_folder.read_config(tmp_path)
    config = TrainConfig(workdir=str(tmp_path), dataset="")
    run_folder.write_config(config)
    overridden = run_folder.read_config(tmp_path, {"dataset": "voc2007"})
    assert overridden.dataset == "voc2007"
    with pytest.raises(ValueError, match="names no dataset"):
        run_folder.load_sources(config)
    with pytest.raises(ValueError, match="data fields"):
        run_folder.read_config(tmp_path, {"lam": 0.4})


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"not a zip at all", "File is not a zip file"),
        (b"", "File is not a zip file"),
        ("truncated", "File is not a zip file"),
        ("no-config", "no config.json"),
    ],
)
def test_unreadable_model_files_are_one_user_error(tmp_path, content, reason):
    path = tmp_path / "model.keras"
    if content == "truncated":
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.save(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif content == "no-config":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("model.weights.h5", b"")
    else:
        path.write_bytes(content)
    with pytest.raises(UserError) as error:
        run_folder.load_model(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path} is not a readable Keras model"), message
    assert reason in message
