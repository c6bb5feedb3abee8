r"""Attention maps (paper Fig. 4) and the pointing game of a trained run.

Writes per-class attention overlays of a few validation images into
`<workdir>/attention/` and the pointing-game score over the whole validation
split (the embedded shapes data, or a JSON-lines validation manifest with boxes)
into `<workdir>/pointing_game.json`.

Example:
    csra-train --workdir=runs/shapes_csra \
        --flagfile=experiments/configs/shapes_csra.flags
    csra-attention-report --workdir=runs/shapes_csra --num_images=8
"""

from __future__ import annotations

from absl import flags

from csra_tf.cli.app import no_arguments, run_program
from csra_tf.studies import attention_report

PROGRAM = "csra-attention-report"
FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A finished training run's folder.", required=True)
flags.DEFINE_integer("num_images", 8, "Validation images to draw overlays for.")
flags.DEFINE_integer("batch_size", 64, "Images per forward pass.")


def main(argv):
    """absl main: writes the overlays and pointing_game.json, prints the score."""
    no_arguments(argv, PROGRAM)
    report = attention_report(
        FLAGS.workdir, num_images=FLAGS.num_images, batch_size=FLAGS.batch_size
    )
    print(
        f"Pointing game: {100 * report['score']:.1f}% "
        f"({report['hits']}/{report['pairs']} present (image, class) pairs, "
        f"{report['num_images']} images; peak within half a cell of a box); "
        f"peak cell centre inside a box: {100 * report['score_strict']:.1f}%; "
        f"random peak: {100 * report['chance']:.1f}%; "
        f"{len(report['overlays'])} overlays."
    )
    for name, counts in report["per_class"].items():
        if counts["pairs"]:
            print(f"  {name:>12s}: {100 * counts['score']:5.1f}% of {counts['pairs']}")


def run():
    """Console-script entry point of `csra-attention-report`."""
    run_program(main, PROGRAM, __name__)


if __name__ == "__main__":
    run()
