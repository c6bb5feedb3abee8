"""Inference: reading images, running a model of any format, attention maps.

Public API:
    Predictor             a .keras, SavedModel or .tflite classifier behind one API
    predict_files         labels (and overlays) for image files, one record each
    write_predictions     records as JSON lines or a table
    read_image            any image file -> uint8 RGB
    expand_image_paths    files, folders and globs -> image paths
    attention_maps        per-class attention of a CSRA classifier (Fig. 4)
    pointing_game         share of attention peaks that hit their objects
    pointing_game_report  the same with per-class counts
    write_overlays        attention-overlay PNGs of a model's classes
    attention_overlay     one class's attention blended over its image
    SavedModelRunner, TFLiteModel   the exported formats' runners
    read_tflite_metadata  labels and thresholds a `.tflite` export carries
"""

from csra_tf.inference.attention import (
    attention_maps,
    pointing_game,
    pointing_game_report,
    write_overlays,
)
from csra_tf.inference.images import expand_image_paths, read_image
from csra_tf.inference.overlays import attention_overlay
from csra_tf.inference.predictor import Predictor, predict_files, write_predictions
from csra_tf.inference.runners import SavedModelRunner, TFLiteModel
from csra_tf.inference.tflite_metadata import TFLiteMetadata, read_tflite_metadata

__all__ = [
    "Predictor",
    "SavedModelRunner",
    "TFLiteMetadata",
    "TFLiteModel",
    "attention_maps",
    "attention_overlay",
    "expand_image_paths",
    "pointing_game",
    "pointing_game_report",
    "predict_files",
    "read_image",
    "read_tflite_metadata",
    "write_overlays",
    "write_predictions",
]
