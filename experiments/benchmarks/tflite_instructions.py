r"""Instructions per inference of exported TFLite variants on the AVX2 code paths.

Runs each variant under `valgrind --tool=callgrind` (valgrind emulates no
AVX-512, so XNNPACK runs its AVX2 / FMA3 kernels on any x86-64 host) and prints
the instructions of one inference, the ratio to float32 and the hottest kernels.
Needs valgrind.

Example:
    python experiments/benchmarks/tflite_instructions.py \
        --export_dir=runs/quickstart/export --variants=float32,dynamic_int8,int8
"""

from __future__ import annotations

import os

from absl import app, flags

from csra_tf.benchmarks.instruction_counts import count_instructions

FLAGS = flags.FLAGS
flags.DEFINE_string("export_dir", "runs/quickstart/export", "A csra-export folder.")
flags.DEFINE_list("variants", ["float32", "dynamic_int8", "int8"], "Variants to count.")
flags.DEFINE_integer("invokes", 2, "Invocations counted against a one-call run.")
flags.DEFINE_integer("num_threads", 1, "Interpreter threads.")


def main(argv):
    """absl main: prints one row per variant."""
    del argv
    print("variant        M instr/inference  x float32  hottest kernels (share)")
    base = None
    for variant in FLAGS.variants:
        path = os.path.join(FLAGS.export_dir, f"model_{variant}.tflite")
        count = count_instructions(path, FLAGS.invokes, FLAGS.num_threads)
        millions = count.instructions_per_invoke / 1e6
        if variant == "float32":
            base = millions
        ratio = f"{millions / base:9.2f}" if base else f"{'-':>9s}"
        kernels = ", ".join(f"{name} ({share:.0%})" for name, share in count.kernels)
        print(f"{variant:15s}{millions:18.2f}  {ratio}  {kernels}", flush=True)


if __name__ == "__main__":
    app.run(main)
