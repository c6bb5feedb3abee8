"""The class-score layers refuse bad feature shapes and class counts alike."""

import pytest

from csra_tf.errors import UserError
from csra_tf.layers import (
    CSRA,
    AveragePoolingHead,
    AvgMaxClassScores,
    ClassAttentionPooling,
)

LAYERS = [
    lambda: CSRA(num_classes=3),
    lambda: ClassAttentionPooling(num_classes=3),
    lambda: AveragePoolingHead(num_classes=3),
    lambda: AvgMaxClassScores(units=3),
]


@pytest.mark.parametrize("make", LAYERS)
@pytest.mark.parametrize("shape", [(None, 8), (None, 4, 4, None), (None, 2, 2, 2, 8)])
def test_bad_feature_shapes_are_refused_naming_the_layer(make, shape):
    layer = make()
    with pytest.raises(UserError, match=f"{type(layer).__name__} takes a feature map"):
        layer.build(shape)


@pytest.mark.parametrize("make", [CSRA, ClassAttentionPooling, AveragePoolingHead])
@pytest.mark.parametrize("num_classes", [0, -2, 2.5, "3"])
def test_class_counts_must_be_positive_ints(make, num_classes):
    with pytest.raises(UserError, match="`num_classes` must be a positive int"):
        make(num_classes=num_classes)
