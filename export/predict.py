r"""Predicts image labels (same flags as `csra-predict`).

Example:
    python export/predict.py --model=runs/shapes_csra/export/model_int8.tflite \
        photos/
"""

from csra_tf.cli.csra_predict import run

if __name__ == "__main__":
    run()
