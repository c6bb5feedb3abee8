"""Class names of the paper's benchmarks, in the order of the authors' outputs.

The CSRA authors' released checkpoints score the classes in these orders (VOC:
the standard alphabetical order, also TFDS's; COCO 2014: category-id order, also
TFDS's; WIDER-Attribute: the annotation file's attribute ids). They are written
out here so that importing a checkpoint needs no dataset on disk.
"""

from __future__ import annotations

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
    "boat", "traffic light", "fire hydrant", "stop sign", "parking meter", "bench",
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
    "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup",
    "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip

WIDER_ATTRIBUTES = (
    "Male", "longHair", "sunglass", "Hat", "Tshirt", "longSleeve", "formal",
    "shorts", "jeans", "longPants", "skirt", "faceMask", "logo", "stripe",
)  # fmt: skip

BENCHMARK_CLASSES = {
    "voc2007": VOC_CLASSES,
    "voc2012": VOC_CLASSES,
    "coco2014": COCO_CLASSES,
    "wider": WIDER_ATTRIBUTES,
}
"""Dataset name -> its class names in output order."""
