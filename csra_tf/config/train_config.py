"""The training configuration: one frozen dataclass, saved as config.json."""

from __future__ import annotations

import dataclasses
import json
import math

from csra_tf.config.choices import (
    AUGMENTATIONS,
    DEFAULT_TEMPERATURES,
    HEADS,
    LR_SCHEDULES,
    NAMED_DATASETS,
    ON_BAD_RECORD,
    PIXEL_NORMALIZATIONS,
    UNKNOWN_AS,
)
from csra_tf.errors import UserError


def _choice(default, choices: tuple):
    """A dataclass field whose value must be one of `choices` (flags list them)."""
    return dataclasses.field(default=default, metadata={"choices": choices})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; `csra-train` builds it from flags.

    Each field is one flag of `csra-train` (same name, type and default; the
    help text is the field's line below), so a new setting is one field here.

    Args:
        workdir: folder that receives everything the run makes.
        dataset: `"shapes"` (embedded), `"voc2007"`, `"voc2012"`, `"coco2014"`,
            `"wider"`, or a manifest file (JSON lines / CSV).
        data_dir: where datasets live: "" means `<workdir>/data` for shapes and
            TFDS's default folder for voc/coco; the WIDER-Attribute root for wider.
        val_dataset: validation manifest; when empty, a manifest `dataset` is
            split by `val_split`.
        val_split: with a training manifest and no `val_dataset`: the share of
            its records (seeded, stratified by label) kept for validation; the
            split is saved as val_split.json in the workdir.
        image_root: folder that relative image paths of manifests resolve against
            ("" means each manifest's own folder).
        num_train: shapes training images.
        num_val: shapes validation images.
        shapes_image_size: side of the generated shapes images.
        backbone: backbone name (`csra_tf.backbones.available()`).
        weights: backbone weights: none (random), a keras-hub / keras-cv preset
            name, an hf:// handle, a local preset folder or a PyTorch .pth state
            dict (torchvision ResNet, timm ViT).
        pixel_normalization: the backbone's input scaling (unit: pixels / 255;
            imagenet: ImageNet mean / std; symmetric: [-1, 1]); none for the
            weights' own.
        head: csra, gap (average pooling + Dense) or attention (attention
            pooling alone, paper Table 6).
        num_heads: CSRA heads (1, 2, 4, 6 or 8 have the paper's temperatures).
        temperatures: one temperature per head (inf for max pooling); empty for
            the paper's defaults of num_heads.
        lam: CSRA lambda (>= 0).
        normalize: L2-normalise CSRA classifier columns (paper §3.4). Off by
            default: with unit-norm classifiers a logit is at most the feature
            norm, about 9 for the tiny backbone's BN-ReLU features trained from
            scratch, which halves the logit range and costs the embedded run
            2-3 mAP points (docs/embedded_study.md). Pretrained ResNet
            and ViT features are far larger; the paper's flagfiles turn it on.
        dropout: dropout on the feature map before the head.
        image_size: model input side.
        batch_size: global batch size (split across replicas).
        epochs: training epochs.
        steps_per_epoch: steps per epoch; None for one pass over the data.
        lr: backbone learning rate; the head's is `lr * head_lr_multiplier`.
        head_lr_multiplier: head learning-rate factor (paper: 10).
        momentum: SGD momentum (PyTorch's form: the buffer holds gradients).
        bn_momentum: BatchNorm moving-average momentum of the backbone, in Keras's
            form (PyTorch's default 0.1 is Keras's 0.9, the paper's rows); none
            keeps the backbone's own.
        weight_decay: L2 weight decay.
        lr_schedule: learning-rate decay after warm-up.
        warmup_epochs: epochs of linear warm-up.
        decay_epochs: epochs between step decays (step schedule).
        decay_rate: step-decay factor.
        unknown_as: ignore masks unknown (-1) labels in the loss, negative
            trains on them as absent.
        on_bad_record: error fails before training on a bad record (naming
            file, line and reason); skip drops and counts them.
        augment: training augmentation: crop_flip (random resized crop and
            horizontal flip), flip (the flip alone: the authors' WIDER-Attribute
            recipe) or none.
        randaugment: add RandAugment (2 ops) to training augmentation.
        randaugment_magnitude: RandAugment strength in [0, 1].
        seed: seed for initialisation, shuffling and augmentation.
        backup_every_steps: also save the resume point every this many steps
            within an epoch (0: at epoch ends only); a killed run restarted
            with the same flags continues from that step with the same data.
        mixed_precision: compute in bfloat16 (CPU) or float16 with loss scaling
            (GPU); variables and CSRA scores stay float32.
        jit_compile: compile the train and eval steps with XLA.
    """

    workdir: str
    dataset: str = "shapes"
    data_dir: str = ""
    val_dataset: str = ""
    val_split: float = 0.1
    image_root: str = ""
    num_train: int = 4000
    num_val: int = 1000
    shapes_image_size: int = 64
    backbone: str = "tiny"
    weights: str | None = None
    pixel_normalization: str | None = _choice(None, PIXEL_NORMALIZATIONS)
    head: str = _choice("csra", HEADS)
    num_heads: int = 1
    temperatures: tuple[float, ...] = ()
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
    bn_momentum: float | None = None
    weight_decay: float = 1e-4
    lr_schedule: str = _choice("cosine", LR_SCHEDULES)
    warmup_epochs: float = 1.0
    decay_epochs: float = 4.0
    decay_rate: float = 0.1
    unknown_as: str = _choice("ignore", UNKNOWN_AS)
    on_bad_record: str = _choice("error", ON_BAD_RECORD)
    augment: str = _choice("crop_flip", AUGMENTATIONS)
    randaugment: bool = False
    randaugment_magnitude: float = 0.5
    seed: int = 0
    backup_every_steps: int = 0
    mixed_precision: bool = False
    jit_compile: bool = False

    def __post_init__(self):
        if isinstance(self.temperatures, list | tuple):
            object.__setattr__(
                self, "temperatures", tuple(float(t) for t in self.temperatures)
            )
        for field in dataclasses.fields(self):
            choices = field.metadata.get("choices")
            value = getattr(self, field.name)
            if (
                choices
                and value not in choices
                and not (value is None and field.default is None)
            ):
                raise UserError(
                    f"`{field.name}` must be one of {', '.join(choices)}. "
                    f"Received: {field.name}={value!r}"
                )
        checks = [
            (bool(self.workdir), "workdir", "a non-empty path"),
            (
                0.0 <= self.randaugment_magnitude <= 1.0,
                "randaugment_magnitude",
                "in [0, 1]",
            ),
            (0.0 <= self.val_split < 1.0, "val_split", "in [0, 1)"),
            (
                self.bn_momentum is None or 0.0 <= self.bn_momentum < 1.0,
                "bn_momentum",
                "none or in [0, 1)",
            ),
            (self.num_heads >= 1, "num_heads", ">= 1"),
            (math.isfinite(self.lam) and self.lam >= 0, "lam", "a number >= 0"),
            (0.0 <= self.dropout < 1.0, "dropout", "in [0, 1)"),
            (bool(self.backbone), "backbone", "a backbone name"),
            (self.batch_size >= 1, "batch_size", ">= 1"),
            (self.backup_every_steps >= 0, "backup_every_steps", ">= 0"),
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
            (self.num_train >= 1, "num_train", ">= 1"),
            (self.num_val >= 1, "num_val", ">= 1"),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise UserError(
                    f"`{name}` must be {expected}. "
                    f"Received: {name}={getattr(self, name)!r}"
                )
        self._check_temperatures()
        if (
            self.dataset not in NAMED_DATASETS
            and not self.val_dataset
            and not self.val_split
        ):
            raise UserError(
                "A training manifest needs a validation manifest (`val_dataset`) "
                "or a share of it to split off (`val_split` > 0). "
                f"Received: dataset={self.dataset}, val_dataset='', val_split=0"
            )

    def _check_temperatures(self) -> None:
        if self.head == "gap":
            return
        if not self.temperatures:
            if self.num_heads not in DEFAULT_TEMPERATURES:
                raise UserError(
                    "The paper's temperatures exist for num_heads in "
                    f"{sorted(DEFAULT_TEMPERATURES)}; give one temperature per "
                    "head with `temperatures` (flag --temperatures=1,2,inf; inf "
                    f"is max pooling). Received: num_heads={self.num_heads}"
                )
            return
        if len(self.temperatures) != self.num_heads:
            raise UserError(
                f"`temperatures` needs one value per head (num_heads="
                f"{self.num_heads}). Received: temperatures={list(self.temperatures)}"
            )
        if any(not t > 0 for t in self.temperatures):
            raise UserError(
                "Every temperature must be > 0 (inf for max pooling). "
                f"Received: temperatures={list(self.temperatures)}"
            )

    def head_temperatures(self) -> tuple[float, ...] | None:
        """The heads' temperatures, or None for the paper's defaults."""
        return self.temperatures or None

    def to_dict(self) -> dict:
        """Returns the config as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, path: str) -> TrainConfig:
        """Reads a config written by `csra_tf.run_folder.write_config`.

        Args:
            path: a config.json file.

        Returns:
            The `TrainConfig`.
        """
        with open(path, encoding="utf-8") as f:
            try:
                values = json.load(f)
            except json.JSONDecodeError as error:
                raise UserError(
                    f"{path}:{error.lineno}: not valid JSON ({error.msg})."
                ) from error
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserError(
                f"{path}: unknown config fields (written by another version of "
                f"csra-tf?). Received: {unknown}"
            )
        return cls(**values)
