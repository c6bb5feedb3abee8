r"""Real-photo input pipeline at 448 px: images/s per core, crop-only vs whole decode.

Example:
    python experiments/benchmarks/photo_pipeline.py \
        --photo_dir=photos/ --threads=1,2 --model_images_per_s=1.34
"""

from __future__ import annotations

from absl import app, flags

from csra_tf.benchmarks.photo_throughput import benchmark_photo_pipeline

FLAGS = flags.FLAGS
flags.DEFINE_string("photo_dir", None, "Folder of JPEG photos.", required=True)
flags.DEFINE_string("work_dir", "/tmp/csra_photo_pipeline", "Manifest folder.")
flags.DEFINE_integer("image_size", 448, "Model input side.")
flags.DEFINE_integer("batch_size", 16, "Images per batch.")
flags.DEFINE_list("threads", ["1", "2"], "tf.data thread counts to time.")
flags.DEFINE_integer("num_batches", 20, "Timed batches per measurement.")
flags.DEFINE_float(
    "model_images_per_s",
    None,
    "The model's training images/s on the same cores (e.g. from vs_pytorch.py), "
    "to print how many cores the pipeline needs to keep up.",
)


def main(argv):
    """absl main: prints one row per thread count."""
    del argv
    print("threads  crop-decode img/s  whole-decode img/s  crop/whole  per core")
    for threads in (int(t) for t in FLAGS.threads):
        result = benchmark_photo_pipeline(
            FLAGS.photo_dir,
            FLAGS.work_dir,
            image_size=FLAGS.image_size,
            batch_size=FLAGS.batch_size,
            threads=threads,
            num_batches=FLAGS.num_batches,
        )
        print(
            f"{threads:7d}  {result.crop_decode_images_per_s:17.1f}  "
            f"{result.full_decode_images_per_s:18.1f}  "
            f"{result.crop_decode_images_per_s / result.full_decode_images_per_s:10.2f}"
            f"  {result.per_core:8.1f}"
        )
        if FLAGS.model_images_per_s:
            print(
                f"         cores needed per {FLAGS.model_images_per_s:g} training "
                f"img/s: {FLAGS.model_images_per_s / result.per_core:.3f}"
            )
    print(f"photos: {result.mean_megapixels:.2f} megapixels on average")


if __name__ == "__main__":
    app.run(main)
