r"""Exports a trained classifier: SavedModel + four TFLite variants, each verified.

Writes `saved_model/`, `model_{float32,float16,dynamic_int8,int8}.tflite`,
`classes.json` and `export_report.json`, prints the report as a table and exits
non-zero when a verification gate fails (the report is written anyway). Each
`.tflite` carries the metadata MediaPipe's image classifier reads: labels, input
normalisation, and the run's `thresholds.json` as per-class score calibration.

Example:
    csra-export --workdir=runs/shapes_csra
    csra-export --workdir=runs/shapes_csra --int8_map_budget=0.5 --num_threads=4
    csra-export --model=runs/mine/model.keras --data=data/val.jsonl \
        --calibration_data=data/train.jsonl --export_dir=runs/mine/export \
        --model_name="Street scenes" --model_author="Jo Doe" --model_license=CC-BY-4.0
"""

from __future__ import annotations

import os
import sys

from absl import flags

from csra_tf import run_folder
from csra_tf.cli.app import no_arguments, quiet_tensorflow_logs, run_program
from csra_tf.cli.config_flags import define_data_flags, flag_overrides
from csra_tf.config import TrainConfig
from csra_tf.errors import UserError
from csra_tf.export.export_lib import (
    ExportVerificationError,
    export_model_file,
    export_workdir,
)
from csra_tf.export.metadata import ModelInfo
from csra_tf.export.report import (
    DEFAULT_MAP_BUDGETS,
    DEFAULT_MAX_FLOAT32_DELTA,
    format_report,
)
from csra_tf.export.tflite import VARIANTS

PROGRAM = "csra-export"
FLAGS = flags.FLAGS
flags.DEFINE_string(
    "workdir", None, "A csra-train workdir (val split, train calibration)."
)
flags.DEFINE_string("model", None, "A .keras model (instead of --workdir).")
flags.DEFINE_string("data", None, "With --model: labelled held-out manifest.")
flags.DEFINE_string("calibration_data", None, "With --model: training manifest.")
flags.DEFINE_string("image_root", None, "Root of relative image paths of manifests.")
define_data_flags(TrainConfig, ("dataset", "data_dir", "val_dataset"), __name__)
flags.DEFINE_string("export_dir", None, "Output folder (default: <workdir>/export).")
flags.DEFINE_list("variants", list(VARIANTS), "TFLite variants to write.")
flags.DEFINE_float(
    "max_float32_delta",
    DEFAULT_MAX_FLOAT32_DELTA,
    "Max |delta probability| of SavedModel and float32 vs Keras.",
)
flags.DEFINE_float(
    "float16_map_budget",
    DEFAULT_MAP_BUDGETS["float16"],
    "mAP loss (points) allowed for float16.",
)
flags.DEFINE_float(
    "dynamic_int8_map_budget",
    DEFAULT_MAP_BUDGETS["dynamic_int8"],
    "mAP loss (points) allowed for dynamic-range int8.",
)
flags.DEFINE_float(
    "int8_map_budget",
    DEFAULT_MAP_BUDGETS["int8"],
    "mAP loss (points) allowed for full-integer int8.",
)
flags.DEFINE_integer("num_eval_images", None, "Verify on the first N images (all).")
flags.DEFINE_integer("num_calibration_images", 200, "int8 calibration images.")
flags.DEFINE_integer("batch_size", 32, "Verification batch size.")
flags.DEFINE_integer("latency_runs", 50, "Timed batch-1 runs per variant.")
flags.DEFINE_integer("num_threads", 1, "TFLite interpreter threads.")
flags.DEFINE_integer("seed", None, "Calibration sample seed (default: the run's).")
flags.DEFINE_string(
    "thresholds",
    None,
    "Per-class thresholds JSON for the .tflite score calibration (default: "
    "thresholds.json of the workdir or next to --model, if any).",
)
flags.DEFINE_string("model_name", ModelInfo.name, "Name in the .tflite metadata.")
flags.DEFINE_string(
    "model_description", ModelInfo.description, "Description in the .tflite metadata."
)
flags.DEFINE_string("model_author", ModelInfo.author, "Author in the .tflite metadata.")
flags.DEFINE_string(
    "model_license", ModelInfo.license, "Licence in the .tflite metadata."
)


def main(argv):
    """absl main: exports, prints the report table, exits 1 on a failed gate."""
    quiet_tensorflow_logs()
    no_arguments(argv, PROGRAM)
    if (FLAGS.workdir is None) == (FLAGS.model is None):
        raise UserError(
            "Give exactly one of --workdir and --model. Received: "
            f"workdir={FLAGS.workdir}, model={FLAGS.model}"
        )
    if FLAGS.model is not None and FLAGS.data is None:
        raise UserError(
            f"--model needs --data (a labelled manifest). Received: model={FLAGS.model}"
        )
    kwargs = dict(
        export_dir=FLAGS.export_dir,
        variants=FLAGS.variants,
        max_float32_delta=FLAGS.max_float32_delta,
        map_budgets={
            "float16": FLAGS.float16_map_budget,
            "dynamic_int8": FLAGS.dynamic_int8_map_budget,
            "int8": FLAGS.int8_map_budget,
        },
        num_eval_images=FLAGS.num_eval_images,
        num_calibration_images=FLAGS.num_calibration_images,
        batch_size=FLAGS.batch_size,
        latency_runs=FLAGS.latency_runs,
        num_threads=FLAGS.num_threads,
        model_info=ModelInfo(
            name=FLAGS.model_name,
            description=FLAGS.model_description,
            author=FLAGS.model_author,
            license=FLAGS.model_license,
        ),
    )
    if FLAGS.thresholds:
        kwargs["thresholds"] = _thresholds(FLAGS.thresholds)
    if FLAGS.seed is not None:
        kwargs["seed"] = FLAGS.seed
    try:
        if FLAGS.workdir is not None:
            report = export_workdir(
                FLAGS.workdir,
                data_overrides=flag_overrides(
                    ("dataset", "data_dir", "val_dataset", "image_root")
                ),
                **kwargs,
            )
        else:
            report = export_model_file(
                FLAGS.model,
                FLAGS.data,
                calibration_manifest=FLAGS.calibration_data,
                image_root=FLAGS.image_root,
                **kwargs,
            )
    except ExportVerificationError as error:
        print(format_report(error.report))
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return 1
    print(format_report(report))
    return 0


def _thresholds(path: str):
    """The thresholds file in the order of the model's classes.json."""
    folder = FLAGS.workdir or os.path.dirname(os.path.abspath(FLAGS.model))
    class_names = run_folder.saved_class_names(folder)
    if class_names is None:
        raise UserError(
            f"--thresholds needs the model's classes.json in {folder}. "
            f"Received: thresholds={path}"
        )
    return run_folder.load_thresholds(path, class_names)


def run():
    """Console-script entry point of `csra-export`."""
    run_program(main, PROGRAM, __name__)


if __name__ == "__main__":
    run()
