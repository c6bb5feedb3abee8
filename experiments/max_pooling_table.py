"""Training-free max pooling on a trained GAP run (same flags as `csra-training-free`).

Example:
    python experiments/training_free_table.py --workdir=runs/shapes_gap
"""

from csra_tf.cli.training_free import run

if __name__ == "__main__":
    run()
