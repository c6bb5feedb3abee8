"""What a compiled CSRA model carries: its loss, optimiser and learning-rate schedules.

These are the Keras objects that `csra-train` writes into a `.keras` file besides
the model, so they live below `csra_tf.training` and are registered by a plain
`import csra_tf`: `keras.saving.load_model` then restores a compiled model with
its optimiser state.

Public API:
    MaskedBinaryCrossentropy   BCE on logits, unknown (-1) labels masked
    MultiRateSGD               SGD with per-variable learning-rate multipliers
    WarmupCosineDecay, WarmupStepDecay   the learning-rate schedules
"""

from csra_tf.optimization.losses import MaskedBinaryCrossentropy
from csra_tf.optimization.optimizer import MultiRateSGD
from csra_tf.optimization.schedules import WarmupCosineDecay, WarmupStepDecay

__all__ = [
    "MaskedBinaryCrossentropy",
    "MultiRateSGD",
    "WarmupCosineDecay",
    "WarmupStepDecay",
]
