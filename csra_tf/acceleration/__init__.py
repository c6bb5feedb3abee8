"""Speed paths: opt-in transformations that make a model faster, same results.

A model is what its owner built: `CSRAClassifier` never rewrites its parts. The
programs (training, evaluation, predict, export, the benchmarks) apply these
paths explicitly with `accelerate`, as they choose `jit_compile` or a dtype
policy. Each path gives Keras's results up to float rounding; the ones that
lean on private Keras names check for them when applied and otherwise keep
Keras's own calls, with one warning (`PRIVATE_KERAS_NAMES`, docs/architecture.md).

Public API:
    accelerate                the model to run for training or inference
    fold_batch_norm           an inference copy with BatchNorm folded into convolutions
    FoldedBatchNormalization  the pass-through layer left where a BatchNorm folded
    PRIVATE_KERAS_NAMES       every private Keras name the speed paths use
"""

from csra_tf.acceleration.batch_norm_folding import (
    FoldedBatchNormalization,
    fold_batch_norm,
)
from csra_tf.acceleration.keras_internals import PRIVATE_KERAS_NAMES
from csra_tf.acceleration.speed_paths import accelerate

__all__ = [
    "PRIVATE_KERAS_NAMES",
    "FoldedBatchNormalization",
    "accelerate",
    "fold_batch_norm",
]
