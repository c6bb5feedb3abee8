"""Data sources and the input pipeline.

Public API:
    Source              the (dataset, class_names, num_examples, bad_records)
                        every source returns
    manifest            JSON-lines / CSV manifests: the format for users' own data
    write_manifest      writes records as a manifest
    load_boxes          the per-record `"boxes"` of a JSON-lines manifest
    voc, coco           PASCAL VOC 2007/2012 and MS-COCO 2014 through TFDS
    train_val_sources   a benchmark's (train, evaluation) sources by name
    is_manifest         whether a dataset value is a manifest path
    split_source        (train, validation) parts of a source by index
    stratified_split    seeded validation indices, stratified by label
    source_targets      the targets of a source, without decoding images
    wider               WIDER-Attribute person crops from the official JSON
    shapes              the embedded shapes dataset (generated on first use)
    shapes_dir          the folder of a shapes split (generated on first use)
    generate_shapes     writes a shapes split: JPEG files, manifest, meta
    SHAPE_CLASSES       the shapes dataset's class names
    build_dataset       augment, resize, batch and prefetch a source's examples
    BadRecord           a record that failed validation
    BAD_RECORD_REASONS  the reasons a record can be bad (keys of `bad_records`)
"""

from csra_tf.data.catalog import is_manifest, train_val_sources
from csra_tf.data.manifest import load_boxes, manifest, write_manifest
from csra_tf.data.pipeline import build_dataset
from csra_tf.data.records import BAD_RECORD_REASONS, BadRecord
from csra_tf.data.shapes import SHAPE_CLASSES, generate_shapes, shapes, shapes_dir
from csra_tf.data.source import Source
from csra_tf.data.split import source_targets, split_source, stratified_split
from csra_tf.data.tfds_sources import coco, voc
from csra_tf.data.wider import wider

__all__ = [
    "BAD_RECORD_REASONS",
    "SHAPE_CLASSES",
    "BadRecord",
    "Source",
    "build_dataset",
    "coco",
    "generate_shapes",
    "is_manifest",
    "load_boxes",
    "manifest",
    "shapes",
    "shapes_dir",
    "source_targets",
    "split_source",
    "stratified_split",
    "train_val_sources",
    "voc",
    "wider",
    "write_manifest",
]
