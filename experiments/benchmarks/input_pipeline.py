r"""Benchmarks the input pipeline: decode+augment images/s, and the training
step time fed by JPEG files versus by the same images held in memory.

Example:
    python experiments/benchmarks/input_pipeline.py --data_dir=/tmp/csra-data
    python experiments/benchmarks/input_pipeline.py --data_dir=/tmp/csra-data \
        --num_images=2048 --rounds=7
"""

from __future__ import annotations

from absl import app, flags

from csra_tf.benchmarks.pipeline_timing import benchmark_input_pipeline

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "data_dir", None, "Where the shapes data is generated.", required=True
)
flags.DEFINE_integer("num_images", 1024, "Shapes training images.")
flags.DEFINE_integer("image_size", 64, "Image and model input side.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("rounds", 5, "Interleaved rounds of step timing.")
flags.DEFINE_integer("steps_per_round", 20, "Steps timed per round and feed.")
flags.DEFINE_integer("seed", 0, "Seed of data, pipeline and model.")


def main(argv):
    """absl main: runs the benchmark and prints its figures."""
    del argv
    result = benchmark_input_pipeline(
        FLAGS.data_dir,
        num_images=FLAGS.num_images,
        image_size=FLAGS.image_size,
        batch_size=FLAGS.batch_size,
        rounds=FLAGS.rounds,
        steps_per_round=FLAGS.steps_per_round,
        seed=FLAGS.seed,
    )
    print(result.summary())


if __name__ == "__main__":
    app.run(main)
