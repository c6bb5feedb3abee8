"""The run folder: every file a run writes, and reading them back with checks.

One home for the layout of a workdir (docs/architecture.md, "The run folder"):

    config.json          the resolved `TrainConfig`
    classes.json         class names, in output order
    val_split.json       the validation part split off a training manifest
    model.keras          the final classifier (`CSRAClassifier`)
    metrics.json         the paper's metrics on the validation data
    thresholds.json      per-class thresholds (csra-eval --calibrate_thresholds)
    history.csv          per-epoch logs
    checkpoints/         best.keras (+ best.json) by validation mAP
    backup/              the resume point of an unfinished run
    tensorboard/         TensorBoard logs
    data/                the embedded dataset, when `data_dir` is empty
    export/              SavedModel, TFLite variants, export_report.json
    attention/           attention overlays; pointing_game.json beside it
    training_free.csv    Table 1 of a GAP run (+ training_free.png)

No other module spells these names.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zipfile
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from csra_tf import data
from csra_tf.config import TrainConfig
from csra_tf.config.class_names import load_class_names, save_class_names
from csra_tf.config.json_files import read_json, write_json
from csra_tf.errors import UserError
from csra_tf.models import CSRAClassifier  # noqa: F401 - registers the model class

CONFIG_FILE = "config.json"
CLASSES_FILE = "classes.json"
SPLIT_FILE = "val_split.json"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
THRESHOLDS_FILE = "thresholds.json"
HISTORY_FILE = "history.csv"
CHECKPOINT_DIR = "checkpoints"
BEST_CHECKPOINT = os.path.join(CHECKPOINT_DIR, "best.keras")
BEST_METADATA = "best.json"
BACKUP_DIR = "backup"
BACKUP_METADATA = "backup.json"
TENSORBOARD_DIR = "tensorboard"
DATA_DIR = "data"
EXPORT_DIR = "export"
SAVED_MODEL_DIR = "saved_model"
EXPORT_REPORT_FILE = "export_report.json"
TFLITE_FILE = "model_{variant}.tflite"
ATTENTION_DIR = "attention"
POINTING_GAME_FILE = "pointing_game.json"
TRAINING_FREE_CSV = "training_free.csv"
TRAINING_FREE_PLOT = "training_free.png"


def check_resumable(config: TrainConfig) -> None:
    """Refuses to reuse a workdir whose saved config differs from `config`.

    Args:
        config: the run's configuration (its `workdir` is checked).

    Raises:
        UserError: naming each changed field with its old and new value.
    """
    path = os.path.join(config.workdir, CONFIG_FILE)
    if not os.path.exists(path):
        return
    saved = TrainConfig.load(path).to_dict()
    changed = {
        k: (saved[k], v) for k, v in config.to_dict().items() if saved.get(k) != v
    }
    if changed:
        details = ", ".join(
            f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items()
        )
        raise UserError(
            f"{path} holds a different configuration; resuming would mix two runs. "
            f"Use a new workdir or the same settings. Changed: {details}"
        )


def write_config(config: TrainConfig) -> None:
    """Writes `config` as `<workdir>/config.json` (creating the workdir).

    Args:
        config: the run's configuration.
    """
    os.makedirs(config.workdir, exist_ok=True)
    write_json(os.path.join(config.workdir, CONFIG_FILE), config.to_dict())


DATA_FIELDS = ("dataset", "data_dir", "val_dataset", "image_root")
"""The config fields that say where a run's data is; programs that read a run
folder may point them elsewhere (`csra-eval --dataset=... --data_dir=...`)."""


def read_config(
    workdir: str | os.PathLike, data_overrides: Mapping[str, str] | None = None
) -> TrainConfig:
    """Reads `<workdir>/config.json`, optionally pointing it at other data.

    Args:
        workdir: a run folder.
        data_overrides: new values of `DATA_FIELDS` (None values are ignored).

    Returns:
        The `TrainConfig`.

    Raises:
        UserError: when the folder has no config, the config is invalid, or an
            override is not a data field.
    """
    path = os.path.join(os.fspath(workdir), CONFIG_FILE)
    if not os.path.exists(path):
        raise UserError(
            f"No {CONFIG_FILE} in the workdir (is it a csra-train or csra-import "
            f"folder?). Received: workdir={os.fspath(workdir)}"
        )
    config = TrainConfig.load(path)
    overrides = {k: v for k, v in (data_overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(DATA_FIELDS))
    if unknown:
        raise UserError(
            f"Only the data fields {DATA_FIELDS} can be overridden. Received: {unknown}"
        )
    return dataclasses.replace(config, **overrides) if overrides else config


def write_class_names(folder: str | os.PathLike, class_names: Sequence[str]) -> None:
    """Writes `<folder>/classes.json` (checked: distinct non-empty names).

    Args:
        folder: the run or export folder.
        class_names: names in output order.
    """
    os.makedirs(folder, exist_ok=True)
    save_class_names(os.path.join(folder, CLASSES_FILE), class_names)


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Reads a `classes.json` file (or the one in a folder), with its checks.

    Args:
        path: the file, or a folder holding `classes.json`.

    Returns:
        The class names.

    Raises:
        UserError: naming the file when it is missing or malformed.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, CLASSES_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such class-names file.")
    try:
        return load_class_names(path)
    except json.JSONDecodeError as error:
        raise UserError(
            f"{path}:{error.lineno}: not valid JSON ({error.msg})."
        ) from error


def saved_class_names(folder: str | os.PathLike) -> list[str] | None:
    """The `classes.json` of a folder, or None when it has none.

    Args:
        folder: a run or export folder.

    Returns:
        The class names, or None.
    """
    if os.path.isfile(os.path.join(os.fspath(folder), CLASSES_FILE)):
        return read_class_names(folder)
    return None


def find_class_names(model_path: str | os.PathLike) -> list[str] | None:
    """Reads the `classes.json` that belongs with a model, if any.

    Looks next to the model file, inside a SavedModel folder and one folder up
    (an export folder inside a run folder).

    Args:
        model_path: a `.keras` file, SavedModel folder or `.tflite` file.

    Returns:
        The class names, or None when no `classes.json` is found.
    """
    model_path = os.path.abspath(os.fspath(model_path))
    folder = model_path if os.path.isdir(model_path) else os.path.dirname(model_path)
    for candidate in (folder, os.path.dirname(folder)):
        names = saved_class_names(candidate)
        if names is not None:
            return names
    return None


def save_thresholds(
    path: str | os.PathLike, thresholds, class_names: Sequence[str]
) -> None:
    """Writes per-class thresholds as JSON keyed by class name.

    Args:
        path: the `.json` file to write.
        thresholds: `(C,)` thresholds.
        class_names: the `C` class names, in output order.

    Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "thresholds.json")
    >>> save_thresholds(path, [0.3, 0.6], ["cat", "dog"])
    >>> load_thresholds(path, ["dog", "cat"]).tolist()
    [0.6, 0.3]
    """
    thresholds = np.asarray(thresholds, np.float64)
    if thresholds.shape != (len(class_names),) or not np.all(np.isfinite(thresholds)):
        raise UserError(
            "Need one finite threshold per class "
            f"({len(class_names)} classes). Received: thresholds={thresholds.tolist()}"
        )
    if len(set(class_names)) != len(class_names):
        raise UserError(
            f"Class names must be distinct. Received: class_names={list(class_names)}"
        )
    write_json(path, dict(zip(class_names, thresholds.tolist(), strict=True)))


def load_thresholds(path: str | os.PathLike, class_names: Sequence[str]) -> np.ndarray:
    """Reads a thresholds JSON file in the order of `class_names`.

    Args:
        path: a file written by `save_thresholds` (`{"class": threshold}`).
        class_names: the model's class names, in output order.

    Returns:
        float64 thresholds `(C,)`.

    Raises:
        UserError: if the file is missing or malformed, or its classes differ
            from `class_names`.
    """
    values = read_json(path)
    if not isinstance(values, dict) or not all(
        isinstance(v, (int, float)) and math.isfinite(v) for v in values.values()
    ):
        raise UserError(
            "A thresholds file maps class names to finite numbers. "
            f"Received: path={path}"
        )
    missing = [name for name in class_names if name not in values]
    unknown = [name for name in values if name not in set(class_names)]
    if missing or unknown:
        raise UserError(
            "The thresholds file does not match the model's classes "
            f"(missing: {missing}, unknown: {unknown}). Received: path={path}"
        )
    return np.asarray([values[name] for name in class_names], np.float64)


def metrics_to_json(metrics: dict, class_names: Sequence[str]) -> dict:
    """Turns an `evaluate()` dict into JSON-ready values (AP as a list, NaN -> None).

    Args:
        metrics: the dict returned by `csra_tf.metrics.evaluate`.
        class_names: names for the per-class AP.

    Returns:
        A dict with floats, `AP` as a list and `class_names`.
    """
    out = {k: float(v) for k, v in metrics.items() if k != "AP"}
    out["AP"] = [None if math.isnan(a) else float(a) for a in np.asarray(metrics["AP"])]
    out["class_names"] = list(class_names)
    return out


def write_metrics(
    workdir: str | os.PathLike,
    metrics: dict,
    class_names: Sequence[str],
    extra: dict | None = None,
) -> None:
    """Writes `<workdir>/metrics.json`: the metrics (+ `extra` keys).

    Args:
        workdir: the run folder.
        metrics: the dict returned by `csra_tf.metrics.evaluate`.
        class_names: names for the per-class AP.
        extra: more JSON-ready entries, e.g. counts of skipped bad records.
    """
    write_json(
        os.path.join(os.fspath(workdir), METRICS_FILE),
        {**metrics_to_json(metrics, class_names), **(extra or {})},
    )


def save_model(model: keras.Model, path: str | os.PathLike) -> None:
    """Saves a `.keras` file so that a kill mid-write never leaves a corrupt one.

    Args:
        model: the model.
        path: destination, ending in `.keras` (written aside, then renamed).
    """
    directory, name = os.path.split(os.fspath(path))
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{name}")
    model.save(tmp)
    os.replace(tmp, path)


def load_model(path: str | os.PathLike) -> keras.Model:
    """Loads a `.keras` classifier (safe mode, not compiled).

    Args:
        path: the `.keras` file.

    Returns:
        The model (a `CSRAClassifier` for models csra-tf made).

    Raises:
        UserError: when the file does not exist or is not a readable `.keras`
            file (truncated, damaged, another format).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"The model file does not exist. Received: path={path}")
    _check_keras_archive(path)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (OSError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise UserError(_unreadable_model(path, error)) from error


def _unreadable_model(path: str, reason) -> str:
    return (
        f"{path} is not a readable Keras model: expected a `.keras` file as "
        f"`model.save` writes it ({reason})."
    )


def _check_keras_archive(path: str) -> None:
    """Refuses a file that is not an intact `.keras` zip (config + weights)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = sorted({"config.json", "model.weights.h5"} - names)
            if missing:
                raise UserError(_unreadable_model(path, f"no {', '.join(missing)}"))
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise UserError(_unreadable_model(path, error)) from error
    if damaged is not None:
        raise UserError(_unreadable_model(path, f"{damaged} is damaged"))


def data_dir(config: TrainConfig) -> str:
    """The data folder of a run: `data_dir`, or `<workdir>/data` for shapes.

    Args:
        config: the run's configuration.

    Returns:
        The folder ("" for a TFDS dataset in TFDS's default folder).
    """
    if config.dataset == "shapes" and not config.data_dir:
        return os.path.join(config.workdir, DATA_DIR)
    return config.data_dir


def load_sources(
    config: TrainConfig, class_names: Sequence[str] | None = None
) -> tuple[data.Source, data.Source]:
    """The (train, validation) sources of a run's config.

    `csra_tf.data.train_val_sources` chooses the sources; this passes it the
    run's settings and its files: a training manifest without `val_dataset` is
    split once, and the split is kept in `<workdir>/val_split.json` so that a
    resumed or re-evaluated run uses the same one.

    Args:
        config: the run's configuration.
        class_names: for manifests, the classes in target order (a saved
            model's); default the training manifest's labels.

    Returns:
        Two `csra_tf.data.Source`s with the same class names.
    """
    if not config.dataset:
        raise UserError(
            f"The run in {config.workdir} names no dataset (an imported model?); "
            "give --dataset (voc2007, coco2014, wider or a manifest) and --data_dir."
        )
    return data.train_val_sources(
        config.dataset,
        data_dir=data_dir(config) or None,
        val_dataset=config.val_dataset or None,
        image_root=config.image_root or None,
        on_bad_record=config.on_bad_record,
        seed=config.seed,
        shapes_image_size=config.shapes_image_size,
        shapes_num_train=config.num_train,
        shapes_num_val=config.num_val,
        class_names=class_names,
        val_split=config.val_split,
        val_split_file=os.path.join(config.workdir, SPLIT_FILE),
    )


@dataclasses.dataclass(frozen=True)
class SavedRun:
    """A run folder's config, saved model and validation source.

    Args:
        config: the run's `config.json`.
        model: the saved classifier (loaded uncompiled, `safe_mode=True`).
        val_source: the run's validation data.
    """

    config: TrainConfig
    model: keras.Model
    val_source: data.Source

    def val_batches(self, batch_size: int | None = None) -> tf.data.Dataset:
        """The validation data as evaluation batches, in source order.

        Args:
            batch_size: images per batch; default the run's batch size.

        Returns:
            A dataset of `(images (B, S, S, 3), targets (B, C))` batches.
        """
        return data.build_dataset(
            self.val_source,
            image_size=self.config.image_size,
            batch_size=batch_size or self.config.batch_size,
            training=False,
        )


def load_run(
    workdir: str | os.PathLike,
    checkpoint: str | None = None,
    data_overrides: Mapping[str, str] | None = None,
) -> SavedRun:
    """Reads a finished run back: its config, model and validation source.

    Args:
        workdir: a run folder (config.json and model.keras).
        checkpoint: model file; default `<workdir>/model.keras`.
        data_overrides: other values of `DATA_FIELDS` (see `read_config`).

    Returns:
        The `SavedRun`.

    Raises:
        UserError: when the config or the model file is missing, or the data's
            classes are not the model's.
    """
    config = read_config(workdir, data_overrides)
    model = load_model(checkpoint or os.path.join(os.fspath(workdir), MODEL_FILE))
    _, val_source = load_sources(config, saved_class_names(workdir))
    check_classes(workdir, model, val_source.class_names)
    return SavedRun(config, model, val_source)


def check_classes(
    workdir: str | os.PathLike, model: keras.Model, class_names: Sequence[str]
) -> None:
    """Refuses data whose classes are not the model's (count, and the names in
    the run's classes.json when it has one).

    Args:
        workdir: the run folder.
        model: its classifier.
        class_names: the data's class names, in target order.

    Raises:
        UserError: naming both lists.
    """
    if model.output_shape[-1] != len(class_names):
        raise UserError(
            f"The model has {model.output_shape[-1]} outputs but the data has "
            f"{len(class_names)} classes. Received: class_names={list(class_names)}"
        )
    saved = saved_class_names(workdir)
    if saved is not None:
        if saved != list(class_names):
            raise UserError(
                f"The data's classes are not the model's ({CLASSES_FILE}: {saved}). "
                f"Received: class_names={list(class_names)}"
            )
