"""csra-tf: class-specific residual attention (Zhu & Wu, ICCV 2021) for Keras 3.

Public API (imported lazily: `import csra_tf` loads nothing heavy until a name
is used):
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
    "MaskedBinaryCrossentropy": "csra_tf.training",
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
