"""Data sources and the input pipeline.

Public API:
    Source           the (dataset, class_names, num_examples) every source returns
    manifest         JSON-lines / CSV manifests: the format for users' own data
    write_manifest   writes records as a manifest
    load_boxes       the per-record `"boxes"` of a JSON-lines manifest
    shapes           the embedded shapes dataset (generated on first use)
    shapes_dir       the folder of a shapes split (generated on first use)
    generate_shapes  writes a shapes split: JPEG files, manifest, meta
    SHAPE_CLASSES    the shapes dataset's class names
    build_dataset    augment, resize, batch and prefetch a source's examples
"""

from csra_tf.data.manifest import load_boxes, manifest, write_manifest
from csra_tf.data.pipeline import build_dataset
from csra_tf.data.shapes import SHAPE_CLASSES, generate_shapes, shapes, shapes_dir
from csra_tf.data.source import Source

__all__ = [
    "SHAPE_CLASSES",
    "Source",
    "build_dataset",
    "generate_shapes",
    "load_boxes",
    "manifest",
    "shapes",
    "shapes_dir",
    "write_manifest",
]
