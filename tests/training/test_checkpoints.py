"""Crash-safe backups, best checkpoint and the NaN stop."""

import json
import os

import keras
import numpy as np
import pytest

from csra_tf.training.checkpoints import (
    BestCheckpoint,
    NonFiniteLossError,
    ResumableBackup,
    StopOnNonFiniteLoss,
)


def _model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 4)).astype("float32"), rng.normal(size=(8, 2))


def test_backup_resumes_at_the_next_epoch_with_the_saved_weights(tmp_path):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[ResumableBackup(str(tmp_path))])
    saved = model.get_weights()
    meta = json.loads((tmp_path / "backup.json").read_text())
    assert meta == {"epoch": 2, "step": 0, "weights": "epoch-2-step-0.weights.h5"}
    assert sorted(os.listdir(tmp_path)) == ["backup.json", "epoch-2-step-0.weights.h5"]

    resumed = _model()
    history = resumed.fit(
        x, y, epochs=2, verbose=0, callbacks=[ResumableBackup(str(tmp_path))]
    )
    assert history.epoch == []  # both epochs were already done
    for a, b in zip(resumed.get_weights(), saved, strict=True):
        np.testing.assert_array_equal(a, b)


def test_kill_while_writing_keeps_the_previous_consistent_backup(tmp_path, monkeypatch):
    x, y = _data()
    model = _model()
    backup = ResumableBackup(str(tmp_path))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[backup])
    epoch1 = model.get_weights()

    real_replace = os.replace

    def killed_before_metadata(src, dst):
        if dst.endswith("backup.json"):
            raise KeyboardInterrupt("killed")  # the process dies here
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed_before_metadata)
    with pytest.raises(KeyboardInterrupt):
        # Resumes after epoch 1, trains epoch 2 and dies while saving it.
        model.fit(x, y, epochs=2, verbose=0, callbacks=[ResumableBackup(str(tmp_path))])
    monkeypatch.setattr(os, "replace", real_replace)

    meta = json.loads((tmp_path / "backup.json").read_text())
    assert meta["epoch"] == 1
    restored = _model()
    cb = ResumableBackup(str(tmp_path))
    cb.set_model(restored)
    cb.on_train_begin()
    for a, b in zip(restored.get_weights(), epoch1, strict=True):
        np.testing.assert_array_equal(a, b)


def test_best_checkpoint_keeps_the_maximum_across_restarts(tmp_path):
    model = _model()
    path = str(tmp_path / "best.keras")
    first = BestCheckpoint(path, monitor="val_mAP")
    first.set_model(model)
    first.on_epoch_end(0, {"val_mAP": 0.5})
    stamp = os.path.getmtime(path)
    second = BestCheckpoint(path, monitor="val_mAP")  # a resumed run
    second.set_model(model)
    second.on_epoch_end(1, {"val_mAP": 0.4})
    assert os.path.getmtime(path) == stamp
    second.on_epoch_end(2, {"val_mAP": 0.6})
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 3
    assert keras.saving.load_model(path, safe_mode=True) is not None


def test_nan_loss_raises_and_keeps_the_last_good_backup(tmp_path):
    x, y = _data()
    model = _model()

    class PoisonAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            kernel = self.model.layers[0].kernel
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))

    backup = ResumableBackup(str(tmp_path / "backup"))
    with pytest.raises(NonFiniteLossError, match="last good epoch"):
        model.fit(
            x,
            y,
            epochs=3,
            batch_size=4,
            verbose=0,
            callbacks=[backup, PoisonAfterFirstEpoch(), StopOnNonFiniteLoss()],
        )
    meta = json.loads((tmp_path / "backup" / "backup.json").read_text())
    assert meta["epoch"] == 1


def test_backups_every_n_steps_name_the_step(tmp_path):
    x, y = _data()
    model = _model()
    backup = ResumableBackup(str(tmp_path), every_steps=2)
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            path = tmp_path / "backup.json"
            meta = json.loads(path.read_text()) if path.exists() else None
            seen.append(meta and (meta["epoch"], meta["step"]))

    model.fit(x, y, epochs=2, batch_size=2, verbose=0, callbacks=[backup, Spy()])
    # 4 steps per epoch: a backup after steps 2 and 4 of each epoch, and at each
    # epoch's end (e finished epochs, step 0).
    assert seen == [None, (0, 2), (0, 2), (0, 4), (1, 0), (1, 2), (1, 2), (1, 4)]
    assert backup.position() == (2, 0)
    assert len(os.listdir(tmp_path)) == 2  # the metadata and one weights file
    with pytest.raises(ValueError, match="every_steps"):
        ResumableBackup(str(tmp_path), every_steps=-1)
