"""Re-evaluates a training workdir (same flags as `csra-eval`).

Example:
    python experiments/evaluate.py --workdir=runs/shapes_csra
"""

from csra_tf.cli.csra_eval import run

if __name__ == "__main__":
    run()
