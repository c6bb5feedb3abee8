"""Training-free max pooling on a trained GAP run (same flags as `csra-training-free`).

Example:
    python experiments/max_pooling_table.py --workdir=runs/shapes_gap
"""

from csra_tf.cli.csra_training_free import run

if __name__ == "__main__":
    run()
