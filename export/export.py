"""Exports and verifies a trained classifier (same flags as `csra-export`).

Example:
    python export/export.py --workdir=runs/shapes_csra
"""

from csra_tf.cli.csra_export import run

if __name__ == "__main__":
    run()
