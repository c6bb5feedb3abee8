"""Splitting a validation part off a training source, stratified by label."""

import json

import numpy as np
import pytest
import tensorflow as tf

from csra_tf.data import Source, source_targets, split_source, stratified_split
from csra_tf.data.split import kept_split
from csra_tf.errors import UserError


def _targets(seed=0, num=200, classes=6):
    rng = np.random.default_rng(seed)
    rates = np.array([0.5, 0.3, 0.2, 0.1, 0.05, 0.02])[:classes]
    targets = (rng.uniform(size=(num, classes)) < rates).astype(np.float32)
    targets[rng.uniform(size=targets.shape) < 0.05] = -1
    return targets


def test_split_is_seeded_and_keeps_each_class_share():
    targets = _targets()
    val = stratified_split(targets, 0.25, seed=3)
    np.testing.assert_array_equal(val, stratified_split(targets, 0.25, seed=3))
    assert not np.array_equal(val, stratified_split(targets, 0.25, seed=4))
    assert np.all(np.diff(val) > 0)
    assert abs(len(val) - 50) <= 6
    positives = (targets == 1).sum(0)
    val_positives = (targets[val] == 1).sum(0)
    # Every class keeps close to a quarter of its positives, the rare ones too.
    for total, kept in zip(positives, val_positives, strict=True):
        assert kept >= 1
        assert abs(kept - 0.25 * total) <= max(2, 0.1 * total), (kept, total)


def test_random_split_would_miss_rare_classes_more_often():
    # The point of stratifying: a class with 4 images always reaches both sides.
    targets = np.zeros((100, 2), np.float32)
    targets[:4, 1] = 1
    targets[4:, 0] = 1
    for seed in range(20):
        val = stratified_split(targets, 0.25, seed=seed)
        assert 1 <= (targets[val, 1] == 1).sum() <= 3


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match="val_split"):
        stratified_split(_targets(), fraction)


def test_split_source_partitions_in_order():
    targets = _targets(num=20)
    images = np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1).repeat(3, -1)
    source = Source(
        tf.data.Dataset.from_tensor_slices((images, targets)),
        ["a"] * 0 + [f"c{i}" for i in range(6)],
        20,
    )
    np.testing.assert_array_equal(source_targets(source), targets)
    train, val = split_source(source, [2, 5, 11])
    assert (train.num_examples, val.num_examples) == (17, 3)
    assert [int(x[0][0, 0, 0]) for x in val.dataset.as_numpy_iterator()] == [2, 5, 11]
    kept = [int(x[0][0, 0, 0]) for x in train.dataset.as_numpy_iterator()]
    assert kept == [i for i in range(20) if i not in (2, 5, 11)]


def _source(num):
    targets = _targets(num=num)
    images = np.zeros((num, 1, 1, 3), np.uint8)
    return Source(
        tf.data.Dataset.from_tensor_slices((images, targets)),
        [f"c{i}" for i in range(6)],
        num,
    )


def test_kept_split_is_drawn_once_then_read_back(tmp_path):
    path = tmp_path / "run" / "val_split.json"
    first = kept_split(_source(40), 0.25, seed=3, path=path, name="train.csv")
    assert np.array_equal(first, stratified_split(_targets(num=40), 0.25, seed=3))
    saved = json.loads(path.read_text())
    assert (saved["manifest"], saved["num_records"]) == ("train.csv", 40)
    # Another seed would draw another split: the kept one wins.
    again = kept_split(_source(40), 0.25, seed=4, path=path, name="train.csv")
    assert np.array_equal(again, first)
    with pytest.raises(UserError, match="splits 40 records but train.csv now has 41"):
        kept_split(_source(41), 0.25, seed=3, path=path, name="train.csv")
