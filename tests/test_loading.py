"""Keras's own `load_model` opens what csra-train and csra-import write.

Each model is written by the real programs, then loaded in a fresh Python that
imports nothing but `keras` and `csra_tf`, with Keras's defaults (compiled,
`safe_mode=True`), as a user of the saved file would.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from csra_tf.config import TrainConfig
from csra_tf.importer import import_to_workdir
from csra_tf.training import train
from tests.cli.test_train_eval import ENV

FIXTURES = os.path.join(os.path.dirname(__file__), "convert", "fixtures")

# Loads each model, checks what a compiled model carries, trains one more step.
LOADER = r"""
import json, sys
import keras, numpy as np
import csra_tf

results = {}
for name, path in json.loads(sys.argv[1]).items():
    model = keras.saving.load_model(path)
    result = {
        "class": type(model).__name__,
        "head": type(model.head).__name__,
        "compiled": model.compiled,
    }
    images = np.random.default_rng(0).uniform(
        0, 255, (4, *model.input_shape[1:])
    ).astype("float32")
    result["logits"] = np.asarray(model.predict_on_batch(images)).tolist()
    if model.compiled:
        result["optimizer"] = type(model.optimizer).__name__
        result["loss"] = type(model.loss).__name__
        result["iterations"] = int(model.optimizer.iterations)
        targets = np.zeros((4, model.output_shape[-1]), "float32")
        model.fit(images, targets, epochs=1, verbose=0)
        result["iterations_after_fit"] = int(model.optimizer.iterations)
    results[name] = result
print(json.dumps(results))
"""


def _run(*args):
    result = subprocess.run(
        [sys.executable, *args], env=ENV, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_load_model_after_import_csra_tf(tmp_path):
    tiny = tmp_path / "tiny"
    resnet = tmp_path / "resnet"
    imported = tmp_path / "imported"
    # What csra-train runs (tests/cli runs the program itself).
    small = dict(num_train=96, num_val=48, shapes_image_size=32, image_size=32)
    train(TrainConfig(workdir=str(tiny), batch_size=16, epochs=1, **small), 0)
    train(
        TrainConfig(
            workdir=str(resnet),
            batch_size=16,
            epochs=1,
            backbone="resnet_tiny",  # keras-hub's ResNetBackbone, torchvision layout
            **small,
        ),
        0,
    )
    # What csra-import runs (tests/importer runs the program itself).
    expected = np.load(os.path.join(FIXTURES, "resnet_expected.npz"))
    import_to_workdir(
        os.path.join(FIXTURES, "resnet_tiny_csra.pth"),
        imported,
        class_names=None,
        backbone="resnet_tiny",
        num_classes=int(expected["num_classes"]),
        num_heads=len(expected["temperatures"]),
        lam=float(expected["lam"]),
        image_size=int(expected["image_size"]),
    )
    paths = {
        "tiny": str(tiny / "model.keras"),
        "resnet": str(resnet / "model.keras"),
        "imported": str(imported / "model.keras"),
    }
    loaded = json.loads(_run("-c", LOADER, json.dumps(paths)).stdout.splitlines()[-1])

    for name in ("tiny", "resnet"):
        result = loaded[name]
        assert (result["class"], result["head"]) == ("CSRAClassifier", "CSRA")
        assert result["compiled"], name
        assert result["optimizer"] == "MultiRateSGD"
        assert result["loss"] == "MaskedBinaryCrossentropy"
        # The optimizer's state came back (96 images / batch 16 = 6 steps), and
        # `fit` goes on from it.
        assert result["iterations"] == 6, result
        assert result["iterations_after_fit"] == 7, result
        assert np.all(np.isfinite(result["logits"]))
    assert loaded["imported"]["class"] == "CSRAClassifier"
    assert loaded["imported"]["head"] == "CSRA"
