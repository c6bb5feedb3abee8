"""keras-hub presets of a classifier: written and read by keras-hub's own code.

keras-hub saves and loads its task models (`keras_hub.models.ImageClassifier`
and the others) with one preset writer and one reader, `KerasPresetSaver` and
`KerasPresetLoader` in `keras_hub.src.utils.preset_utils`. A task preset is a
folder of five files:

    config.json        the backbone's Keras config
    metadata.json      Keras and keras-hub versions, parameter count, date
    model.weights.h5   the backbone's weights
    task.json          the whole model's Keras config (backbone included)
    task.weights.h5    the weights outside the backbone (the head)

`keras_hub.upload_preset` uploads such a folder to the Hugging Face Hub or
Kaggle, and `from_preset` loads it back from a local folder, an `hf://` handle
or a `kaggle://` handle. The writer and the reader are duck-typed: they need a
model with `backbone`, `preprocessor`, `has_task_weights`, `save_task_weights`
and `load_task_weights`. `TaskPresetMixin` gives a Keras model those, so
`CSRAClassifier` is written and read by keras-hub's code while staying a plain
`keras.Model` subclass (docs/design_notes.md, "Sharing a trained model as a
keras-hub preset", says why it is not a keras-hub `Task`).

keras-hub exports no preset writer or reader outside its `Task` and `Backbone`
classes, so this module reaches them in `keras_hub.src.utils.preset_utils`;
`PRIVATE_KERAS_HUB_NAMES` lists each name used, and a test checks that the
installed keras-hub (pinned in setup.py) has every one.
"""

from __future__ import annotations

import importlib
import os

import keras

from csra_tf.backbones.preset_loading import from_preset as _fetch
from csra_tf.errors import UserError

_PRESET_UTILS = "keras_hub.src.utils.preset_utils"

PRIVATE_KERAS_HUB_NAMES = (
    "CONFIG_FILE",
    "TASK_CONFIG_FILE",
    "check_file_exists",
    "get_preset_loader",
    "get_preset_saver",
    "load_json",
    "KerasPresetLoader.load_task",
    "KerasPresetSaver.save_task",
)
"""The names of `keras_hub.src.utils.preset_utils` this module uses."""

_WEIGHTS_SUFFIX = ".weights.h5"


def preset_utils():
    """keras-hub's preset module, checked for every name this module uses.

    Returns:
        The module `keras_hub.src.utils.preset_utils`.

    Raises:
        UserError: when the installed keras-hub lacks one of
            `PRIVATE_KERAS_HUB_NAMES` (a keras-hub that setup.py does not pin).
    """
    module = importlib.import_module(_PRESET_UTILS)
    for name in PRIVATE_KERAS_HUB_NAMES:
        holder = module
        for part in name.split("."):
            holder = getattr(holder, part, None)
        if holder is None:
            import keras_hub

            raise UserError(
                f"keras-hub {keras_hub.__version__} has no {_PRESET_UTILS}.{name}, "
                "which preset saving and loading use; install the keras-hub that "
                "setup.py pins (>=0.32,<0.33). "
                f"Received: keras_hub={keras_hub.__version__}"
            )
    return module


class TaskPresetMixin:
    """The part of keras-hub's `Task` that its preset writer and reader use.

    Mixed into a `keras.Model` that owns a `backbone` attribute, it adds
    `save_to_preset` (keras-hub's `KerasPresetSaver.save_task`) and the
    methods that writer and `KerasPresetLoader.load_task` call. The model's
    input scaling lives inside its backbone, so it has no `preprocessor`:
    keras-hub then writes no `preprocessor.json` or `image_converter.json`,
    and its own tasks that load the folder pass pixels through unchanged.
    """

    preprocessor = None
    """keras-hub's task preprocessor: none, pixels go into the model as they are."""

    def has_task_weights(self) -> bool:
        """Whether the model has weights outside its backbone (its head's).

        Returns:
            True when some weight of the model is not one of the backbone's.
        """
        backbone_weights = {id(weight) for weight in self.backbone.weights}
        return any(id(weight) not in backbone_weights for weight in self.weights)

    def save_task_weights(self, filepath: str) -> None:
        """Writes the weights outside the backbone to `filepath`.

        Args:
            filepath: a `.weights.h5` file (keras-hub's `task.weights.h5`).
        """
        keras.saving.save_weights(
            self, _weights_path(filepath), objects_to_skip=[self.backbone]
        )

    def load_task_weights(self, filepath: str) -> None:
        """Reads the weights outside the backbone from `filepath`.

        Args:
            filepath: a `.weights.h5` file written by `save_task_weights`.
        """
        keras.saving.load_weights(
            self, _weights_path(filepath), objects_to_skip=[self.backbone]
        )

    def save_to_preset(self, preset_dir: str, max_shard_size: float | None = 10):
        """Writes the model as a keras-hub task preset, with keras-hub's writer.

        The folder holds `config.json`, `metadata.json` and `model.weights.h5`
        (the backbone) and `task.json` and `task.weights.h5` (the whole model
        and its head). `keras_hub.upload_preset(uri, preset_dir)` uploads it;
        `from_preset(preset_dir)` (or the `hf://` / `kaggle://` handle it was
        uploaded to) loads it back after `import csra_tf`.

        Args:
            preset_dir: the folder to write (created if missing; keras-hub's
                files in it are replaced).
            max_shard_size: the largest backbone weights file in GB before
                keras-hub shards it; None never shards.

        Example:
        >>> import tempfile
        >>> from csra_tf.models import CSRAClassifier, build_classifier
        >>> folder = tempfile.mkdtemp()
        >>> build_classifier("tiny", num_classes=3, image_size=32).save_to_preset(
        ...     folder
        ... )
        >>> sorted(os.listdir(folder))  # doctest: +NORMALIZE_WHITESPACE
        ['config.json', 'metadata.json', 'model.weights.h5', 'task.json',
         'task.weights.h5']
        >>> CSRAClassifier.from_preset(folder).num_classes
        3
        """
        if os.path.isfile(preset_dir):
            raise UserError(
                "`preset_dir` must be a folder to write the preset into, not a file. "
                f"Received: preset_dir={preset_dir}"
            )
        saver = preset_utils().get_preset_saver(preset_dir)
        saver.save_task(self, max_shard_size=max_shard_size)


def _weights_path(filepath) -> str:
    filepath = str(filepath)
    if not filepath.endswith(_WEIGHTS_SUFFIX):
        raise UserError(
            f"A task weights file must end in {_WEIGHTS_SUFFIX}. "
            f"Received: filepath={filepath}"
        )
    return filepath


class _TaskLoader:
    """`from_preset` of keras-hub's task reader for one class.

    `csra_tf.backbones.preset_loading.from_preset` calls it and turns a preset that
    cannot be fetched (offline, a wrong handle) into one line.
    """

    def __init__(self, cls, load_task_weights: bool):
        self.cls = cls
        self.load_task_weights = load_task_weights

    def from_preset(self, preset: str, load_weights: bool = True):
        utils = preset_utils()
        loader = utils.get_preset_loader(preset)
        if not utils.check_file_exists(preset, utils.TASK_CONFIG_FILE):
            raise UserError(
                f"The preset {preset} holds a backbone but no classifier (no "
                f"{utils.TASK_CONFIG_FILE}); to put a new head on that backbone, "
                "name its architecture and the classes, e.g. "
                "`from_preset(preset, backbone='resnet101', num_classes=80)`. "
                f"Received: preset={preset}"
            )
        task_class = _registered_class(utils.load_json(preset, utils.TASK_CONFIG_FILE))
        if task_class is None or not issubclass(task_class, self.cls):
            name = getattr(task_class, "__name__", "class unknown to Keras")
            raise UserError(
                f"The preset {preset} holds a {name}, not a {self.cls.__name__}; to "
                "put a CSRA head on its backbone, name the backbone's architecture "
                "and the classes, e.g. `from_preset(preset, backbone='resnet50', "
                f"num_classes=80)`. Received: preset={preset}"
            )
        return loader.load_task(self.cls, load_weights, self.load_task_weights)


def _registered_class(config: dict):
    name = config.get("registered_name")
    return None if name is None else keras.saving.get_registered_object(name)


def load_task_preset(
    cls, preset: str, load_weights: bool = True, load_task_weights: bool = True
):
    """Loads a model of class `cls` from a task preset, with keras-hub's reader.

    Args:
        cls: the model class (e.g. `CSRAClassifier`); the preset's
            `task.json` must hold it or a subclass.
        preset: a local folder written by `save_to_preset`, or the `hf://` or
            `kaggle://` handle it was uploaded to.
        load_weights: read the saved weights; False keeps random ones.
        load_task_weights: read the head's weights too (`task.weights.h5`);
            False reads the backbone's alone.

    Returns:
        The model, an instance of the class `task.json` names.

    Raises:
        UserError: when `preset` is neither a folder nor a handle, holds no
            model of class `cls`, or cannot be fetched (one line, with how to
            provide it offline).
    """
    if "://" not in preset and not os.path.isdir(preset):
        raise UserError(
            "`preset` must be a local folder written by `save_to_preset` or an "
            f"hf:// or kaggle:// handle. Received: preset={preset}"
        )
    config_file = preset_utils().CONFIG_FILE
    if "://" not in preset and not os.path.isfile(os.path.join(preset, config_file)):
        raise UserError(
            f"The folder {preset} has no {config_file}: it is not a keras-hub "
            f"preset (write one with `save_to_preset`). Received: preset={preset}"
        )
    return _fetch(
        _TaskLoader(cls, load_task_weights), preset, load_weights=load_weights
    )
