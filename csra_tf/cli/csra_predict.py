r"""Predicts the labels of images with a .keras, SavedModel or .tflite classifier.

Arguments are image files, folders (their image files) or glob patterns; any
size and format (JPEG, PNG, GIF, BMP, WebP, TIFF, grayscale, RGBA). Output: one
JSON line per image (`image`, `predicted` labels with probabilities, all
`probabilities`) or a table. An unreadable file gets an error line and the
others go on; the exit status is then 1. A `.tflite` export needs no side
files: its metadata holds the class names and the per-class thresholds
(`--classes`, `--thresholds` and an explicit `--threshold` override them).

Example:
    csra-predict --model=runs/shapes_csra/export/model_int8.tflite photos/ 'more/*.png'
    csra-predict --model=runs/shapes_csra/model.keras --format=table \
        --thresholds=runs/shapes_csra/thresholds.json --attention_dir=attention \
        photos/
"""

from __future__ import annotations

import contextlib
import sys

from absl import flags

from csra_tf import run_folder
from csra_tf.cli.app import assume_frozen_weights, quiet_tensorflow_logs, run_program
from csra_tf.errors import UserError
from csra_tf.inference import (
    Predictor,
    expand_image_paths,
    predict_files,
    write_predictions,
)
from csra_tf.inference.predictor import OUTPUT_FORMATS

PROGRAM = "csra-predict"

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model", None, ".keras file, SavedModel folder or .tflite file.", required=True
)
flags.DEFINE_string(
    "classes",
    None,
    "classes.json (default: a .tflite file's metadata, else found with the model).",
)
flags.DEFINE_float(
    "threshold",
    0.5,
    "Global probability threshold (default: a .tflite file's per-class "
    "thresholds, when its metadata has them, else 0.5).",
)
flags.DEFINE_string(
    "thresholds",
    None,
    "Per-class thresholds JSON (csra-eval --calibrate_thresholds); "
    "overrides --threshold and a .tflite file's thresholds.",
)
flags.DEFINE_enum("format", "jsonl", list(OUTPUT_FORMATS), "Output format.")
flags.DEFINE_string("output", None, "Output file (default: stdout).")
flags.DEFINE_string("attention_dir", None, "Write attention overlays (PNG) here.")
flags.DEFINE_integer("batch_size", 8, "Images per model call.")
flags.DEFINE_integer("num_threads", 1, "TFLite interpreter threads.")


def main(argv):
    """absl main: predicts, writes records, exits 1 if a file was unreadable."""
    quiet_tensorflow_logs()
    if len(argv) < 2:
        raise UserError("Give image files, folders or glob patterns. Received: none")
    class_names = None
    if FLAGS.classes:
        class_names = run_folder.read_class_names(FLAGS.classes)
    predictor = Predictor(FLAGS.model, class_names, num_threads=FLAGS.num_threads)
    thresholds = FLAGS.threshold
    if FLAGS.thresholds:
        thresholds = run_folder.load_thresholds(FLAGS.thresholds, predictor.class_names)
    elif predictor.thresholds is not None and not FLAGS["threshold"].present:
        thresholds = predictor.thresholds
    records = predict_files(
        predictor,
        expand_image_paths(argv[1:]),
        thresholds=thresholds,
        batch_size=FLAGS.batch_size,
        attention_dir=FLAGS.attention_dir,
    )
    with contextlib.ExitStack() as stack:
        stream = sys.stdout
        if FLAGS.output:
            stream = stack.enter_context(open(FLAGS.output, "w", encoding="utf-8"))
        num_errors = write_predictions(records, stream, FLAGS.format, sys.stderr)
    if num_errors:
        print(f"{PROGRAM}: {num_errors} file(s) could not be read.", file=sys.stderr)
        return 1
    return 0


def run():
    """Console-script entry point of `csra-predict` (an inference-only process)."""
    assume_frozen_weights()
    run_program(main, PROGRAM, __name__)


if __name__ == "__main__":
    run()
