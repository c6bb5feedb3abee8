"""Export: SavedModel and TFLite variants, each verified against Keras.

Public API:
    export_model            SavedModel + TFLite variants, verified -> export_report.json
    export_workdir          the same for a run folder
    export_model_file       the same for a `.keras` file and labelled manifests
    ExportVerificationError raised (after the report is written) when a gate fails
    export_saved_model      `serving_default` (logits, probabilities) and `attention`
    convert_saved_model     one TFLite variant (images -> logits), builtin ops only
    add_metadata            MediaPipe-ready TFLite metadata: labels, calibration
    ModelInfo               the metadata's name, description, author, licence
    check_builtin_ops       fails on custom / select-TF ops in a flatbuffer
    VARIANTS                the TFLite variants

Running the exports (SavedModel, .tflite) and prediction live in
`csra_tf.inference`.
"""

from csra_tf.export.export_lib import (
    ExportVerificationError,
    export_model,
    export_model_file,
    export_workdir,
)
from csra_tf.export.metadata import ModelInfo, add_metadata
from csra_tf.export.saved_model import export_saved_model
from csra_tf.export.tflite import VARIANTS, check_builtin_ops, convert_saved_model

__all__ = [
    "VARIANTS",
    "ExportVerificationError",
    "ModelInfo",
    "add_metadata",
    "check_builtin_ops",
    "convert_saved_model",
    "export_model",
    "export_model_file",
    "export_saved_model",
    "export_workdir",
]
