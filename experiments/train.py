r"""Trains a CSRA classifier (same flags as `csra-train`).

Example:
    python experiments/train.py --workdir=runs/shapes_csra
    python experiments/train.py --workdir=runs/voc \
        --flagfile=experiments/configs/voc2007_r101_csra.flags
"""

from csra_tf.cli.csra_train import run

if __name__ == "__main__":
    run()
