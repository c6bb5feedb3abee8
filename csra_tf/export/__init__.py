"""Export and inference: SavedModel, TFLite variants, verification, prediction.

Public API:
    export_model            SavedModel + TFLite variants, verified -> export_report.json
    export_workdir          the same for a `csra-train` workdir
    export_model_file       the same for a `.keras` file and labelled manifests
    ExportVerificationError raised (after the report is written) when a gate fails
    export_saved_model      `serving_default` (logits, probabilities) and `attention`
    convert_saved_model     one TFLite variant, builtin ops only
    check_builtin_ops       fails on custom / select-TF ops in a flatbuffer
    TFLiteModel             runs a .tflite (LiteRT) on float pixels, any quantisation
    Predictor               .keras / SavedModel / .tflite behind one interface
    predict_files           image files -> label records (+ attention overlays)
    write_predictions       records -> JSON lines or a table; counts errors
    expand_image_paths      files, folders and globs -> image paths
    read_image              any image file -> uint8 RGB
    attention_overlay       one class's attention map over an image (PNG-ready)
    calibrate_thresholds    per-class F1-maximising thresholds
    threshold_metrics       CP, CR, CF1, OP, OR, OF1 with per-class thresholds
    calibration_summary     those at 0.5, calibrated in-sample and cross-fitted
    save_thresholds, load_thresholds   thresholds.json keyed by class name
"""

from csra_tf.export.export_lib import (
    ExportVerificationError,
    export_model,
    export_model_file,
    export_workdir,
)
from csra_tf.export.images import attention_overlay, expand_image_paths, read_image
from csra_tf.export.predictor import Predictor, predict_files, write_predictions
from csra_tf.export.saved_model import SavedModelRunner, export_saved_model
from csra_tf.export.tflite import VARIANTS, check_builtin_ops, convert_saved_model
from csra_tf.export.thresholds import (
    calibrate_thresholds,
    calibration_summary,
    load_thresholds,
    save_thresholds,
    threshold_metrics,
)
from csra_tf.export.verify import TFLiteModel

__all__ = [
    "VARIANTS",
    "ExportVerificationError",
    "Predictor",
    "SavedModelRunner",
    "TFLiteModel",
    "attention_overlay",
    "calibrate_thresholds",
    "calibration_summary",
    "check_builtin_ops",
    "convert_saved_model",
    "expand_image_paths",
    "export_model",
    "export_model_file",
    "export_saved_model",
    "export_workdir",
    "load_thresholds",
    "predict_files",
    "read_image",
    "save_thresholds",
    "threshold_metrics",
    "write_predictions",
]
