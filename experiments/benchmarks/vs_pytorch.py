r"""csra-tf against a PyTorch eager model of the same network, side by side.

The paper's models (torchvision ResNet-101 at 448 px with the CSRA head, H=1 and
H=6; ViT-B/16 at 224 px with H=1) are built in csra-tf and in PyTorch (torchvision's
own ResNet-101 / ViT-B/16 and the CSRA head written from the paper's equations),
with the same weight shapes, batch and thread count. Two of today's backbones
join them, at 224 px with H=1 and lambda = 0.1 (the paper's setting for a single
head): `dinov2_b14`, csra-tf's `dinov2_base` against transformers' `Dinov2Model`
(`Dinov2Config()`'s defaults are DINOv2-B/14) with the head on its final patch
tokens, and `swin_b`, csra-tf's `swin_base` against transformers' `SwinModel`
(Swin-B: embedding 128, depths 2-2-18-2, heads 4-8-16-32, window 7) with the
head on its last stage's map; both randomly initialised. Each framework runs in its own
worker processes (csra-tf in two: an inference-only one, as csra-predict and
csra-eval are, and a training one); the parent times them in interleaved rounds
(who goes first alternates), one inference step and one SGD training step (BCE
loss, momentum 0.9, weight decay 1e-4, head at 10x learning rate) at a time, and
prints images/s and the ratio csra-tf / PyTorch. Next to each ratio is its
ceiling: PyTorch's step time over the step's matrix-product and convolution
FLOPs (counted by PyTorch) at the best GEMM rate either framework reached on a
2048 x 2048 product: an estimate of the largest ratio a float32 implementation
of the same arithmetic could reach on this machine (convolution kernels can
run faster than that product, so a convolutional model can pass it).
`--max_isa=avx2` limits both frameworks' matrix libraries and csra-tf's XLA
kernels to AVX2 + FMA, the code paths of an AVX2-only CPU. On a GPU, csra-tf
runs in bfloat16 with XLA (`--device=gpu`) against PyTorch eager float32, as the
project's targets state.

PyTorch is needed only here: `pip install -e ".[vs-pytorch]"`, or give a Python
that has torch and torchvision (and transformers, for `dinov2_b14` and `swin_b`)
with `--torch_python`.

Example:
    python experiments/benchmarks/vs_pytorch.py --threads=2 --batch_size=2 \
        --rounds=3 --output_md=docs/vs_pytorch.md
    python experiments/benchmarks/vs_pytorch.py --models=dinov2_b14,swin_b \
        --rounds=2 --steps=2 --torch_python=/path/to/torch-env/bin/python
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from absl import app, flags
from torch_worker import GEMM_SIDE, best_rate, serve

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["r101_h1", "r101_h6", "vitb16_h1"], "Models to time.")
flags.DEFINE_integer("batch_size", 2, "Images per step (both frameworks).")
flags.DEFINE_integer("threads", 2, "CPU threads of each framework.")
flags.DEFINE_integer("rounds", 3, "Interleaved rounds.")
flags.DEFINE_integer("steps", 2, "Timed steps per round, framework and kind.")
flags.DEFINE_enum("device", "cpu", ["cpu", "gpu"], "cpu, or gpu (csra-tf bf16 + XLA).")
flags.DEFINE_enum(
    "max_isa",
    "native",
    ["native", "avx2"],
    "native, or avx2: both frameworks' matrix libraries (oneDNN, MKL, PyTorch's "
    "own kernels) and csra-tf's XLA kernels use at most AVX2 + FMA, the code "
    "paths of an AVX2-only CPU.",
)
flags.DEFINE_string("output_md", None, "Also write the table to this Markdown file.")
flags.DEFINE_string(
    "torch_python",
    sys.executable,
    "Python that runs the PyTorch worker (one with torch and torchvision, and "
    "transformers for dinov2_b14 and swin_b).",
)
flags.DEFINE_enum("worker", None, ["tf_infer", "tf_train"], "Internal: a worker.")
flags.DEFINE_string("model", None, "Internal: the worker's model.")

MODELS = {
    # name: (csra-tf backbone, PyTorch builder, image side, heads, lambda); the
    # builder is torchvision's, or a transformers model class
    # (torch_worker.TRANSFORMERS_CONFIGS).
    "r101_h1": ("resnet101", "resnet101", 448, 1, 0.1),
    "r101_h6": ("resnet101", "resnet101", 448, 6, 0.5),
    "vitb16_h1": ("vit_b16", "vit_b_16", 224, 1, 0.3),
    "dinov2_b14": ("dinov2_base", "Dinov2Model", 224, 1, 0.1),
    "swin_b": ("swin_base", "SwinModel", 224, 1, 0.1),
}
# Each library's own switch for the newest instructions it may use.
AVX2_ONLY = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
}
NUM_CLASSES = 80
# Beside this file; needs torch + torchvision (+ transformers) only.
TORCH_WORKER = "torch_worker.py"


# ----------------------------------------------------------------- workers
def _tf_worker(name: str, kind: str) -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if kind == "infer":
        from csra_tf.cli.app import assume_frozen_weights

        # An inference-only process, as csra-predict and csra-eval are.
        assume_frozen_weights()
    import keras
    import numpy as np
    import tensorflow as tf

    from csra_tf.acceleration import accelerate
    from csra_tf.models import build_classifier
    from csra_tf.optimization import MaskedBinaryCrossentropy, MultiRateSGD

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    backbone, _, size, heads, lam = MODELS[name]
    gpu = FLAGS.device == "gpu"
    if gpu:
        keras.config.set_dtype_policy("mixed_bfloat16")
    model = build_classifier(
        backbone,
        num_classes=NUM_CLASSES,
        num_heads=heads,
        lam=lam,
        image_size=size,
        normalize=True,
    )
    # The speed paths, as csra-train and csra-predict apply them.
    device = "GPU" if gpu else "CPU"
    if kind == "train":
        model = accelerate(model, for_training=True, device=device)
    optimizer = MultiRateSGD(
        0.01,
        momentum=0.9,
        weight_decay=1e-4,
        lr_multipliers={v.path: 10.0 for v in model.head.trainable_variables},
    )
    model.compile(optimizer=optimizer, loss=MaskedBinaryCrossentropy(), jit_compile=gpu)
    rng = np.random.default_rng(0)
    images = tf.constant(
        rng.uniform(0, 255, (FLAGS.batch_size, size, size, 3)), "float32"
    )
    targets = tf.constant(
        rng.integers(0, 2, (FLAGS.batch_size, NUM_CLASSES)), "float32"
    )

    square = tf.constant(rng.standard_normal((GEMM_SIDE, GEMM_SIDE)), "float32")
    facts = {"gemm_flop_s": best_rate(lambda: tf.matmul(square, square).numpy())}
    if kind == "infer":
        # Inference runs the folded copy, as csra-predict, csra-eval and the
        # SavedModel export do (BatchNorm inside the convolutions).
        inference_model = accelerate(model, for_training=False, device=device)
        steps = {"infer": lambda: np.asarray(inference_model.predict_on_batch(images))}
    else:
        steps = {"train": lambda: model.train_on_batch(images, targets)}
    serve(steps, facts)


# ------------------------------------------------------------------ parent
class _Worker:
    def __init__(self, worker: str, model: str):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
        if FLAGS.max_isa == "avx2":
            env.update(AVX2_ONLY)
            # csra-tf's XLA kernels (GELU, LayerNorm while training) too.
            flags_now = env.get("XLA_FLAGS", "")
            env["XLA_FLAGS"] = f"{flags_now} --xla_cpu_max_isa=AVX2".strip()
        common = [
            f"--threads={FLAGS.threads}",
            f"--batch_size={FLAGS.batch_size}",
            f"--device={FLAGS.device}",
        ]
        if worker == "torch":
            # A Python with torch and torchvision (+ transformers for its
            # models) only: no absl, no csra-tf.
            _, builder, size, heads, lam = MODELS[model]
            command = [
                FLAGS.torch_python,
                os.path.join(os.path.dirname(os.path.abspath(__file__)), TORCH_WORKER),
                f"--builder={builder}",
                f"--size={size}",
                f"--heads={heads}",
                f"--lam={lam}",
                f"--num_classes={NUM_CLASSES}",
                *common,
            ]
        else:
            command = [
                sys.executable,
                os.path.abspath(__file__),
                f"--worker={worker}",
                f"--model={model}",
                *common,
            ]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        line = self.process.stdout.readline().strip()
        self.facts = json.loads(line) if line.startswith("{") else {}
        if not self.facts.get("ready"):
            raise RuntimeError(f"The {worker} worker for {model} did not start.")

    def time(self, kind: str, steps: int) -> list[float]:
        self.process.stdin.write(f"{kind} {steps}\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def _measure(model: str) -> dict:
    print(f"{model}: starting the workers (building and warming up)...", flush=True)
    # csra-tf infers and trains in separate processes: the inference one keeps
    # oneDNN's reordered filters, which a training process must not.
    torch_worker = _Worker("torch", model)
    workers = {
        ("csra-tf", "infer"): _Worker("tf_infer", model),
        ("csra-tf", "train"): _Worker("tf_train", model),
        ("pytorch", "infer"): torch_worker,
        ("pytorch", "train"): torch_worker,
    }
    frameworks = ["csra-tf", "pytorch"]
    times = {key: [] for key in workers}
    try:
        for round_index in range(FLAGS.rounds):
            order = frameworks if round_index % 2 == 0 else frameworks[::-1]
            for kind in ("infer", "train"):
                for framework in order:
                    worker = workers[framework, kind]
                    times[framework, kind] += worker.time(kind, FLAGS.steps)
            print(f"  round {round_index + 1}/{FLAGS.rounds} done", flush=True)
    finally:
        for worker in set(workers.values()):
            worker.close()
    medians = {key: statistics.median(values) for key, values in times.items()}
    # An estimate of the fastest any framework could run the step: all its
    # matrix-product and convolution work at the best GEMM rate either framework
    # reached, and nothing else taking time (convolution kernels can beat that
    # rate). PyTorch's time over it estimates the largest ratio an exact float32
    # csra-tf could reach (not a bound for --device=gpu, where csra-tf computes
    # in bfloat16).
    gemm_flop_s = max(worker.facts["gemm_flop_s"] for worker in workers.values())
    flops = torch_worker.facts["flops"]
    row = {"model": model}
    for kind in ("infer", "train"):
        for framework in frameworks:
            row[f"{framework} {kind} img/s"] = (
                FLAGS.batch_size / medians[framework, kind]
            )
        row[f"{kind} ratio"] = medians["pytorch", kind] / medians["csra-tf", kind]
        if FLAGS.device == "cpu":
            floor = flops[kind] / gemm_flop_s
            row[f"{kind} ceiling"] = medians["pytorch", kind] / floor
    print(
        f"  best GEMM rate {gemm_flop_s / 1e9:.0f} GFLOP/s; matrix work per step "
        f"{flops['infer'] / 1e9:.1f} GFLOP inference, {flops['train'] / 1e9:.1f} "
        "GFLOP training",
        flush=True,
    )
    return row


def _table(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        lines.append(
            "| "
            + " | ".join(
                f"{value:.3f}" if isinstance(value, float) else str(value)
                for value in row.values()
            )
            + " |"
        )
    return "\n".join(lines)


def main(argv):
    """absl main: times every model, prints (and writes) the table."""
    del argv
    if FLAGS.worker:
        _tf_worker(FLAGS.model, FLAGS.worker.removeprefix("tf_"))
        return
    unknown = sorted(set(FLAGS.models) - set(MODELS))
    if unknown:
        raise app.UsageError(f"Unknown models {unknown}; choose from {sorted(MODELS)}.")
    rows = [_measure(model) for model in FLAGS.models]
    command = "python experiments/benchmarks/vs_pytorch.py " + " ".join(
        arg for arg in sys.argv[1:] if not arg.startswith("--output_md")
    )
    text = (
        f"`{command}` (batch {FLAGS.batch_size}, {FLAGS.threads} threads each, "
        f"{FLAGS.rounds} interleaved rounds of {FLAGS.steps} steps, device "
        f"{FLAGS.device}, instruction sets {FLAGS.max_isa}; ratio = PyTorch step "
        "time / csra-tf step time, > 1 means csra-tf is faster; ceiling = PyTorch "
        "step time / the step's matrix-product and convolution FLOPs at the best "
        "measured GEMM rate, an estimate of the largest ratio a float32 "
        "implementation of the same arithmetic can reach)\n\n" + _table(rows) + "\n"
    )
    print(text)
    if FLAGS.output_md:
        with open(FLAGS.output_md, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    app.run(main)
