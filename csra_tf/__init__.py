"""csra-tf: class-specific residual attention (Zhu & Wu, ICCV 2021) for Keras 3.

Public API:
    CSRA                 the multi-head residual-attention head (csra_tf.layers)
    build_classifier     backbone + CSRA/GAP head, pixels in [0, 255] -> logits
    backbones            `create(name, weights, image_size)` and the registry
    evaluate             mAP, CP, CR, CF1, OP, OR, OF1 (+ top-3) and per-class AP
    MeanAveragePrecision streaming Keras metric, same mAP as `evaluate`
    TrainConfig, train   one training run, as `csra-train` does it
"""

from csra_tf import backbones, data, layers, metrics, models, training
from csra_tf.layers import CSRA
from csra_tf.metrics import MeanAveragePrecision, evaluate
from csra_tf.models import build_classifier
from csra_tf.training import MaskedBinaryCrossentropy, TrainConfig, train

__version__ = "0.1.0"

__all__ = [
    "CSRA",
    "MaskedBinaryCrossentropy",
    "MeanAveragePrecision",
    "TrainConfig",
    "backbones",
    "build_classifier",
    "data",
    "evaluate",
    "layers",
    "metrics",
    "models",
    "train",
    "training",
]
