r"""Tabulates each backbone's cost under an 80-class CSRA head.

For every name: parameters, GFLOPs of one image's forward pass at each
--flop_sizes side (counted from the traced graph, a multiply-add is 2 FLOPs)
and CPU images/s of inference and of one SGD training step at each
--timing_sizes side, with random weights (nothing is downloaded).

Example:
    python experiments/benchmarks/backbone_table.py --threads=2 \
        --names=dinov2_small,swin_tiny,resnet101 --output_md=/tmp/backbones.md
    python experiments/benchmarks/backbone_table.py --timing_sizes= \
        --names=dinov2_giant,siglip2_so400m
"""

from __future__ import annotations

import sys

from absl import app, flags

FLAGS = flags.FLAGS
_DEFAULT_NAMES = (
    "resnet101,vit_b16,deit_base,"
    "dinov2_small,dinov2_base,dinov2_large,dinov2_giant,"
    "dinov2_small_reg,dinov2_base_reg,dinov2_large_reg,dinov2_giant_reg,"
    "dinov3_vits16,dinov3_vitb16,dinov3_vitl16,"
    "swin_tiny,swin_small,swin_base,swin_large,"
    "siglip2_base,siglip2_large,siglip2_so400m,clip_vitb16,clip_vitl14"
)
flags.DEFINE_list("names", _DEFAULT_NAMES, "Registered backbone names.")
flags.DEFINE_list("flop_sizes", ["224", "448"], "Image sides whose FLOPs are counted.")
flags.DEFINE_list("timing_sizes", ["224"], "Image sides that are also timed.")
flags.DEFINE_float(
    "skip_timing_over_gflops",
    None,
    "Do not time a size whose count exceeds this many GFLOPs per image.",
)
flags.DEFINE_integer("batch_size", 1, "Images per timed step.")
flags.DEFINE_integer("warmup", 2, "Untimed steps before timing.")
flags.DEFINE_integer("steps", 5, "Timed steps; the median is reported.")
flags.DEFINE_integer("threads", 2, "TensorFlow intra- and inter-op CPU threads.")
flags.DEFINE_string("output_md", None, "Also write the Markdown table here.")


def main(argv):
    """absl main: measures each backbone and prints the table."""
    del argv
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    from csra_tf.benchmarks.backbone_costs import format_markdown, measure_backbone

    flop_sizes = [int(s) for s in FLAGS.flop_sizes]
    timing_sizes = [int(s) for s in FLAGS.timing_sizes]
    results = []
    for index, name in enumerate(FLAGS.names, 1):

        def progress(line, index=index):
            print(f"[{index}/{len(FLAGS.names)}] {line}", file=sys.stderr, flush=True)

        results.append(
            measure_backbone(
                name,
                flop_sizes=flop_sizes,
                timing_sizes=timing_sizes,
                batch_size=FLAGS.batch_size,
                warmup=FLAGS.warmup,
                steps=FLAGS.steps,
                skip_timing_over_gflops=FLAGS.skip_timing_over_gflops,
                progress=progress,
            )
        )
        for note in results[-1].notes:
            progress(f"{name}: {note}")
        progress(
            format_markdown(results[-1:], flop_sizes, timing_sizes).splitlines()[-1]
        )
    table = format_markdown(results, flop_sizes, timing_sizes)
    print(table)
    if FLAGS.output_md:
        with open(FLAGS.output_md, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    app.run(main)
