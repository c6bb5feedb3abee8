"""Backbone costs: parameters as Keras counts them, FLOPs as the formulas give."""

import keras
import pytest

from csra_tf import backbones
from csra_tf.benchmarks.backbone_costs import (
    count_flops,
    format_markdown,
    measure_backbone,
)
from csra_tf.errors import UserError
from csra_tf.models import build_classifier

_TINY_DINOV2 = dict(num_layers=1, hidden_dim=32, num_heads=2, intermediate_dim=64)


@pytest.mark.parametrize(
    "name, size, overrides, timed",
    [
        ("tiny", 32, dict(stage_widths=(8, 16), blocks_per_stage=1), True),
        ("dinov2_small", 28, _TINY_DINOV2, False),
    ],
)
def test_measure_counts_parameters_and_times(name, size, overrides, timed):
    costs = measure_backbone(
        name,
        flop_sizes=(size,),
        timing_sizes=(size,) if timed else (),
        num_classes=5,
        warmup=1,
        steps=1,
        progress=lambda line: None,
        **overrides,
    )
    model = build_classifier(
        backbones.create(name, image_size=size, **overrides), 5, image_size=size
    )
    assert costs.parameters == model.count_params()
    assert costs.gflops[size] > 0
    if timed:
        assert costs.inference_img_s[size] > 0 and costs.train_img_s[size] > 0


def test_rejected_size_and_skipped_timing_leave_empty_cells():
    costs = measure_backbone(
        "dinov2_small",
        flop_sizes=(28, 30),
        timing_sizes=(28,),
        num_classes=5,
        skip_timing_over_gflops=0.0,
        progress=lambda line: None,
        **_TINY_DINOV2,
    )
    assert costs.gflops[30] is None and costs.gflops[28] > 0
    assert costs.inference_img_s == {} and len(costs.notes) == 2
    table = format_markdown([costs], flop_sizes=(28, 30), timing_sizes=(28,))
    row = [cell.strip() for cell in table.splitlines()[2].split("|")]
    assert row[1] == "`dinov2_small`" and row[3] != "" and row[4:7] == ["", "", ""]


def test_unknown_name_is_a_user_error():
    with pytest.raises(UserError, match="Unknown backbone"):
        measure_backbone("dinov2_smol")


def test_conv_and_dense_flops_equal_the_formulas():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, padding="same"),
            keras.layers.DepthwiseConv2D(3),
            keras.layers.Conv2D(6, 1),
            keras.layers.Flatten(),
            keras.layers.Dense(5),
        ]
    )
    conv = 8 * 8 * 4 * (3 * 3 * 3)  # output elements x multiply-adds each
    depthwise = 6 * 6 * 4 * (3 * 3)
    pointwise = 6 * 6 * 6 * 4
    dense = 5 * (6 * 6 * 6)
    macs = conv + depthwise + pointwise + dense
    assert count_flops(model, image_size=8) == 2 * macs
    assert count_flops(model, image_size=8, batch_size=3) == 3 * 2 * macs


def test_ops_hidden_in_nested_functions_are_refused():
    # Keras runs grouped convolutions as a nested (XLA) function on CPU.
    grouped = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(6, 1, groups=3)]
    )
    with pytest.raises(ValueError, match="another graph"):
        count_flops(grouped, image_size=8)


def test_attention_flops_equal_the_formulas():
    tokens, width, heads, key_dim = 4, 3, 2, 5
    inputs = keras.Input((2, 2, width))
    x = keras.layers.Reshape((tokens, width))(inputs)
    x = keras.layers.MultiHeadAttention(heads, key_dim)(x, x)
    model = keras.Model(inputs, x)
    projections = 3 * tokens * width * heads * key_dim  # query, key, value
    scores = heads * tokens * tokens * key_dim
    weighted = heads * tokens * tokens * key_dim
    output = tokens * heads * key_dim * width
    assert count_flops(model, image_size=2) == 2 * (
        projections + scores + weighted + output
    )
