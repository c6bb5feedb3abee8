"""mkdocs hook: the backbones table, made from `csra_tf.backbones.available()`.

A page that holds the line `<!-- backbones-table -->` gets, in its place, a
table of every registered backbone name grouped by family, so the docs list
exactly what `csra_tf.backbones.create` accepts in the installed version.
"""

from __future__ import annotations

import os
import re

MARKER = "<!-- backbones-table -->"

# (name pattern, family, where the weights come from); the first match wins.
_FAMILIES = (
    (r"resnet\d+$", "ResNet (torchvision's V1.5 layout)", "keras-hub"),
    (r"resnet\d+_vd$", "ResNet-vd", "keras-hub"),
    (r"keras_hub_efficientnet_", "EfficientNet", "keras-hub"),
    (r"keras_hub_mobilenet_v3_", "MobileNetV3", "keras-hub"),
    (r"vit_(b16|l16)$", "ViT (class token dropped)", "keras-hub"),
    (r"dinov2_", "DINOv2", "keras-hub"),
    (r"dinov3_", "DINOv3", "keras-hub"),
    (r"swin_", "Swin Transformer", "keras-hub"),
    (r"siglip2_", "SigLIP 2 (image tower)", "keras-hub"),
    (r"clip_", "CLIP (image tower)", "keras-hub"),
    (r"deit_", "DeiT", "keras-hub"),
    (r"keras_cv_resnet\d+$", "ResNet V1", "keras-cv"),
    (r"keras_cv_resnet\d+_v2$", "ResNet V2", "keras-cv"),
    (r"mobilenet_v3_", "MobileNetV3", "keras-cv"),
    (r"efficientnet_v2_", "EfficientNetV2", "keras-cv"),
    (r"efficientnet_b", "EfficientNet", "keras-cv"),
    (r"(tiny|resnet_tiny|vit_tiny)$", "tiny models (tests, the embedded demo)", "-"),
)


def _natural(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def backbones_table(names: list[str]) -> str:
    """A Markdown table of backbone names grouped by family.

    Args:
        names: registered backbone names.

    Returns:
        The table, one row per family, in the order of `_FAMILIES`.
    """
    rows: dict[tuple[str, str], list[str]] = {}
    for name in sorted(names, key=_natural):
        matches = (
            (family, source)
            for pattern, family, source in _FAMILIES
            if re.match(pattern, name)
        )
        family = next(matches, ("other", "-"))
        rows.setdefault(family, []).append(name)
    order = [(f, source) for _, f, source in _FAMILIES] + [("other", "-")]
    lines = ["| family | library | `--backbone` names |", "|---|---|---|"]
    for family in dict.fromkeys(order):
        if family in rows:
            listed = ", ".join(f"`{name}`" for name in rows[family])
            lines.append(f"| {family[0]} | {family[1]} | {listed} |")
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files):  # noqa: ARG001 (mkdocs API)
    """Replaces the marker line with the table."""
    if MARKER not in markdown:
        return markdown
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from csra_tf import backbones

    return markdown.replace(MARKER, backbones_table(backbones.available()))
