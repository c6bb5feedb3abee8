"""The training configuration: one frozen dataclass, saved as config.json."""

from __future__ import annotations

import dataclasses
import json
import os

from csra_tf.data.catalog import NAMED_DATASETS
from csra_tf.data.records import ON_BAD_RECORD

SCHEDULES = ("step", "cosine")
UNKNOWN_AS = ("ignore", "negative")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; the CLI builds it from flags.

    Args:
        workdir: folder that receives everything the run makes.
        dataset: `"shapes"` (embedded), `"voc2007"`, `"voc2012"`, `"coco2014"`,
            `"wider"`, or a manifest file (JSON lines / CSV).
        data_dir: where datasets live: "" means `<workdir>/data` for shapes and
            TFDS's default folder for voc/coco; the WIDER-Attribute root for wider.
        val_dataset: validation manifest (required when `dataset` is a manifest).
        image_root: folder that relative image paths of manifests resolve against
            ("" means each manifest's own folder).
        num_train: shapes training images.
        num_val: shapes validation images.
        shapes_image_size: side of the generated shapes images.
        backbone: backbone name (`csra_tf.backbones.available()`).
        weights: backbone weights: None, a preset name or a local preset dir.
        head: `"csra"`, `"gap"` or `"attention"` (attention pooling alone).
        num_heads: CSRA heads.
        lam: CSRA lambda.
        normalize: L2-normalise CSRA classifier columns (paper §3.4). Off by
            default: with unit-norm classifiers a logit is at most the feature
            norm, about 9 for the tiny backbone's BN-ReLU features trained from
            scratch, which halves the logit range and costs the embedded run
            2-3 mAP points (README, "The embedded result"). Pretrained ResNet
            and ViT features are far larger; the paper's flagfiles turn it on.
        dropout: dropout on the feature map before the head.
        image_size: model input side.
        batch_size: global batch size (split across replicas).
        epochs: training epochs.
        steps_per_epoch: steps per epoch; None for one pass over the data.
        lr: backbone learning rate; the head's is `lr * head_lr_multiplier`.
        head_lr_multiplier: head learning-rate factor (paper: 10).
        momentum: SGD momentum.
        weight_decay: L2 weight decay.
        lr_schedule: `"step"` or `"cosine"` after warm-up.
        warmup_epochs: epochs of linear warm-up.
        decay_epochs: epochs between step decays (step schedule).
        decay_rate: step-decay factor.
        unknown_as: `"ignore"` masks unknown (-1) labels in the loss,
            `"negative"` trains on them as absent.
        on_bad_record: `"error"` fails before training on a bad record (naming
            file, line and reason); `"skip"` drops and counts them.
        randaugment: add RandAugment (2 ops) to training augmentation.
        randaugment_magnitude: RandAugment strength in [0, 1].
        seed: seed for initialisation, shuffling and augmentation.
        mixed_precision: compute in bfloat16 (CPU) or float16 with loss scaling
            (GPU); variables and CSRA scores stay float32.
        jit_compile: compile the train and eval steps with XLA.
    """

    workdir: str
    dataset: str = "shapes"
    data_dir: str = ""
    val_dataset: str = ""
    image_root: str = ""
    num_train: int = 4000
    num_val: int = 1000
    shapes_image_size: int = 64
    backbone: str = "tiny"
    weights: str | None = None
    head: str = "csra"
    num_heads: int = 1
    lam: float = 0.1
    normalize: bool = False
    dropout: float = 0.0
    image_size: int = 64
    batch_size: int = 16
    epochs: int = 8
    steps_per_epoch: int | None = None
    lr: float = 0.02
    head_lr_multiplier: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"
    warmup_epochs: float = 1.0
    decay_epochs: float = 4.0
    decay_rate: float = 0.1
    unknown_as: str = "ignore"
    on_bad_record: str = "error"
    randaugment: bool = False
    randaugment_magnitude: float = 0.5
    seed: int = 0
    mixed_precision: bool = False
    jit_compile: bool = False

    def __post_init__(self):
        checks = [
            (bool(self.workdir), "workdir", "a non-empty path"),
            (self.lr_schedule in SCHEDULES, "lr_schedule", f"one of {SCHEDULES}"),
            (self.unknown_as in UNKNOWN_AS, "unknown_as", f"one of {UNKNOWN_AS}"),
            (
                self.on_bad_record in ON_BAD_RECORD,
                "on_bad_record",
                f"one of {ON_BAD_RECORD}",
            ),
            (
                0.0 <= self.randaugment_magnitude <= 1.0,
                "randaugment_magnitude",
                "in [0, 1]",
            ),
            (self.batch_size >= 1, "batch_size", ">= 1"),
            (self.epochs >= 1, "epochs", ">= 1"),
            (
                self.steps_per_epoch is None or self.steps_per_epoch >= 1,
                "steps_per_epoch",
                "None or >= 1",
            ),
            (self.image_size >= 8, "image_size", ">= 8"),
            (self.lr > 0, "lr", "> 0"),
            (self.head_lr_multiplier > 0, "head_lr_multiplier", "> 0"),
            (self.warmup_epochs >= 0, "warmup_epochs", ">= 0"),
            (self.decay_epochs > 0, "decay_epochs", "> 0"),
            (self.num_train >= 1 and self.num_val >= 1, "num_train/num_val", ">= 1"),
        ]
        for ok, name, expected in checks:
            if not ok:
                value = (
                    getattr(self, name, None)
                    if "/" not in name
                    else (self.num_train, self.num_val)
                )
                raise ValueError(
                    f"`{name}` must be {expected}. Received: {name}={value}"
                )
        if self.dataset not in NAMED_DATASETS and not self.val_dataset:
            raise ValueError(
                "A manifest dataset needs a validation manifest (`val_dataset`). "
                f"Received: dataset={self.dataset}, val_dataset=''"
            )

    def to_dict(self) -> dict:
        """Returns the config as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def save(self, path: str) -> None:
        """Writes the config as JSON to `path`.

        Args:
            path: output file.
        """
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: str) -> TrainConfig:
        """Reads a config written by `save`.

        Args:
            path: a config.json file.

        Returns:
            The `TrainConfig`.
        """
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{path}: unknown config fields. Received: {unknown}")
        return cls(**values)

    def resolved_data_dir(self) -> str:
        """The data folder: `data_dir`, or `<workdir>/data` when empty."""
        return self.data_dir or os.path.join(self.workdir, "data")
