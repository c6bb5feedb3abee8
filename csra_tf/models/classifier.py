"""The multi-label classifier: a backbone and a head, owned as one Keras model."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import keras

from csra_tf import backbones
from csra_tf.config.choices import HEADS
from csra_tf.errors import UserError
from csra_tf.layers import CSRA, AveragePoolingHead, ClassAttentionPooling
from csra_tf.models.presets import TaskPresetMixin, load_task_preset


@keras.saving.register_keras_serializable(package="csra_tf")
class CSRAClassifier(TaskPresetMixin, keras.Model):
    """A backbone (pixels -> feature map) followed by a classification head.

    In the style of keras-hub's `ImageClassifier`: the parts are injected,
    owned as attributes and serialised with the model, so code reaches them as
    `model.backbone` and `model.head`, never by layer position or name. The
    model maps RGB pixels in [0, 255] to per-class logits; pixel normalisation
    lives inside the backbone, so SavedModel and TFLite exports take plain
    pixels. The parts are used as given, never rewritten; the programs opt
    into faster calls with `csra_tf.acceleration.accelerate`.

    It is shared as a keras-hub preset: `save_to_preset(folder)` writes the
    folder with keras-hub's own writer, `keras_hub.upload_preset(uri, folder)`
    uploads it, and `CSRAClassifier.from_preset(folder_or_handle)` loads it
    back (see `csra_tf.models.presets`).

    Args:
        backbone: a `keras.Model` mapping `(B, S, S, 3)` pixels in [0, 255] to
            a feature map `(B, h, w, d)` (or tokens `(B, N, d)`).
        head: the classification layer on the features: `CSRA`,
            `AveragePoolingHead`, `ClassAttentionPooling` or any layer giving
            `(B, C)` logits (`AvgMaxClassScores` after `with_max_pooling`).
        dropout: dropout rate on the features before the head.
        **kwargs: `keras.Model` arguments (`name`, `trainable`).

    Example:
    >>> from csra_tf.layers import CSRA
    >>> backbone = backbones.create("tiny", image_size=32)
    >>> model = CSRAClassifier(backbone, CSRA(num_classes=4, lam=0.1))
    >>> model.output_shape
    (None, 4)
    >>> model.head.num_classes
    4
    """

    def __init__(
        self,
        backbone: keras.Model,
        head: keras.layers.Layer,
        dropout: float = 0.0,
        **kwargs,
    ):
        if not isinstance(backbone, keras.Model):
            raise UserError(
                "`backbone` must be a keras.Model mapping pixels to features. "
                f"Received: backbone={type(backbone).__name__}"
            )
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        inputs = keras.Input(tuple(backbone.input_shape[1:]), name="images")
        features = backbone(inputs)
        feature_dropout = (
            keras.layers.Dropout(dropout, name="feature_dropout") if dropout else None
        )
        if feature_dropout is not None:
            features = feature_dropout(features)
        logits = head(features)
        kwargs.setdefault("name", "csra_classifier")
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
        self.backbone = backbone
        self.head = head
        self.dropout = float(dropout)

    @property
    def image_size(self) -> int | None:
        """The side of the square input images (None when the size is free)."""
        return self.input_shape[1]

    @property
    def num_classes(self) -> int:
        """The number of classes `C` (the width of the logits)."""
        return int(self.output_shape[-1])

    def features(self, images, training: bool = False):
        """The backbone's feature map of `images` (pixels in [0, 255]).

        Args:
            images: `(B, S, S, 3)` pixels.
            training: run the backbone in training mode.

        Returns:
            The feature map `(B, h, w, d)`.
        """
        return self.backbone(images, training=training)

    def get_config(self):
        return {
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "head": keras.saving.serialize_keras_object(self.head),
            "dropout": self.dropout,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for part in ("backbone", "head"):
            if isinstance(config[part], dict):
                config[part] = keras.saving.deserialize_keras_object(
                    config[part], custom_objects=custom_objects
                )
        return cls(**config)

    @classmethod
    def from_preset(
        cls,
        preset: str,
        num_classes: int | None = None,
        backbone: str | None = None,
        image_size: int | None = None,
        load_weights: bool = True,
        **options,
    ) -> CSRAClassifier:
        """Loads a classifier preset, or builds a new head on a backbone preset.

        As keras-hub's tasks: without `num_classes`, the classifier saved in
        `preset` (by `save_to_preset`) comes back whole, read by keras-hub's
        own loader; with `num_classes`, its head's weights are not read and a
        new head is built (`build_classifier`), here on the saved backbone, or
        with `backbone` on a backbone preset.

        Args:
            preset: a folder written by `save_to_preset` or the `hf://` /
                `kaggle://` handle it was uploaded to; with `backbone`, any
                `weights` of `csra_tf.backbones.create`: a keras-hub preset
                name, an `hf://` handle, a local backbone preset folder.
            num_classes: classes of a new head; None loads the saved head.
            backbone: the registered backbone name whose architecture
                `preset` holds (e.g. `"resnet101"`, `"dinov2_base"`; see
                `csra_tf.backbones.available()`); needs `num_classes`.
            image_size: side of the input images. A saved classifier keeps
                its own; with `backbone`, `build_classifier`'s default (448).
            load_weights: read the preset's weights; False gives random ones
                (with `backbone`, the preset is then not read at all).
            **options: arguments of `build_classifier` for the new head
                (`head`, `num_heads`, `lam`, `dropout`, `temperatures`,
                `normalize`, `bn_momentum`, with `backbone` also
                `pixel_normalization`); they need `num_classes`.

        Returns:
            The classifier.

        Raises:
            UserError: for options without `num_classes`, a preset without a
                classifier when `backbone` is not named, an `image_size` a
                saved backbone cannot take, or a preset that cannot be read.

        Example:
        >>> import tempfile, keras_hub
        >>> folder = tempfile.mkdtemp()
        >>> keras_hub.models.ResNetBackbone(
        ...     **backbones.TORCHVISION_RESNET_CONFIGS["resnet_tiny"],
        ...     image_shape=(32, 32, 3),
        ... ).save_to_preset(folder)
        >>> model = CSRAClassifier.from_preset(
        ...     folder, backbone="resnet_tiny", num_classes=5, num_heads=2,
        ...     lam=0.2, image_size=32,
        ... )
        >>> model.head.num_classes, model.head.num_heads, model.head.lam
        (5, 2, 0.2)
        """
        _check_preset_options(num_classes, backbone, options)
        if backbone is not None:
            if image_size is not None:
                options["image_size"] = image_size
            weights = preset if load_weights else None
            return build_classifier(backbone, num_classes, weights=weights, **options)
        saved = load_task_preset(
            cls, preset, load_weights, load_task_weights=num_classes is None
        )
        if image_size is not None and image_size != saved.image_size:
            raise UserError(
                f"The classifier in {preset} takes {saved.image_size} px images; "
                "its backbone is loaded as saved. Build on a backbone preset "
                "(`backbone=...`) for another size. "
                f"Received: image_size={image_size}"
            )
        if num_classes is None:
            return saved
        return build_classifier(saved.backbone, num_classes, **options)


def _check_preset_options(num_classes, backbone, options) -> None:
    """Refuses `from_preset` arguments that do not go together."""
    allowed = set(inspect.signature(build_classifier).parameters) - {
        "backbone",
        "num_classes",
        "image_size",
        "weights",
    }
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise UserError(
            f"Unknown `from_preset` arguments; the new head takes "
            f"{', '.join(sorted(allowed))}. Received: {', '.join(unknown)}"
        )
    if num_classes is None and (options or backbone is not None):
        given = sorted(options) + (["backbone"] if backbone is not None else [])
        raise UserError(
            f"{', '.join(given)} build a new head and need `num_classes`. "
            f"Received: num_classes=None"
        )


def build_head(
    head: str,
    num_classes: int,
    num_heads: int = 1,
    lam: float = 0.1,
    temperatures: Sequence[float] | None = None,
    normalize: bool = True,
) -> keras.layers.Layer:
    """The head layer named by `head`.

    Args:
        head: one of `HEADS`: `"csra"` (class-specific residual attention),
            `"gap"` (global average pooling + Dense with bias, the baseline) or
            `"attention"` (the attention term alone, paper Table 6 "spatial").
        num_classes: number of classes `C`.
        num_heads: CSRA / attention heads (ignored for `"gap"`).
        lam: CSRA's `lambda` (only for `"csra"`).
        temperatures: one per head; default the paper's for `num_heads`.
        normalize: L2-normalise the CSRA / attention classifier columns.

    Returns:
        The layer, named `"head"`.
    """
    if head not in HEADS:
        raise UserError(f"`head` must be one of {HEADS}. Received: head={head}")
    if head == "gap":
        return AveragePoolingHead(num_classes, name="head")
    attention_kwargs = dict(
        num_heads=num_heads,
        temperatures=temperatures,
        normalize=normalize,
        name="head",
    )
    if head == "attention":
        return ClassAttentionPooling(num_classes, **attention_kwargs)
    return CSRA(num_classes, lam=lam, **attention_kwargs)


def set_batchnorm_momentum(model: keras.Model, momentum: float) -> int:
    """Sets the moving-average momentum of every BatchNormalization in `model`.

    Keras's momentum `m` keeps `m` of the old statistics; PyTorch's momentum
    `p` keeps `1 - p` (its default 0.1 is Keras's 0.9).

    Args:
        model: a model; nested models are searched too.
        momentum: Keras's momentum, in [0, 1).

    Returns:
        The number of BatchNormalization layers set.
    """
    count = 0
    for layer in getattr(model, "layers", ()):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = float(momentum)
            count += 1
        else:
            count += set_batchnorm_momentum(layer, momentum)
    return count


def build_classifier(
    backbone: str | keras.Model,
    num_classes: int,
    head: str = "csra",
    num_heads: int = 1,
    lam: float = 0.1,
    image_size: int = 448,
    weights: str | None = None,
    dropout: float = 0.0,
    temperatures: Sequence[float] | None = None,
    normalize: bool = True,
    pixel_normalization: str | None = None,
    bn_momentum: float | None = None,
) -> CSRAClassifier:
    """Builds a classifier from raw RGB pixels in [0, 255] to per-class logits.

    Args:
        backbone: a registered backbone name (see `csra_tf.backbones.available`)
            or a `keras.Model` that maps pixels in [0, 255] to a feature map.
        num_classes: number of classes `C`.
        head: `"csra"`, `"gap"` or `"attention"` (see `build_head`).
        num_heads: CSRA / attention heads (ignored for `"gap"`).
        lam: CSRA's `lambda` (ignored for `"gap"` and `"attention"`, whose
            logit is the attention term alone, the paper's `f = a`).
        image_size: side of the square input images.
        weights: backbone weights when `backbone` is a name (see
            `csra_tf.backbones.create`).
        dropout: dropout rate on the feature map before the head.
        temperatures: CSRA / attention temperatures; defaults to the paper's
            for `num_heads`.
        normalize: L2-normalise the CSRA / attention classifier columns.
        pixel_normalization: the backbone's input scaling when `backbone` is a
            name; None for the weights' own (see `csra_tf.backbones.create`).
        bn_momentum: the backbone's BatchNorm momentum in Keras's form (0.9 is
            PyTorch's default 0.1); None keeps the backbone's own.

    Returns:
        A `CSRAClassifier` `(B, image_size, image_size, 3) -> (B, C)` float32
        logits, with `.backbone` and `.head`.

    Example:
    >>> model = build_classifier("tiny", num_classes=10, image_size=32)
    >>> model.output_shape
    (None, 10)
    """
    head_layer = build_head(head, num_classes, num_heads, lam, temperatures, normalize)
    if isinstance(backbone, str):
        options = {}
        if pixel_normalization is not None:
            options["pixel_normalization"] = pixel_normalization
        backbone = backbones.create(
            backbone, weights=weights, image_size=image_size, **options
        )
    elif weights is not None or pixel_normalization is not None:
        raise UserError(
            "`weights` and `pixel_normalization` apply only when `backbone` is a "
            f"name. Received: weights={weights}, "
            f"pixel_normalization={pixel_normalization}"
        )
    if bn_momentum is not None:
        set_batchnorm_momentum(backbone, bn_momentum)
    return CSRAClassifier(
        backbone, head_layer, dropout=dropout, name=f"{head}_classifier"
    )
