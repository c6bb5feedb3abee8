"""Datasets by name: the training and evaluation sources of each benchmark.

`train_val_sources("voc2007", ...)` returns the (train, evaluation) pair the
paper uses for that benchmark; any other name is taken as a manifest path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from csra_tf.config.choices import NAMED_DATASETS
from csra_tf.data.manifest import manifest
from csra_tf.data.records import check_on_bad_record
from csra_tf.data.shapes import shapes
from csra_tf.data.source import Source
from csra_tf.data.split import kept_split, split_source
from csra_tf.data.tfds_sources import coco, voc
from csra_tf.data.wider import wider
from csra_tf.errors import UserError

# TFDS (name, train split, evaluation split) of the TFDS benchmarks: VOC2007
# trains on trainval and tests on test; VOC2012's test labels are not public,
# so it evaluates on val; COCO2014 trains on train2014, tests on val2014.
TFDS_SPLITS = {
    "voc2007": (2007, "train+validation", "test"),
    "voc2012": (2012, "train", "validation"),
    "coco2014": (None, "train", "validation"),
}
# The official WIDER-Attribute files, and where they are looked for.
WIDER_TRAIN_FILE = "wider_attribute_trainval.json"
WIDER_EVAL_FILE = "wider_attribute_test.json"
_WIDER_ANNOTATION_DIRS = ("", "Annotations", "Anno", "wider_attribute_annotation")


def is_manifest(dataset: str) -> bool:
    """Whether a `dataset` value names a manifest file rather than a benchmark.

    Args:
        dataset: a value of `TrainConfig.dataset`.

    Returns:
        True unless `dataset` is one of `NAMED_DATASETS`.
    """
    return dataset not in NAMED_DATASETS


def train_val_sources(
    dataset: str,
    data_dir: str | os.PathLike | None = None,
    val_dataset: str | os.PathLike | None = None,
    image_root: str | os.PathLike | None = None,
    on_bad_record: str = "error",
    seed: int = 0,
    shapes_image_size: int = 64,
    shapes_num_train: int = 6000,
    shapes_num_val: int = 2000,
    progress: bool = True,
    class_names: Sequence[str] | None = None,
    val_split: float = 0.0,
    val_split_file: str | os.PathLike | None = None,
) -> tuple[Source, Source]:
    """Returns the (training, evaluation) sources of a dataset.

    - `"shapes"`: the embedded dataset, generated in `data_dir` if needed.
    - `"voc2007"`: TFDS voc/2007 trainval / test. `"voc2012"`: voc/2012 train /
      val. `"coco2014"`: TFDS coco/2014 train / val. `data_dir` is the TFDS
      data folder (None: TFDS's default).
    - `"wider"`: WIDER-Attribute trainval / test, from the official files in
      `data_dir` (or its `Annotations/` or `Anno/` folder), with images under
      `image_root` (default `data_dir/Image`).
    - Anything else: a manifest file, evaluated on the manifest `val_dataset`
      with the training manifest's class names; without `val_dataset`, a
      seeded, label-stratified `val_split` of its records validates, kept in
      `val_split_file` so that every later call uses the same split.

    Args:
        dataset: One of `NAMED_DATASETS`, or a manifest path.
        data_dir: The data folder (see above).
        val_dataset: The evaluation manifest, for a manifest `dataset`.
        image_root: The root of relative image paths (manifests; WIDER images).
        on_bad_record: `"error"` or `"skip"`, for manifests and WIDER.
        seed: The seed of the shapes dataset.
        shapes_image_size: The side of the shapes images.
        shapes_num_train: The number of shapes training images.
        shapes_num_val: The number of shapes evaluation images.
        progress: Whether to show progress bars while generating or checking.
        class_names: For manifests: the classes, in target order (a trained
            model's); default the training manifest's labels.
        val_split: For a manifest without `val_dataset`: the share of its
            records that validate (0: `val_dataset` is required).
        val_split_file: The JSON file that keeps that split.

    Returns:
        The training and the evaluation `Source`, with the same class names.

    Raises:
        ValueError: If the dataset needs an argument that is missing, such as
            `val_dataset` for a manifest or `data_dir` for shapes and WIDER.

    Example:

    >>> import tempfile
    >>> train, val = train_val_sources(
    ...     "shapes",
    ...     data_dir=tempfile.mkdtemp(),
    ...     shapes_image_size=32,
    ...     shapes_num_train=8,
    ...     shapes_num_val=4,
    ...     progress=False,
    ... )
    >>> train.num_examples, val.num_examples, train.class_names == val.class_names
    (8, 4, True)

    VOC 2007 comes from TFDS, which downloads it (about 900 MB) on first use:

    >>> train, val = train_val_sources("voc2007")  # doctest: +SKIP
    """
    check_on_bad_record(on_bad_record)
    if not isinstance(dataset, str | os.PathLike) or not os.fspath(dataset):
        raise UserError(
            f"`dataset` must be one of {NAMED_DATASETS} or a manifest path. "
            f"Received: dataset={dataset!r}"
        )
    dataset = os.fspath(dataset)
    if dataset == "shapes":
        _require(data_dir, "data_dir", dataset)
        kwargs = dict(
            image_size=shapes_image_size,
            num_train=shapes_num_train,
            num_val=shapes_num_val,
            seed=seed,
            progress=progress,
        )
        return shapes(data_dir, "train", **kwargs), shapes(data_dir, "val", **kwargs)
    if dataset in TFDS_SPLITS:
        year, train_split, eval_split = TFDS_SPLITS[dataset]
        if year is None:
            return coco(train_split, data_dir), coco(eval_split, data_dir)
        return voc(year, train_split, data_dir), voc(year, eval_split, data_dir)
    if dataset == "wider":
        _require(data_dir, "data_dir", dataset)
        root = image_root or os.path.join(os.fspath(data_dir), "Image")
        kwargs = dict(on_bad_record=on_bad_record, progress=progress)
        return (
            wider(_wider_file(data_dir, WIDER_TRAIN_FILE), root, **kwargs),
            wider(_wider_file(data_dir, WIDER_EVAL_FILE), root, **kwargs),
        )
    kwargs = dict(image_root=image_root, on_bad_record=on_bad_record, progress=progress)
    if not val_dataset and val_split and val_split_file:
        full = manifest(dataset, class_names=class_names, **kwargs)
        return split_source(
            full, kept_split(full, val_split, seed, val_split_file, name=dataset)
        )
    _require(val_dataset, "val_dataset", dataset)
    train = manifest(dataset, class_names=class_names, **kwargs)
    val = manifest(val_dataset, class_names=train.class_names, **kwargs)
    return train, val


def _require(value: object, name: str, dataset: str) -> None:
    if not value:
        raise UserError(
            f"Dataset {dataset!r} needs `{name}`. Received: {name}={value!r}"
        )


def _wider_file(data_dir: str | os.PathLike, name: str) -> str:
    """Finds an official WIDER-Attribute annotation file under `data_dir`."""
    candidates = [
        os.path.join(os.fspath(data_dir), folder, name)
        for folder in _WIDER_ANNOTATION_DIRS
    ]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise UserError(
        f"WIDER-Attribute file {name} not found; looked for: {candidates}. "
        f"Received: data_dir={os.fspath(data_dir)!r}"
    )
