"""Importing the CSRA authors' released PyTorch checkpoints as `CSRAClassifier`s.

The authors' state dicts hold a torchvision ResNet (`conv1.weight`, `bn1.*`,
`layer{1-4}.{i}.*`) or a timm ViT (`patch_embed.proj.*`, `cls_token`,
`pos_embed`, `blocks.{i}.*`, `norm.*`), plus one 1x1-convolution classifier per
head, `classifier.multi_head.{i}.head.weight` of shape `(C, d, 1, 1)`, no bias;
head `i` has the paper's `i`-th temperature (the authors write max pooling as
T = 99). A `module.` prefix (DataParallel) is accepted. The files are read
without torch and without running pickle code (`csra_tf.convert.pth`).

Their inputs depend on the dataset, not on the backbone (their
`pipeline/dataset.py`): pixels / 255 with no mean or std for VOC and COCO,
ResNets and ViT-L/16 alike, and pixels / 127.5 - 1 ([-1, 1]) for
WIDER-Attribute, where they ran ViTs. The imported model holds that scaling, so
it takes plain pixels in [0, 255] like every csra-tf model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

import numpy as np

from csra_tf import backbones, run_folder
from csra_tf.config import TrainConfig
from csra_tf.convert.pth import load_state_dict, strip_module_prefix
from csra_tf.data.benchmark_classes import BENCHMARK_CLASSES
from csra_tf.errors import UserError
from csra_tf.layers import CSRA
from csra_tf.layers.pixel_normalization import check_pixel_normalization
from csra_tf.models import CSRAClassifier

_HEAD_KEY = re.compile(r"^classifier\.multi_head\.(\d+)\.head\.(weight|bias)$")

AUTHORS_PIXEL_NORMALIZATION = {"wider": "symmetric"}
"""The input scaling the authors fed on each dataset where it was not pixels /
255 (`AUTHORS_DEFAULT_PIXEL_NORMALIZATION`): [-1, 1] on WIDER-Attribute."""

AUTHORS_DEFAULT_PIXEL_NORMALIZATION = "unit"
"""The authors' input scaling everywhere else (VOC, COCO): pixels / 255."""

_FAMILY_KEYS = {"resnet": "conv1.weight", "vit": "patch_embed.proj.weight"}


def backbone_family(backbone: str) -> str:
    """The checkpoint family of a registered backbone name.

    Args:
        backbone: `resnet18`...`resnet152`, `resnet_tiny`, `vit_b16`, `vit_l16`,
            `vit_tiny`.

    Returns:
        `"resnet"` (torchvision layout) or `"vit"` (timm layout).

    Raises:
        UserError: for a backbone the authors' layout does not cover.
    """
    if backbone in backbones.TORCHVISION_RESNET_CONFIGS:
        return "resnet"
    if backbone in backbones.VIT_CONFIGS:
        return "vit"
    supported = sorted([*backbones.TORCHVISION_RESNET_CONFIGS, *backbones.VIT_CONFIGS])
    raise UserError(
        "The authors' checkpoints hold a torchvision ResNet or a timm ViT; "
        f"--backbone must be one of {', '.join(supported)}. Received: "
        f"backbone={backbone}"
    )


def split_heads(
    state_dict: Mapping[str, np.ndarray], path: str = "the checkpoint"
) -> tuple[dict, list[np.ndarray]]:
    """Separates the backbone tensors from the CSRA heads' classifiers.

    Args:
        state_dict: the checkpoint (without `module.` prefix).
        path: the file, for error messages.

    Returns:
        `(backbone_state_dict, kernels)`: the kernels `(C, d, 1, 1)` of heads
        0, 1, ... in order.

    Raises:
        UserError: when the heads are not numbered 0..H-1, a head has a bias
            (the COCO ViT-L/16 448 release; see docs/reproduce.md), or a head's
            weight is not `(C, d, 1, 1)`.
    """
    heads, rest = {}, {}
    for key, value in state_dict.items():
        match = _HEAD_KEY.match(key)
        if match is None:
            rest[key] = value
            continue
        index, kind = int(match.group(1)), match.group(2)
        if kind == "bias":
            raise UserError(
                f"{path}: the head classifiers have a bias ({key}); this layout "
                "(the COCO ViT-L/16 448 release) is not supported: CSRA's "
                "classifiers have no bias (see docs/reproduce.md)."
            )
        if value.ndim != 4 or value.shape[2:] != (1, 1):
            raise UserError(
                f"{path}: {key} must have shape (C, d, 1, 1). "
                f"Received: shape={tuple(value.shape)}"
            )
        heads[index] = value
    if not heads:
        raise UserError(
            f"{path}: no CSRA heads (keys classifier.multi_head.<i>.head.weight); "
            "is it a backbone checkpoint rather than an authors' CSRA model?"
        )
    if sorted(heads) != list(range(len(heads))):
        raise UserError(
            f"{path}: the heads must be numbered 0..H-1. Received: heads "
            f"{sorted(heads)}"
        )
    return rest, [heads[i] for i in range(len(heads))]


def authors_pixel_normalization(dataset: str | None) -> str:
    """The input scaling the authors fed on a dataset.

    Args:
        dataset: `"voc2007"`, `"coco2014"`, `"wider"`, ..., or None (unknown).

    Returns:
        `"symmetric"` (pixels / 127.5 - 1) for `"wider"`, else `"unit"`
        (pixels / 255), whatever the backbone.

    Example:
    >>> authors_pixel_normalization("coco2014"), authors_pixel_normalization("wider")
    ('unit', 'symmetric')
    """
    return AUTHORS_PIXEL_NORMALIZATION.get(
        dataset or "", AUTHORS_DEFAULT_PIXEL_NORMALIZATION
    )


def checkpoint_family(state_dict: Mapping[str, np.ndarray]) -> str | None:
    """Which backbone layout a state dict holds: `"resnet"`, `"vit"` or None."""
    for family, key in _FAMILY_KEYS.items():
        if key in state_dict:
            return family
    return None


def import_authors_checkpoint(
    checkpoint: str | os.PathLike,
    backbone: str,
    num_classes: int,
    num_heads: int,
    lam: float,
    image_size: int,
    pixel_normalization: str = AUTHORS_DEFAULT_PIXEL_NORMALIZATION,
) -> CSRAClassifier:
    """Builds the `CSRAClassifier` of an authors' checkpoint.

    Args:
        checkpoint: the `.pth` file (PyTorch >= 1.6 zip format).
        backbone: the registered backbone the checkpoint holds (`resnet101`,
            `vit_b16`, `vit_l16`, ...).
        num_classes: `C`; must match the heads' classifiers.
        num_heads: `H`; must match the number of heads in the checkpoint.
        lam: CSRA's `lambda` the model was trained with.
        image_size: the input side (a ViT checkpoint of another grid gets its
            position embeddings interpolated).
        pixel_normalization: the input scaling the model was trained with:
            `"unit"`, `"imagenet"` or `"symmetric"`. The authors': `"unit"`
            (pixels / 255) for VOC and COCO, `"symmetric"` for
            WIDER-Attribute (see `authors_pixel_normalization`).

    Returns:
        The classifier: pixels in [0, 255] -> logits, that input scaling
        inside, CSRA heads with the paper's temperatures and normalised
        classifiers.

    Raises:
        UserError: naming the keys and shapes for a checkpoint that does not
            fit (missing / unexpected / wrong-shape tensors, another backbone,
            another head count or class count).
    """
    path = os.fspath(checkpoint)
    family = backbone_family(backbone)
    check_pixel_normalization(pixel_normalization, allow_none=False)
    state_dict = strip_module_prefix(load_state_dict(path))
    found = checkpoint_family(state_dict)
    if found != family:
        evidence = (
            f"no {_FAMILY_KEYS[family]}" if found is None else _FAMILY_KEYS[found]
        )
        raise UserError(
            f"{path} holds a {found or 'unknown'} backbone ({evidence}), not the "
            f"{family} that --backbone={backbone} needs."
        )
    backbone_state, kernels = split_heads(state_dict, path)
    if len(kernels) != num_heads:
        raise UserError(
            f"{path} has {len(kernels)} CSRA heads but --num_heads={num_heads}."
        )
    features = backbones.create(
        backbone,
        weights=backbone_state,
        image_size=image_size,
        pixel_normalization=pixel_normalization,
    )
    depth = features.output_shape[-1]
    for index, kernel in enumerate(kernels):
        expected = (num_classes, depth, 1, 1)
        if tuple(kernel.shape) != expected:
            raise UserError(
                f"{path}: classifier.multi_head.{index}.head.weight has shape "
                f"{tuple(kernel.shape)}; --num_classes={num_classes} and the "
                f"backbone's {depth} channels need {expected}."
            )
    head = CSRA(num_classes, num_heads=num_heads, lam=lam, normalize=True, name="head")
    model = CSRAClassifier(features, head, name="csra_classifier")
    head.set_weights([np.asarray(k[:, :, 0, 0].T, np.float32) for k in kernels])
    return model


def resolve_class_names(
    class_names: str | Sequence[str] | None, num_classes: int
) -> list[str]:
    """The class names of an imported model.

    Args:
        class_names: `"voc2007"`, `"coco2014"`, `"wider"` (the authors' orders),
            a `classes.json`-style file or a text file with one name per line,
            a list of names, or None (`class_0`, `class_1`, ...).
        num_classes: `C`.

    Returns:
        `C` names.

    Raises:
        UserError: when the names are not `C` distinct non-empty strings.
    """
    if class_names is None:
        names = [f"class_{i}" for i in range(num_classes)]
    elif isinstance(class_names, str) and class_names in BENCHMARK_CLASSES:
        names = list(BENCHMARK_CLASSES[class_names])
    elif isinstance(class_names, str):
        if not os.path.isfile(class_names):
            raise UserError(
                f"--class_names must be one of {', '.join(BENCHMARK_CLASSES)} or "
                f"a file. Received: class_names={class_names}"
            )
        if class_names.endswith(".json"):
            names = run_folder.read_class_names(class_names)
        else:
            with open(class_names, encoding="utf-8") as f:
                names = [line.strip() for line in f if line.strip()]
    else:
        names = list(class_names)
    if len(names) != num_classes:
        raise UserError(
            f"{len(names)} class names for --num_classes={num_classes}. "
            f"Received: class_names={class_names}"
        )
    return names


def import_to_workdir(
    checkpoint: str | os.PathLike,
    workdir: str | os.PathLike,
    backbone: str,
    num_classes: int,
    num_heads: int,
    lam: float,
    image_size: int,
    class_names: str | Sequence[str] | None = None,
    dataset: str | None = None,
    pixel_normalization: str | None = None,
) -> CSRAClassifier:
    """Imports a checkpoint into a run folder that csra-eval/-export/-predict read.

    Writes `model.keras`, `classes.json` and `config.json` (`csra_tf.run_folder`).

    Args:
        checkpoint: the authors' `.pth` file.
        workdir: the run folder to write.
        backbone: see `import_authors_checkpoint`.
        num_classes: `C`.
        num_heads: `H`.
        lam: CSRA's `lambda`.
        image_size: the input side.
        class_names: see `resolve_class_names`.
        dataset: the evaluation dataset recorded in config.json; default the
            one named by `class_names` (`voc2007`, `coco2014`, `wider`), else
            none (give csra-eval `--dataset`).
        pixel_normalization: the model's input scaling; None: the authors'
            for `dataset` (`authors_pixel_normalization`: [-1, 1] for
            `wider`, pixels / 255 otherwise).

    Returns:
        The imported classifier.
    """
    check_pixel_normalization(pixel_normalization)
    names = resolve_class_names(class_names, num_classes)
    if dataset is None and isinstance(class_names, str):
        dataset = class_names if class_names in BENCHMARK_CLASSES else None
    scaling = pixel_normalization or authors_pixel_normalization(dataset)
    model = import_authors_checkpoint(
        checkpoint,
        backbone,
        num_classes,
        num_heads,
        lam,
        image_size,
        pixel_normalization=scaling,
    )
    config = TrainConfig(
        workdir=os.fspath(workdir),
        dataset=dataset or "",
        backbone=backbone,
        weights=os.path.abspath(os.fspath(checkpoint)),
        pixel_normalization=scaling,
        head="csra",
        num_heads=num_heads,
        lam=lam,
        normalize=True,
        image_size=image_size,
    )
    run_folder.write_config(config)
    run_folder.write_class_names(config.workdir, names)
    run_folder.save_model(model, os.path.join(config.workdir, run_folder.MODEL_FILE))
    return model
