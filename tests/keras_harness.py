"""The checks every Keras layer and model of the package gets, from one place.

In the manner of keras-hub's `TestCase.run_layer_test` and
`run_model_saving_test`, as plain functions for pytest:

- `run_serialization_test`: `get_config` holds exactly the constructor's
  arguments, and `from_config` and `keras.saving` (de)serialisation give back
  the same class and config.
- `run_layer_test`: the above, the output shape against `compute_output_shape`
  (symbolic and eager calls), a `.keras` round trip with `safe_mode=True` and a
  `mixed_float16` copy of the layer against float32.
- `run_model_saving_test`: a `.keras` round trip of a model with
  `safe_mode=True` keeps its class and outputs.
- `run_model_test`: output shapes, the `.keras` round trip and the model built
  under a global `mixed_float16` policy against float32.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import tempfile

import keras
import numpy as np

MIXED_FLOAT16_TOLERANCE = {"rtol": 1e-2, "atol": 1e-2}
"""float16 keeps 11 significant bits (relative spacing ~1e-3): outputs of a
`mixed_float16` copy agree with float32 to about a percent of their size."""


def _json(value):
    """`value` as JSON text with sorted keys (inf and nan kept as JSON allows)."""
    return json.dumps(
        value, sort_keys=True, default=keras.saving.serialize_keras_object
    )


def _keras_base_config_keys(instance) -> set[str]:
    """Config keys written by the nearest Keras base class (`name`, `dtype`, ...)."""
    for base in type(instance).__mro__:
        if base.__module__.split(".")[0] == "keras" and "get_config" in vars(base):
            try:
                return set(base.get_config(instance))
            except NotImplementedError:  # LearningRateSchedule writes nothing.
                return set()
    return set()


def _init_arguments(cls) -> set[str]:
    """Names of the named arguments of `cls.__init__` (not `*args`/`**kwargs`)."""
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return {
        p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def check_config_holds_init_arguments(instance, init_kwargs, config=None):
    """`get_config` has one entry per constructor argument, equal to what was given.

    Args:
        instance: the object, built as `type(instance)(**init_kwargs)`.
        init_kwargs: the arguments it was built with.
        config: its config (default: `instance.get_config()`).

    Raises:
        AssertionError: naming the missing, extra or changed entries.
    """
    config = instance.get_config() if config is None else config
    arguments = _init_arguments(type(instance))
    base_keys = _keras_base_config_keys(instance)
    missing = arguments - set(config)
    extra = set(config) - arguments - base_keys
    assert not missing, f"{type(instance).__name__}.get_config() lacks {missing}"
    assert not extra, f"{type(instance).__name__}.get_config() has extra {extra}"
    for key, value in init_kwargs.items():
        if key in arguments or key == "name":
            assert json.loads(_json(config[key])) == json.loads(_json(value)), (
                f"{type(instance).__name__}.get_config()[{key!r}] = {config[key]!r}, "
                f"built with {value!r}"
            )


def run_serialization_test(instance, init_kwargs=None):
    """Config and `keras.saving` round trips keep the class and the config.

    Args:
        instance: a layer, model, metric, loss, optimizer or schedule.
        init_kwargs: the arguments `instance` was built with; when given,
            `get_config` must hold exactly these arguments (and the other
            constructor arguments with their defaults).

    Returns:
        The config.
    """
    cls = type(instance)
    config = instance.get_config()
    text = _json(config)
    if init_kwargs is not None:
        check_config_holds_init_arguments(instance, init_kwargs, config)
    clone = cls.from_config(json.loads(text))
    assert type(clone) is cls
    assert _json(clone.get_config()) == text
    serialized = json.loads(_json(keras.saving.serialize_keras_object(instance)))
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is cls, f"deserialised as {type(revived).__name__}"
    assert _json(revived.get_config()) == text
    return config


def _numpy(structure):
    return keras.tree.map_structure(keras.ops.convert_to_numpy, structure)


def _assert_all_close(actual, expected, rtol, atol, what):
    for a, e in zip(
        keras.tree.flatten(_numpy(actual)),
        keras.tree.flatten(_numpy(expected)),
        strict=True,
    ):
        np.testing.assert_allclose(
            np.asarray(a, np.float64),
            np.asarray(e, np.float64),
            rtol,
            atol,
            err_msg=what,
        )


def _shapes(structure):
    """The shapes of a tensor or of nested tensors, as a list of tuples."""
    return [tuple(x.shape) for x in keras.tree.flatten(structure)]


def _batchless(shape):
    return (None, *tuple(shape)[1:])


def _is_float(x) -> bool:
    return "float" in keras.backend.standardize_dtype(x.dtype)


@contextlib.contextmanager
def global_dtype_policy(policy: str):
    """Sets Keras's global dtype policy inside the block, restoring it after.

    Args:
        policy: a policy name, e.g. `"mixed_float16"`.

    Yields:
        None.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def run_model_saving_test(model, input_data, rtol=1e-6, atol=1e-6, compile=True):
    """Saves `model` as `.keras`, loads it with `safe_mode=True`, compares outputs.

    Args:
        model: a built model.
        input_data: inputs for one call.
        rtol: relative tolerance of the output comparison.
        atol: absolute tolerance of the output comparison.
        compile: passed to `keras.saving.load_model`.

    Returns:
        The loaded model (of `model`'s class, with the same outputs).
    """
    expected = model(input_data)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path, safe_mode=True, compile=compile)
    assert type(restored) is type(model), (
        f"loaded a {type(restored).__name__}, saved a {type(model).__name__}"
    )
    _assert_all_close(restored(input_data), expected, rtol, atol, "after .keras")
    return restored


def run_layer_test(
    cls,
    init_kwargs,
    input_data,
    expected_output_shape=None,
    weights=None,
    expected_output=None,
    rtol=1e-6,
    atol=1e-6,
    mixed_precision=True,
    mixed_precision_tolerance=None,
):
    """The config, shape, `.keras` and mixed-precision checks of one layer.

    Args:
        cls: the layer class.
        init_kwargs: constructor arguments.
        input_data: one NumPy input batch (a single tensor).
        expected_output_shape: the eager output's shape (default: only checked
            against `compute_output_shape`).
        weights: arrays for `set_weights` after building (default: the
            layer's initialisers).
        expected_output: when given, the eager output must match it.
        rtol: relative tolerance for `expected_output` and the round trip.
        atol: absolute tolerance for `expected_output` and the round trip.
        mixed_precision: whether to run the `mixed_float16` check.
        mixed_precision_tolerance: `{"rtol", "atol"}` of the `mixed_float16`
            output against float32 (default `MIXED_FLOAT16_TOLERANCE`).

    Returns:
        The float32 layer's eager output, as NumPy.
    """
    input_data = np.asarray(input_data)
    run_serialization_test(cls(**init_kwargs), init_kwargs)

    # Symbolic call, with a free batch size: the functional model to save.
    layer = cls(**init_kwargs)
    inputs = keras.Input(
        batch_shape=_batchless(input_data.shape), dtype=input_data.dtype
    )
    outputs = layer(inputs)
    assert _shapes(outputs) == _shapes_of(layer.compute_output_shape(inputs.shape)), (
        f"symbolic output {_shapes(outputs)} != compute_output_shape "
        f"{layer.compute_output_shape(inputs.shape)}"
    )
    if weights is not None:
        layer.set_weights(weights)
    model = keras.Model(inputs, outputs)

    # Eager call.
    output = layer(input_data)
    computed = layer.compute_output_shape(input_data.shape)
    assert _shapes(output) == _shapes_of(computed), (
        f"eager output {_shapes(output)} != compute_output_shape {computed}"
    )
    if expected_output_shape is not None:
        assert _shapes(output) == _shapes_of(expected_output_shape), (
            f"output shape {_shapes(output)} != expected {expected_output_shape}"
        )
    if expected_output is not None:
        _assert_all_close(output, expected_output, rtol, atol, "eager output")

    restored = run_model_saving_test(model, input_data, rtol=rtol, atol=atol)
    (restored_layer,) = [x for x in restored.layers if x.name == layer.name]
    assert type(restored_layer) is cls
    assert _json(restored_layer.get_config()) == _json(layer.get_config())

    if mixed_precision:
        run_mixed_precision_test(
            cls, init_kwargs, input_data, layer, output, mixed_precision_tolerance
        )
    return _numpy(output)


def _shapes_of(shape):
    """Shapes as `compute_output_shape` gives them, as a list of tuples."""
    if isinstance(shape, dict):
        return [s for key in sorted(shape) for s in _shapes_of(shape[key])]
    if isinstance(shape, (list, tuple)) and any(
        isinstance(s, (list, tuple, dict)) for s in shape
    ):
        return [s for part in shape for s in _shapes_of(part)]
    return [tuple(shape)]


def run_mixed_precision_test(
    cls, init_kwargs, input_data, reference_layer, reference_output, tolerance=None
):
    """A `dtype="mixed_float16"` copy of a layer: float32 weights, close outputs.

    Args:
        cls: the layer class.
        init_kwargs: constructor arguments (without `dtype`).
        input_data: the input batch.
        reference_layer: the built float32 layer whose weights are copied.
        reference_output: its output on `input_data`.
        tolerance: `{"rtol", "atol"}` (default `MIXED_FLOAT16_TOLERANCE`).
    """
    tolerance = tolerance or MIXED_FLOAT16_TOLERANCE
    mixed = cls(**{**init_kwargs, "dtype": "mixed_float16"})
    assert mixed.dtype_policy.name == "mixed_float16"
    mixed.build(input_data.shape)
    mixed.set_weights(reference_layer.get_weights())
    for weight in mixed.weights:
        assert keras.backend.standardize_dtype(weight.dtype) == "float32", weight.path
    output = mixed(input_data)
    for tensor in keras.tree.flatten(output):
        assert _is_float(tensor), f"mixed_float16 output dtype {tensor.dtype}"
    computed = mixed.compute_output_shape(input_data.shape)
    assert _shapes(output) == _shapes_of(computed), (
        f"mixed_float16 output {_shapes(output)} != compute_output_shape {computed}"
    )
    _assert_all_close(output, reference_output, what="mixed_float16", **tolerance)


def run_model_test(
    make_model,
    input_data,
    expected_output_shape=None,
    rtol=1e-6,
    atol=1e-6,
    mixed_precision=True,
    mixed_precision_tolerance=None,
):
    """The shape, `.keras` and mixed-precision checks of a model.

    Args:
        make_model: builds the model (called once under float32 and once under
            a global `mixed_float16` policy, which is restored afterwards).
        input_data: one NumPy input batch.
        expected_output_shape: the eager output's shape, when to be checked.
        rtol: relative tolerance of the `.keras` round trip.
        atol: absolute tolerance of the `.keras` round trip.
        mixed_precision: whether to run the `mixed_float16` check.
        mixed_precision_tolerance: `{"rtol", "atol"}` of the `mixed_float16`
            output against float32 (default `MIXED_FLOAT16_TOLERANCE`).

    Returns:
        `(model, restored)`: the float32 model and its `.keras` copy.
    """
    input_data = np.asarray(input_data)
    model = make_model()
    output = model(input_data)
    symbolic = model.compute_output_spec(
        keras.KerasTensor(_batchless(input_data.shape), dtype=input_data.dtype)
    )
    assert _shapes(symbolic) == [_batchless(s) for s in _shapes(output)], (
        f"symbolic output {_shapes(symbolic)}, eager {_shapes(output)}"
    )
    if expected_output_shape is not None:
        assert _shapes(output) == _shapes_of(expected_output_shape), (
            f"output shape {_shapes(output)} != expected {expected_output_shape}"
        )
    restored = run_model_saving_test(model, input_data, rtol=rtol, atol=atol)
    if mixed_precision:
        with global_dtype_policy("mixed_float16"):
            mixed = make_model()
        assert mixed.dtype_policy.name == "mixed_float16"
        mixed.set_weights(model.get_weights())
        mixed_output = mixed(input_data)
        for tensor in keras.tree.flatten(mixed_output):
            assert _is_float(tensor), f"mixed_float16 output dtype {tensor.dtype}"
        _assert_all_close(
            mixed_output,
            output,
            what="mixed_float16",
            **(mixed_precision_tolerance or MIXED_FLOAT16_TOLERANCE),
        )
    return model, restored
