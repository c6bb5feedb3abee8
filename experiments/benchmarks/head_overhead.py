r"""Benchmarks the CSRA head (H = 1 and 8) against the GAP head on one backbone.

Prints median inference and training step times, their ratios to GAP, images/s
and the time of the head alone, measured in one interleaved run.

Example:
    python experiments/benchmarks/head_overhead.py --backbone=resnet50 \
        --image_size=224 --batch_size=8
    python experiments/benchmarks/head_overhead.py --backbone=resnet101 \
        --image_size=448 --batch_size=2 --rounds=3 --steps_per_round=3
"""

from __future__ import annotations

from absl import app, flags

from csra_tf.benchmarks.head_timing import benchmark_heads, format_timings

FLAGS = flags.FLAGS
flags.DEFINE_string("backbone", "resnet50", "Registered backbone name.")
flags.DEFINE_integer("image_size", 224, "Input side.")
flags.DEFINE_integer("batch_size", 8, "Images per step.")
flags.DEFINE_integer("num_classes", 80, "Classes (80 = COCO).")
flags.DEFINE_integer("rounds", 3, "Interleaved rounds.")
flags.DEFINE_integer("steps_per_round", 5, "Timed steps per round and kind.")
flags.DEFINE_boolean("jit_compile", False, "Compile with XLA.")
flags.DEFINE_boolean("mixed_precision", False, "bfloat16 (CPU) / float16 (GPU).")


def main(argv):
    """absl main: runs the benchmark and prints the table."""
    del argv
    from csra_tf.training.train_lib import dtype_policy

    with dtype_policy(FLAGS.mixed_precision):
        timings = benchmark_heads(
            FLAGS.backbone,
            image_size=FLAGS.image_size,
            batch_size=FLAGS.batch_size,
            num_classes=FLAGS.num_classes,
            rounds=FLAGS.rounds,
            steps_per_round=FLAGS.steps_per_round,
            jit_compile=FLAGS.jit_compile,
        )
    print(format_timings(timings, FLAGS.batch_size))


if __name__ == "__main__":
    app.run(main)
