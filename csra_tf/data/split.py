"""Splitting a validation part off a training source, stratified by label.

Used when a training manifest comes without a validation manifest
(`--val_split`): a seeded fraction of the records, chosen so that every class
keeps about the same share of its images on both sides.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from csra_tf.config.json_files import read_json, write_json
from csra_tf.data.source import Source
from csra_tf.errors import UserError


def source_targets(source: Source) -> np.ndarray:
    """The target vectors of every example of a source, in order.

    Reads the undecoded records when the source has them (no image decoding).

    Args:
        source: a `Source`.

    Returns:
        float32 `(N, C)` targets.
    """
    if source.records is not None:
        dataset = source.records.map(lambda *record: record[-1])
    else:
        dataset = source.dataset.map(lambda image, target: target)
    targets = list(dataset.as_numpy_iterator())
    if not targets:
        return np.zeros((0, source.num_classes), np.float32)
    return np.stack(targets).astype(np.float32)


def stratified_split(targets: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices of a seeded validation part, stratified as far as possible.

    Each image is grouped by its rarest present class (images without a
    present class form one group); every group gives `round(fraction * n)` of
    its images, at least one when the group has two or more. Each class thus
    keeps close to `fraction` of its images in the validation part, and the
    rare classes are never left out of it.

    Args:
        targets: `(N, C)` targets (1 present, 0 absent, -1 unknown).
        fraction: the share of images to put in the validation part, in (0, 1).
        seed: the seed of the choice within each group.

    Returns:
        Sorted int64 indices of the validation images.

    Example:
    >>> import numpy as np
    >>> targets = np.eye(4)[np.arange(20) % 4]
    >>> stratified_split(targets, 0.25).size
    4
    """
    targets = np.asarray(targets)
    if not 0.0 < fraction < 1.0:
        raise UserError(
            f"`val_split` must be in (0, 1). Received: val_split={fraction}"
        )
    if targets.ndim != 2 or len(targets) < 2:
        raise UserError(
            "Splitting needs at least two labelled images. Received: "
            f"targets.shape={targets.shape}"
        )
    present = targets == 1
    frequency = present.sum(axis=0)
    # The rarest present class of each image; C for images with none.
    rank = np.where(present, frequency[None, :], np.iinfo(np.int64).max)
    group = np.where(present.any(axis=1), rank.argmin(axis=1), targets.shape[1])
    rng = np.random.default_rng(seed)
    chosen = []
    for key in np.unique(group):
        members = np.flatnonzero(group == key)
        count = int(round(fraction * len(members)))
        if len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        chosen.append(rng.permutation(members)[:count])
    indices = np.sort(np.concatenate(chosen)).astype(np.int64)
    if indices.size == 0 or indices.size == len(targets):
        raise UserError(
            f"A val_split of {fraction} leaves one side empty for {len(targets)} "
            "images. Received: val_split={fraction}"
        )
    return indices


def kept_split(
    source: Source, fraction: float, seed: int, path: str | os.PathLike, name: str
) -> np.ndarray:
    """Validation indices of `source`, made once and kept in a JSON file.

    The first call draws `stratified_split(...)` and writes it to `path`; later
    calls read it back, so a resumed or re-evaluated run uses the same split.

    Args:
        source: the full source (its size must be known).
        fraction: the share of examples that validate.
        seed: the split's seed.
        path: the JSON file that keeps the split.
        name: what `source` is (a manifest path), recorded and named in errors.

    Returns:
        The sorted validation indices.

    Raises:
        UserError: when the kept split was made for a source of another size.
    """
    path = os.fspath(path)
    if os.path.exists(path):
        saved = read_json(path)
        if saved.get("num_records") != source.num_examples:
            raise UserError(
                f"{path} splits {saved.get('num_records')} records but {name} "
                f"now has {source.num_examples}: the manifest changed since the "
                "split was made. Use a new workdir."
            )
        return np.asarray(saved["val_records"], np.int64)
    indices = stratified_split(source_targets(source), fraction, seed=seed)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_json(
        path,
        {
            "manifest": name,
            "val_split": fraction,
            "seed": seed,
            "num_records": source.num_examples,
            "val_records": indices.tolist(),
        },
    )
    return indices


def split_source(source: Source, val_indices) -> tuple[Source, Source]:
    """Splits a source into (train, validation) parts by example index.

    Args:
        source: the full source.
        val_indices: indices of the validation examples.

    Returns:
        `(train, validation)` sources with the source's class names, each in
        the source's order.
    """
    total = source.num_examples
    if total is None:
        raise UserError("Splitting needs a source of known size.")
    is_val = np.zeros(total, bool)
    is_val[np.asarray(val_indices, np.int64)] = True
    return _subset(source, ~is_val), _subset(source, is_val)


def _subset(source: Source, keep: np.ndarray) -> Source:
    mask = tf.constant(keep)

    def keep_example(index, *_):
        return tf.gather(mask, index)

    def drop_index(index, *element):
        return element if len(element) > 1 else element[0]

    count = int(keep.sum())
    if source.records is not None:
        records = source.records.enumerate().filter(keep_example).map(drop_index)
        return Source.from_records(
            records,
            source.decode_fn,
            source.class_names,
            count,
            source.bad_records,
            encoded_fn=source.encoded_fn,
        )
    dataset = source.dataset.enumerate().filter(keep_example).map(drop_index)
    return Source(dataset, source.class_names, count, dict(source.bad_records))
