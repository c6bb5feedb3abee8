"""PASCAL VOC and MS-COCO through TensorFlow Datasets.

The datasets are read as `tfds.load` reads them, from `data_dir` (TFDS's
default folder when None), prepared there first by TFDS's own `voc` / `coco`
builders if they are not. Examples come in the order of the prepared files
(`shuffle_files=False`). When the preparation cannot fetch the archives (no
network, archives in `<data_dir>/downloads/manual` that are not the originals),
a one-line `UserError` says what was tried and how to prepare the data offline
(docs/reproduce.md, "Preparing the datasets offline").
"""

from __future__ import annotations

import os

import tensorflow as tf
import tensorflow_datasets as tfds

from csra_tf.data.source import Source
from csra_tf.errors import UserError

VOC_YEARS = (2007, 2012)
VOC_NUM_CLASSES = 20
COCO_NUM_CLASSES = 80


def voc(
    year: int | str,
    split: str,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Source:
    """Loads PASCAL VOC ("voc/2007" or "voc/2012" in TFDS) as a `Source`.

    Targets follow the VOC classification protocol: `1` where the class has an
    object not marked difficult, `-1` (unknown) where all of its objects are
    difficult, `0` otherwise. Objects are matched with their `is_difficult`
    flags by position; an object without a flag counts as not difficult.

    Args:
        year: 2007 or 2012.
        split: A TFDS split: `"train"`, `"validation"`, `"test"` (2007 only has
            test labels) or an expression such as `"train+validation"`
            (the paper's VOC2007 trainval).
        data_dir: The TFDS data folder; None for TFDS's default.
        download: Whether TFDS may download and prepare the dataset when it is
            not in `data_dir` yet.

    Returns:
        A `Source` of `(image uint8 (H, W, 3), target float32 (20,))` pairs with
        the 20 VOC class names in TFDS order (alphabetical).

    Raises:
        UserError: for a wrong `year` or `split`, or when the dataset is not
            prepared in `data_dir` and cannot be downloaded and prepared.

    Example:

    >>> train = voc(2007, "train+validation")  # doctest: +SKIP
    >>> train.class_names[:3]  # doctest: +SKIP
    ['aeroplane', 'bicycle', 'bird']

    (Not run as a doctest: TFDS downloads VOC on first use.)
    """
    year_number = _voc_year(year)
    dataset, info = _load(f"voc/{year_number}", split, data_dir, download)
    label_feature = info.features["objects"]["label"]
    num_classes = label_feature.num_classes

    def to_example(example):
        objects = example["objects"]
        return example["image"], _voc_target(
            objects["label"], objects["is_difficult"], num_classes
        )

    dataset = dataset.map(
        to_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return Source(
        dataset=dataset,
        class_names=list(label_feature.names),
        num_examples=_num_examples(info, split, dataset),
    )


# Images of COCO 2014 with at least one annotation: the paper's sets (§4.2).
COCO_ANNOTATED_IMAGES = {"train": 82_081, "validation": 40_137}
# All images of those TFDS splits (their annotated share is the count above).
COCO_SPLIT_IMAGES = {"train": 82_783, "validation": 40_504}


def coco(
    split: str,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    drop_unannotated: bool = True,
) -> Source:
    """Loads MS-COCO 2014 ("coco/2014" in TFDS) as a `Source`.

    A class is present (`1`) when the image has any object of it, crowd
    annotations (`is_crowd`) included: a crowd region of people still shows
    people. Every other class is `0`; COCO has no unknown labels. As in the
    paper (§4.2: 82,081 training and 40,137 validation images), images without
    any annotation are dropped.

    Args:
        split: A TFDS split: `"train"`, `"validation"` (the paper's train2014 /
            val2014), `"test"`, `"test2015"` (both unlabelled), or an expression.
        data_dir: The TFDS data folder; None for TFDS's default.
        download: Whether TFDS may download and prepare the dataset when it is
            not in `data_dir` yet.
        drop_unannotated: Whether to drop the images without any annotation.

    Returns:
        A `Source` of `(image uint8 (H, W, 3), target float32 (80,))` pairs with
        the 80 COCO class names in TFDS order.

    Raises:
        UserError: for a wrong `split`, or when the dataset is not prepared in
            `data_dir` and cannot be downloaded and prepared.

    Example:

    >>> val = coco("validation")  # doctest: +SKIP
    >>> val.num_classes  # doctest: +SKIP
    80

    (Not run as a doctest: TFDS downloads COCO, about 20 GB, on first use.)
    """
    dataset, info = _load("coco/2014", split, data_dir, download)
    label_feature = info.features["objects"]["label"]
    num_classes = label_feature.num_classes

    def to_example(example):
        return example["image"], _presence(example["objects"]["label"], num_classes)

    num_examples = _num_examples(info, split, dataset)
    if drop_unannotated:
        dataset = dataset.filter(lambda e: tf.size(e["objects"]["label"]) > 0)
        if COCO_SPLIT_IMAGES.get(split) == num_examples:
            num_examples = COCO_ANNOTATED_IMAGES[split]
        else:
            num_examples = int(dataset.reduce(0, lambda count, _: count + 1))
    dataset = dataset.map(
        to_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return Source(
        dataset=dataset,
        class_names=list(label_feature.names),
        num_examples=num_examples,
    )


def _voc_year(year: int | str) -> int:
    """Validates a VOC year."""
    try:
        year_number = int(year)
    except (TypeError, ValueError):
        year_number = None
    if isinstance(year, bool) or year_number not in VOC_YEARS:
        raise UserError(f"`year` must be one of {VOC_YEARS}. Received: year={year!r}")
    return year_number


def _load(
    name: str,
    split: str,
    data_dir: str | os.PathLike | None,
    download: bool,
) -> tuple[tf.data.Dataset, tfds.core.DatasetInfo]:
    """Loads a TFDS dataset in file order, with its info, as `tfds.load` does.

    Preparing the dataset (download, extraction, generation) is the step that
    needs the network or the archives; its failures become a `UserError` that
    says what was tried and how to prepare the data offline.
    """
    if not isinstance(split, str) or not split:
        raise UserError(
            f"`split` must be a non-empty string. Received: split={split!r}"
        )
    data_dir = None if data_dir is None else os.fspath(data_dir)
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        hint = _prepare_hint(name, builder)
        if not download:
            raise UserError(
                f"The TFDS dataset {name} is not prepared in {builder.data_dir} and "
                f"downloading is off. {hint} Received: data_dir={data_dir}"
            )
        try:
            builder.download_and_prepare()
        except _FETCH_ERRORS as error:
            raise UserError(
                f"Could not download and prepare the TFDS dataset {name} into "
                f"{builder.data_dir} ({_reason(error)}). {hint} "
                f"Received: data_dir={data_dir}"
            ) from error
    dataset = builder.as_dataset(split=split, shuffle_files=False)
    return dataset, builder.info


# What preparing a TFDS dataset raises when its files cannot be fetched: network
# and HTTP errors (requests' are `OSError`s), a download that is not what TFDS
# expects (status, checksum), an archive that is missing or cannot be read.
_FETCH_ERRORS = (
    OSError,
    tfds.download.DownloadError,
    tfds.core.download.download_manager.NonMatchingChecksumError,
)


def _prepare_hint(name: str, builder: tfds.core.DatasetBuilder) -> str:
    """How to provide the dataset without network, in one sentence."""
    manual_dir = os.path.join(os.fspath(builder.data_dir_root), "downloads", "manual")
    return (
        "Where there is no network, prepare it on a machine that has it "
        f"(`tfds.builder('{name}', data_dir=DIR).download_and_prepare()`), copy "
        "DIR here and pass it as the data folder (--data_dir=DIR), or put the "
        f"dataset's archives, as downloaded, into {manual_dir} and run again; "
        'see docs/reproduce.md, "Preparing the datasets offline".'
    )


def _reason(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _num_examples(
    info: tfds.core.DatasetInfo, split: str, dataset: tf.data.Dataset
) -> int | None:
    """The split's size from the dataset info, else from the dataset."""
    try:
        return int(info.splits[split].num_examples)
    except (KeyError, ValueError, TypeError, AttributeError):
        cardinality = int(dataset.cardinality())
        return cardinality if cardinality >= 0 else None


def _presence(labels: tf.Tensor, num_classes: int) -> tf.Tensor:
    """A float32 `(C,)` vector: 1 for each class among `labels`, else 0."""
    counts = tf.math.bincount(
        tf.cast(labels, tf.int32),
        minlength=num_classes,
        maxlength=num_classes,
        dtype=tf.int32,
    )
    return tf.ensure_shape(tf.cast(counts > 0, tf.float32), [num_classes])


def _voc_target(
    labels: tf.Tensor, is_difficult: tf.Tensor, num_classes: int
) -> tf.Tensor:
    """1 for classes with a non-difficult object, -1 for classes with only
    difficult ones, 0 otherwise."""
    num_objects = tf.size(labels)
    num_flags = tf.minimum(tf.size(is_difficult), num_objects)
    difficult = tf.concat(
        [is_difficult[:num_flags], tf.zeros([num_objects - num_flags], tf.bool)], 0
    )
    present = _presence(labels, num_classes)
    easy = _presence(tf.boolean_mask(labels, tf.logical_not(difficult)), num_classes)
    return tf.where(easy > 0, 1.0, tf.where(present > 0, -1.0, 0.0))
