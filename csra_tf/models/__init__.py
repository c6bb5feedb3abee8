"""Classifiers: a backbone and a head as one Keras model.

The models run the layers they are given; the speed paths (fused kernels,
BatchNorm folding) are opt-in transformations in `csra_tf.acceleration`.

Public API:
    CSRAClassifier     backbone + head, owned as `.backbone` and `.head`;
                       `save_to_preset` / `from_preset` share it as a keras-hub
                       preset (`csra_tf.models.presets`)
    build_classifier   a `CSRAClassifier` from a backbone name and head settings
    build_head         the head layer of a head name (`HEADS`)
    predict_dataset    runs a model over a batched dataset, one pass
    predict_probabilities  sigmoid probabilities and targets over a dataset
"""

from csra_tf.models.classifier import CSRAClassifier, build_classifier, build_head
from csra_tf.models.prediction import predict_dataset, predict_probabilities

__all__ = [
    "CSRAClassifier",
    "build_classifier",
    "build_head",
    "predict_dataset",
    "predict_probabilities",
]
