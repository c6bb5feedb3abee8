"""csra-tf: class-specific residual attention (Zhu & Wu, ICCV 2021) for Keras 3.

Public API:
    CSRA                 the multi-head residual-attention head (csra_tf.layers)
    build_classifier     backbone + CSRA/GAP head, pixels in [0, 255] -> logits
    backbones            `create(name, weights, image_size)` and the registry
    evaluate             mAP, CP, CR, CF1, OP, OR, OF1 (+ top-3) and per-class AP
    MeanAveragePrecision streaming Keras metric, same mAP as `evaluate`
    TrainConfig, train   one training run, as `csra-train` does it
    with_max_pooling     training-free max pooling for trained models (Fig. 1)
    attention_maps       per-class attention maps of a CSRA model (Fig. 4)
    pointing_game        attention peaks against object boxes
    ablations            the paper's ablations and the CSRA-vs-GAP comparison
"""

from csra_tf import ablations, backbones, data, layers, metrics, models, training
from csra_tf.attention import attention_maps, pointing_game
from csra_tf.layers import CSRA
from csra_tf.metrics import MeanAveragePrecision, evaluate
from csra_tf.models import build_classifier
from csra_tf.training import MaskedBinaryCrossentropy, TrainConfig, train
from csra_tf.training_free import with_max_pooling

__version__ = "0.1.0"

__all__ = [
    "CSRA",
    "MaskedBinaryCrossentropy",
    "MeanAveragePrecision",
    "TrainConfig",
    "ablations",
    "attention_maps",
    "backbones",
    "build_classifier",
    "data",
    "evaluate",
    "layers",
    "metrics",
    "models",
    "pointing_game",
    "train",
    "training",
    "with_max_pooling",
]
