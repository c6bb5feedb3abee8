"""Attention overlays and the pointing game of a run (same flags as
`csra-attention-report`).

Example:
    python experiments/attention_maps.py --workdir=runs/shapes_csra --num_images=8
"""

from csra_tf.cli.csra_attention_report import run

if __name__ == "__main__":
    run()
