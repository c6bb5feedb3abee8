"""The PyTorch side of vs_pytorch.py, and the step loop both sides serve.

Run by vs_pytorch.py in a Python that needs only torch and torchvision (and
transformers for the builders of `TRANSFORMERS_CONFIGS`; the standard library
does the rest), so `--torch_python` may point at a plain PyTorch environment.
It builds torchvision's network, or a randomly initialised transformers model,
with the CSRA head written from the paper's equations on its final feature map,
prints one JSON line when it is ready, then answers `infer N` / `train N` on
standard input with the N step times.

Example (what vs_pytorch.py runs):
    python experiments/benchmarks/torch_worker.py --builder=resnet101 --size=448 \
        --heads=1 --lam=0.1 --num_classes=80 --threads=2 --batch_size=2
"""

from __future__ import annotations

import argparse
import json
import sys
import time

GEMM_SIDE = 2048  # the square product that measures the attainable GEMM rate

TRANSFORMERS_CONFIGS = {
    # transformers model class: (its config class, arguments)
    # Dinov2Config's defaults are DINOv2-B/14 (facebook/dinov2-base).
    "Dinov2Model": ("Dinov2Config", {}),
    # microsoft/swin-base-patch4-window7-224.
    "SwinModel": (
        "SwinConfig",
        {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32]},
    ),
}
"""The transformers backbones the worker builds, by `--builder`."""


def serve(steps: dict, facts: dict) -> None:
    """The worker's loop: `infer N` / `train N` -> one JSON line of step times.

    Args:
        steps: the worker's step functions by kind (`"infer"`, `"train"`).
        facts: measured once after the warm-up, sent to the parent as the JSON
            line that says the worker is ready (`gemm_flop_s`, and `flops` from
            the PyTorch worker).
    """
    for _ in range(2):  # trace, compile, warm caches
        for step in steps.values():
            step()
    print(json.dumps({"ready": True, **facts}), flush=True)
    for line in sys.stdin:
        command, count = line.split()
        step = steps[command]
        times = []
        for _ in range(int(count)):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        print(json.dumps(times), flush=True)


def best_rate(matmul, tries: int = 4) -> float:
    """Best floating-point operations per second of `matmul()`.

    Args:
        matmul: runs one GEMM_SIDE x GEMM_SIDE product (and waits for it).
        tries: timed calls after one warm-up.

    Returns:
        2 * GEMM_SIDE**3 over the fastest call: the attainable GEMM rate.
    """
    matmul()
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        matmul()
        best = min(best, time.perf_counter() - start)
    return 2 * GEMM_SIDE**3 / best


def _temperatures(heads: int) -> list[float]:
    # The paper's temperatures: 1..H-1, then max pooling (T = inf); H=1: [1].
    return [1.0] if heads == 1 else [*map(float, range(1, heads)), float("inf")]


def run_worker(args: argparse.Namespace) -> None:
    """Builds the PyTorch model and serves its inference and training steps.

    Args:
        args: the parsed command line (see `_parser`).
    """
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    device = "cuda" if args.device == "gpu" else "cpu"
    heads, lam, size, num_classes = args.heads, args.lam, args.size, args.num_classes

    class CSRAHead(nn.Module):
        """The paper's Eq. 2-6 and 13: per head, scores of unit-norm classifiers at
        every location; mean + lam * softmax(T s)-weighted sum (max for T = inf)."""

        def __init__(self, dim):
            super().__init__()
            self.classifiers = nn.ModuleList(
                nn.Conv2d(dim, num_classes, 1, bias=False) for _ in range(heads)
            )
            self.temperatures = _temperatures(heads)

        def forward(self, x):
            logits = 0
            for conv, temperature in zip(
                self.classifiers, self.temperatures, strict=True
            ):
                norm = conv.weight.flatten(1).norm(dim=1).view(1, -1, 1)
                scores = conv(x).flatten(2) / norm
                base = scores.mean(2)
                if temperature == float("inf"):
                    attention = scores.max(2)[0]
                else:
                    attention = (torch.softmax(temperature * scores, 2) * scores).sum(2)
                logits = logits + base + lam * attention
            return logits

    if args.builder in TRANSFORMERS_CONFIGS:
        features, dim = _transformers_features(args.builder, size)
    else:
        features, dim = _torchvision_features(args.builder, size)
    head = CSRAHead(dim)
    model = nn.Sequential(features, head).to(device)
    optimizer = torch.optim.SGD(
        [
            {"params": features.parameters(), "lr": 0.01},
            {"params": head.parameters(), "lr": 0.1},
        ],
        momentum=0.9,
        weight_decay=1e-4,
    )
    loss_fn = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch_size, 3, size, size, generator=generator)
    images = images.to(device)
    targets = torch.randint(0, 2, (args.batch_size, num_classes), generator=generator)
    targets = targets.float().to(device)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def infer():
        model.eval()
        with torch.inference_mode():
            model(images)
        sync()

    def train():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), targets).backward()
        optimizer.step()
        sync()

    def matmul():
        torch.mm(square, square)
        sync()

    # The network's matrix-product and convolution work, counted by PyTorch on
    # the training-mode forward and on a whole training step, with attention
    # computed by its plain matrix products (fused kernels are not counted).
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    square = torch.randn(GEMM_SIDE, GEMM_SIDE, generator=generator).to(device)
    flops = {}
    model.train()
    with sdpa_kernel(SDPBackend.MATH):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(images)
        flops["infer"] = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            train()
        flops["train"] = counter.get_total_flops()
    serve(
        {"infer": infer, "train": train},
        {"gemm_flop_s": best_rate(matmul), "flops": flops},
    )


def _torchvision_features(builder: str, size: int):
    """torchvision's network up to its last feature map, and the map's depth."""
    import torch
    import torchvision
    from torch import nn

    network = getattr(torchvision.models, builder)(weights=None)
    if builder.startswith("resnet"):
        return nn.Sequential(*list(network.children())[:-2]), network.fc.in_features
    grid = size // 16

    class Tokens(nn.Module):
        def __init__(self, vit):
            super().__init__()
            self.vit = vit

        def forward(self, x):
            x = self.vit._process_input(x)
            cls = self.vit.class_token.expand(x.shape[0], -1, -1)
            x = self.vit.encoder(torch.cat([cls, x], dim=1))[:, 1:]
            return x.transpose(1, 2).reshape(x.shape[0], -1, grid, grid)

    return Tokens(network), network.hidden_dim


def _transformers_features(builder: str, size: int):
    """A randomly initialised transformers backbone as a feature map, and its depth.

    The map is the final normalised tokens (`last_hidden_state`) on their grid,
    class token dropped: DINOv2's patch tokens, Swin's last stage.
    """
    import transformers
    from torch import nn

    config_class, arguments = TRANSFORMERS_CONFIGS[builder]
    config = getattr(transformers, config_class)(image_size=size, **arguments)
    model_class = getattr(transformers, builder)
    if builder == "SwinModel":
        network = model_class(config, add_pooling_layer=False)
        dim = network.num_features
        skip = 0
    else:
        network = model_class(config)
        dim = config.hidden_size
        skip = 1  # the class token

    class Tokens(nn.Module):
        def __init__(self, backbone):
            super().__init__()
            self.backbone = backbone

        def forward(self, x):
            x = self.backbone(pixel_values=x).last_hidden_state[:, skip:]
            side = round(x.shape[1] ** 0.5)
            return x.transpose(1, 2).reshape(x.shape[0], -1, side, side)

    return Tokens(network), dim


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--builder",
        required=True,
        help="torchvision builder, or a transformers model of TRANSFORMERS_CONFIGS",
    )
    parser.add_argument("--size", type=int, required=True, help="image side")
    parser.add_argument("--heads", type=int, required=True, help="CSRA heads")
    parser.add_argument("--lam", type=float, required=True, help="CSRA lambda")
    parser.add_argument("--num_classes", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    return parser


if __name__ == "__main__":
    run_worker(_parser().parse_args())
