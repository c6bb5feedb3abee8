"""Every private Keras name the speed paths use exists; without one, Keras runs."""

import ast
import pathlib
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import csra_tf.acceleration
from csra_tf.acceleration import PRIVATE_KERAS_NAMES, accelerate, keras_internals
from csra_tf.acceleration.keras_internals import resolve
from csra_tf.acceleration.layer_walk import walk_layers
from csra_tf.models import build_classifier

PACKAGE = pathlib.Path(csra_tf.acceleration.__file__).parent


def _built_attention():
    layer = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    layer(tf.zeros((1, 3, 6)), tf.zeros((1, 5, 6)))
    return layer


def _called_dense():
    inputs = keras.Input((3,))
    layer = keras.layers.Dense(2)
    keras.Model(inputs, layer(inputs))
    return layer


# A built, called instance of each owner of per-instance names.
INSTANCES = {
    "keras.layers.MultiHeadAttention": _built_attention,
    "keras.layers.Layer": _called_dense,
}


@pytest.mark.parametrize("name", PRIVATE_KERAS_NAMES, ids=str)
def test_the_installed_keras_has_every_private_name(name):
    owner = resolve(name.owner)
    assert owner is not None, (
        f"Keras {keras.__version__} has no `{name.owner}`, which "
        f"csra_tf.acceleration ({name.used_by}) relies on."
    )
    if name.on_instances:
        assert name.owner in INSTANCES, f"no test instance of {name.owner}"
        holder = INSTANCES[name.owner]()
        assert isinstance(holder, owner)
    else:
        holder = owner
    assert hasattr(holder, name.name), (
        f"Keras {keras.__version__} has no `{name}`, which "
        f"csra_tf.acceleration ({name.used_by}) relies on: that speed path is off "
        "(Keras's own call runs) until it is ported to this Keras."
    )


def _private_attributes(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    }


def test_the_list_names_every_private_attribute_the_package_reads():
    used = set().union(*(_private_attributes(p) for p in PACKAGE.glob("*.py")))
    # (`get_value` is listed as the public method of a private class.)
    listed = {name.name for name in PRIVATE_KERAS_NAMES if name.name.startswith("_")}
    assert used == listed, (
        f"read but not listed: {sorted(used - listed)}; "
        f"listed but not read: {sorted(listed - used)}"
    )


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Forgets the warnings given so far, so each test sees its own."""
    monkeypatch.setattr(keras_internals, "_warned", set())


def _speed_path_warnings(caught) -> list[str]:
    return [
        str(w.message)
        for w in caught
        if str(w.message).startswith("csra_tf.acceleration:")
    ]


def test_a_missing_private_name_keeps_keras_core_and_warns_once(
    fresh_warnings, monkeypatch
):
    models = [build_classifier("vit_tiny", 3, image_size=32) for _ in range(2)]
    attentions = [
        layer
        for model in models
        for layer in walk_layers(model)
        if type(layer) is keras.layers.MultiHeadAttention
    ]
    assert len(attentions) >= 2
    for layer in attentions:  # as if Keras had renamed it
        monkeypatch.delattr(layer, "_inverse_sqrt_key_dim")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for model in models:
            accelerate(model, for_training=True, device="CPU")
    messages = _speed_path_warnings(caught)
    assert len(messages) == 1, messages
    assert "matmul attention is off" in messages[0]
    assert "`keras.layers.MultiHeadAttention._inverse_sqrt_key_dim`" in messages[0]
    for layer in attentions:
        assert "_compute_attention" not in vars(layer)  # Keras's own core
    # The other speed paths still apply.
    norms = [
        layer
        for layer in walk_layers(models[0])
        if type(layer) is keras.layers.LayerNormalization
    ]
    assert norms and all("call" in vars(layer) for layer in norms)


def test_a_changed_keras_signature_keeps_keras_call_and_warns_once(
    fresh_warnings, monkeypatch
):
    # A Keras whose LayerNormalization.call takes an argument the speed path's
    # call does not: the layers keep Keras's call, with Keras's values.
    keras_call = keras.layers.LayerNormalization.call

    def call_with_an_extra_argument(self, inputs, extra_argument=None):
        return keras_call(self, inputs)

    monkeypatch.setattr(
        keras.layers.LayerNormalization, "call", call_with_an_extra_argument
    )
    model = build_classifier("vit_tiny", 3, image_size=32)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    expected = np.asarray(model(x, training=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        accelerate(model, for_training=True, device="CPU")
        accelerate(model, for_training=True, device="CPU")
    messages = _speed_path_warnings(caught)
    assert len(messages) == 1, messages
    assert "XLA LayerNorm is off" in messages[0] and "extra_argument" in messages[0]
    norms = [
        layer
        for layer in walk_layers(model)
        if type(layer) is keras.layers.LayerNormalization
    ]
    assert norms and not any("call" in vars(layer) for layer in norms)
    np.testing.assert_allclose(model(x, training=True), expected, rtol=1e-5, atol=1e-5)


def test_missing_graph_names_leave_the_model_unfolded(fresh_warnings, monkeypatch):
    model = build_classifier("resnet_tiny", 3, image_size=32)
    monkeypatch.setattr(
        keras_internals,
        "FOLDING_NAMES",
        (keras_internals.PrivateName("keras.layers.Layer", "_gone", True, "folding"),),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert accelerate(model, for_training=False, device="GPU") is model
    messages = _speed_path_warnings(caught)
    assert len(messages) == 1 and "BatchNorm folding is off" in messages[0]
