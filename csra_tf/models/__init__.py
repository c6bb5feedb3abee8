"""Classifiers: a backbone and a head as one Keras model.

Public API:
    CSRAClassifier     backbone + head, owned as `.backbone` and `.head`
    build_classifier   a `CSRAClassifier` from a backbone name and head settings
    build_head         the head layer of a head name (`HEADS`)
    fold_batch_norm    an inference copy with BatchNorm folded into convolutions
    predict_dataset    runs a model over a batched dataset, one pass
    use_fused_batch_norm  BatchNormalization on TensorFlow's fused kernel
    use_fused_dense    Dense / EinsumDense as 2-D matmuls oneDNN fuses
    use_fused_layer_norm  LayerNormalization on XLA kernels while training
    use_matmul_attention  MultiHeadAttention's core as batched matmuls (training)
    predict_probabilities  sigmoid probabilities and targets over a dataset
"""

from csra_tf.models.batch_norm_folding import FoldedBatchNormalization, fold_batch_norm
from csra_tf.models.classifier import CSRAClassifier, build_classifier, build_head
from csra_tf.models.fused_batch_norm import use_fused_batch_norm
from csra_tf.models.fused_dense import use_fused_dense
from csra_tf.models.fused_layer_norm import use_fused_layer_norm
from csra_tf.models.matmul_attention import use_matmul_attention
from csra_tf.models.predict import predict_dataset, predict_probabilities

__all__ = [
    "CSRAClassifier",
    "FoldedBatchNormalization",
    "build_classifier",
    "build_head",
    "fold_batch_norm",
    "predict_dataset",
    "predict_probabilities",
    "use_fused_batch_norm",
    "use_fused_dense",
    "use_fused_layer_norm",
    "use_matmul_attention",
]
