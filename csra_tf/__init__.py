"""csra-tf: class-specific residual attention (Zhu & Wu, ICCV 2021) for Keras 3.

`import csra_tf` registers every Keras object that csra-tf writes into a `.keras`
file (layers, backbones, `CSRAClassifier`, loss, optimiser, schedules, metric), so
that `keras.saving.load_model(path)`, with Keras's defaults, loads any model that
`csra-train` or `csra-import` wrote. Data, training, export and the studies are
imported only when used.

Public API:
    CSRA                 the multi-head residual-attention head (csra_tf.layers)
    CSRAClassifier       backbone + head as one Keras model (csra_tf.models)
    build_classifier     backbone + CSRA/GAP head, pixels in [0, 255] -> logits
    backbones            `create(name, weights, image_size)` and the registry
    evaluate             mAP, CP, CR, CF1, OP, OR, OF1 (+ top-3) and per-class AP
    MeanAveragePrecision streaming Keras metric, same mAP as `evaluate`
    TrainConfig, train   one training run, as `csra-train` does it
    with_max_pooling     training-free max pooling for trained models (Fig. 1)
    attention_maps       per-class attention maps of a CSRA model (Fig. 4)
    pointing_game        attention peaks against object boxes
    studies              the paper's ablations and the CSRA-vs-GAP comparison

The package's layers and the direction of its imports are described in
docs/architecture.md.
"""

import importlib

__version__ = "0.2.0"

_LAZY_ATTRIBUTES = {
    "CSRA": "csra_tf.layers",
    "CSRAClassifier": "csra_tf.models",
    "MaskedBinaryCrossentropy": "csra_tf.optimization",
    "MeanAveragePrecision": "csra_tf.metrics",
    "TrainConfig": "csra_tf.config",
    "attention_maps": "csra_tf.inference",
    "build_classifier": "csra_tf.models",
    "evaluate": "csra_tf.metrics",
    "pointing_game": "csra_tf.inference",
    "train": "csra_tf.training",
    "with_max_pooling": "csra_tf.training_free",
}
_LAZY_MODULES = (
    "backbones",
    "config",
    "data",
    "layers",
    "metrics",
    "models",
    "optimization",
    "studies",
    "training",
)

__all__ = sorted([*_LAZY_ATTRIBUTES, *_LAZY_MODULES])


def __getattr__(name):
    if name in _LAZY_ATTRIBUTES:
        return getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    if name in _LAZY_MODULES:
        return importlib.import_module(f"csra_tf.{name}")
    raise AttributeError(f"module 'csra_tf' has no attribute {name!r}")


def __dir__():
    return __all__


from csra_tf._startup import filtered_native_stderr  # noqa: E402

# TensorFlow's native start-up notices stay off the terminal (csra_tf._startup).
# The modules below define csra-tf's registered Keras objects; none of them loads
# TensorFlow Datasets, `csra_tf.data` or `csra_tf.training`.
with filtered_native_stderr():
    import tensorflow as _tensorflow

    _tensorflow.config.list_physical_devices()  # the CUDA platform reports here
    from csra_tf import layers, metrics, models, optimization  # noqa: F401
del filtered_native_stderr
