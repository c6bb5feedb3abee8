"""Process settings of the console scripts."""

import os

from csra_tf.cli import app


def test_inference_programs_assume_frozen_weights(monkeypatch):
    monkeypatch.delenv(app.FROZEN_WEIGHTS_VARIABLE, raising=False)
    app.assume_frozen_weights()
    assert os.environ[app.FROZEN_WEIGHTS_VARIABLE] == "1"


def test_a_users_frozen_weights_setting_is_kept(monkeypatch):
    monkeypatch.setenv(app.FROZEN_WEIGHTS_VARIABLE, "0")
    app.assume_frozen_weights()
    assert os.environ[app.FROZEN_WEIGHTS_VARIABLE] == "0"
