"""The paper's flagfiles parse with csra-train's flags and build their models."""

import dataclasses
import glob
import os

import pytest
from absl import flags

from csra_tf import backbones
from csra_tf.cli import train as train_cli
from csra_tf.config import TrainConfig
from csra_tf.layers import CSRA
from csra_tf.models import build_classifier
from tests.programs import REPO

CONFIG_DIR = os.path.join(REPO, "experiments", "configs")

_PAPER = dict(
    batch_size=16,
    epochs=30,
    lr=0.01,
    momentum=0.9,
    weight_decay=1e-4,
    lr_schedule="step",
    warmup_epochs=2.0,
    decay_rate=0.1,
    image_size=448,
)
_CSRA = dict(head="csra", head_lr_multiplier=10.0, normalize=True)
_GAP = dict(head="gap", head_lr_multiplier=1.0)  # baselines: 0.01 everywhere (§4.1)
_VOC = dict(_PAPER, dataset="voc2007", backbone="resnet101", decay_epochs=4.0)
_VOC.update(unknown_as="negative", weights=None)
_COCO = dict(_PAPER, dataset="coco2014", backbone="resnet101", decay_epochs=5.0)
_COCO.update(unknown_as="ignore", weights=None)
_COCO_VIT = dict(_COCO, backbone="vit_l16", weights="vit_large_patch16_224_imagenet")
_WIDER = dict(_PAPER, dataset="wider", backbone="vit_b16", decay_epochs=5.0)
_WIDER.update(image_size=224, batch_size=64, unknown_as="negative")
_WIDER.update(weights="vit_base_patch16_224_imagenet")

EXPECTED = {
    "voc2007_r101_csra": dict(_VOC, **_CSRA, num_heads=1, lam=0.1),
    "voc2007_r101_gap": dict(_VOC, **_GAP),
    "coco2014_r101_csra": dict(_COCO, **_CSRA, num_heads=6, lam=0.5),
    "coco2014_r101_gap": dict(_COCO, **_GAP),
    "coco2014_vitl16_csra": dict(_COCO_VIT, **_CSRA, num_heads=8, lam=1.0),
    "coco2014_vitl16_gap": dict(_COCO_VIT, **_GAP),
    "wider_vitb16_csra": dict(_WIDER, **_CSRA, num_heads=1, lam=0.3),
    "wider_vitb16_gap": dict(_WIDER, **_GAP),
    "shapes_csra": dict(
        dataset="shapes", head="csra", num_heads=1, lam=0.1, normalize=False
    ),
    "shapes_gap": dict(dataset="shapes", head="gap"),
}

# Small architectures of each family, so that every config builds in seconds.
_TINY_OVERRIDES = {
    "resnet": dict(stackwise_filters=[4, 4, 4, 4], stackwise_blocks=[1, 1, 1, 1]),
    "vit": dict(num_layers=1, hidden_dim=8, num_heads=2, mlp_dim=16),
    "tiny": dict(stage_widths=(8, 8), blocks_per_stage=1),
}


def load_flagfile(path: str) -> TrainConfig:
    """Parses a flagfile with the real csra-train flags (then restores them)."""
    try:
        flags.FLAGS(["csra-train", "--workdir=unused", f"--flagfile={path}"])
        return train_cli.train_config()
    finally:
        flags.FLAGS.unparse_flags()


def test_every_flagfile_is_checked():
    names = {
        os.path.basename(p)[: -len(".flags")]
        for p in glob.glob(os.path.join(CONFIG_DIR, "*.flags"))
    }
    assert names == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_flagfile_matches_paper_settings(name):
    config = load_flagfile(os.path.join(CONFIG_DIR, f"{name}.flags"))
    for field, value in EXPECTED[name].items():
        assert getattr(config, field) == pytest.approx(value), field


def test_shapes_flagfiles_write_out_the_defaults():
    csra = load_flagfile(os.path.join(CONFIG_DIR, "shapes_csra.flags"))
    gap = load_flagfile(os.path.join(CONFIG_DIR, "shapes_gap.flags"))
    assert csra == TrainConfig(workdir="unused")
    assert gap == dataclasses.replace(csra, head="gap")


def test_command_line_flags_after_the_flagfile_win():
    path = os.path.join(CONFIG_DIR, "coco2014_r101_csra.flags")
    try:
        flags.FLAGS(["csra-train", "--workdir=w", f"--flagfile={path}", "--lam=0.4"])
        config = train_cli.train_config()
    finally:
        flags.FLAGS.unparse_flags()
    assert (config.lam, config.num_heads, config.workdir) == (0.4, 6, "w")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_flagfile_builds_its_model_at_tiny_size(name):
    config = load_flagfile(os.path.join(CONFIG_DIR, f"{name}.flags"))
    family = next(f for f in _TINY_OVERRIDES if config.backbone.startswith(f))
    if family == "vit":
        pytest.importorskip("keras_hub")
        if config.backbone not in backbones.available():
            pytest.skip(f"{config.backbone} is not registered")
    backbone = backbones.create(
        config.backbone, weights=None, image_size=32, **_TINY_OVERRIDES[family]
    )
    model = build_classifier(
        backbone,
        num_classes=5,
        head=config.head,
        num_heads=config.num_heads,
        lam=config.lam,
        image_size=32,
        normalize=config.normalize,
    )
    assert model.output_shape == (None, 5)
    head = model.head
    if config.head == "csra":
        assert isinstance(head, CSRA)
        assert (head.num_heads, head.lam) == (config.num_heads, config.lam)
        assert len(head.get_weights()) == config.num_heads
    else:
        assert not isinstance(head, CSRA)
