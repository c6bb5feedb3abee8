"""Loading keras-hub / keras-cv presets, with one line when they cannot be fetched.

`from_preset(cls, preset)` is `cls.from_preset(preset)`: the one place where
csra-tf's backbones load pretrained presets. When the preset's files cannot be
fetched (no network, `HF_HUB_OFFLINE` with an empty cache, a wrong handle, an
incomplete local folder), it raises a `UserError` that says what was tried and
how to provide the weights offline, instead of the hub client's traceback.
Errors that are not about fetching keep their traceback.
"""

from __future__ import annotations

import os

from csra_tf.errors import UserError

_CONFIG_FILE = "config.json"
_HF_PREFIX = "hf://"
_KAGGLE_PREFIX = "kaggle://"
_SAVE_HINT = "or pass a local preset folder written with `save_to_preset`"


def from_preset(cls, preset: str, **kwargs):
    """Loads `preset` with `cls.from_preset`, failing in one line if it is missing.

    Args:
        cls: a class with keras-hub's `from_preset` classmethod, e.g.
            `keras_hub.models.ResNetBackbone` or a keras-cv backbone class.
        preset: a built-in preset name, an `hf://` or `kaggle://` handle, or a
            local preset folder.
        **kwargs: passed to `cls.from_preset`.

    Returns:
        What `cls.from_preset` returns.

    Raises:
        UserError: when the preset's files cannot be fetched or read: the
            message names the preset, what was tried and how to provide it
            offline.

    Example:

    >>> import tempfile, keras_hub
    >>> from_preset(keras_hub.models.ResNetBackbone, tempfile.mkdtemp())
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csra_tf.errors.UserError: The local preset folder ... has no config.json: ...
    """
    local = os.path.isdir(preset)
    if local and not os.path.isfile(os.path.join(preset, _CONFIG_FILE)):
        raise UserError(
            f"The local preset folder {preset} has no {_CONFIG_FILE}: it is not a "
            "keras-hub preset (write one with `save_to_preset`). Received: "
            f"weights={preset}"
        )
    try:
        return cls.from_preset(preset, **kwargs)
    except OSError as error:
        if local:
            raise UserError(
                f"The local preset folder {preset} cannot be read "
                f"({_reason(error)}). Received: weights={preset}"
            ) from error
        raise UserError(_fetch_failure(cls, preset, error)) from error
    except ValueError as error:
        if isinstance(error, UserError) or local:
            raise
        if preset.startswith(_HF_PREFIX) and _is_invalid_hf_handle(error):
            raise UserError(
                f"{preset} is not a Hugging Face handle: it should read "
                f"hf://<owner>/<model>, e.g. hf://timm/resnet101.tv_in1k. "
                f"Received: weights={preset}"
            ) from error
        if preset.startswith(_HF_PREFIX) and not _hf_cached(preset):
            raise UserError(_fetch_failure(cls, preset, None)) from error
        raise


def _presets(cls) -> dict:
    try:
        return dict(cls.presets)
    except (AttributeError, TypeError):
        return {}


def _is_invalid_hf_handle(error: BaseException) -> bool:
    from huggingface_hub.errors import HFValidationError

    cause = error
    while cause is not None:
        if isinstance(cause, HFValidationError):
            return True
        cause = cause.__cause__
    return False


def _hf_cached(preset: str) -> bool:
    """Whether the handle's config.json is in the local Hugging Face cache."""
    import huggingface_hub

    repo_id = preset.removeprefix(_HF_PREFIX)
    try:
        path = huggingface_hub.try_to_load_from_cache(repo_id, _CONFIG_FILE)
    except ValueError:  # not a valid repo id
        return False
    return isinstance(path, str)


def _fetch_failure(cls, preset: str, error: BaseException | None) -> str:
    """The one-line message of a preset that could not be fetched."""
    reason = "" if error is None else f" ({_reason(error)})"
    if preset.startswith(_HF_PREFIX):
        from huggingface_hub import constants

        repo_id = preset.removeprefix(_HF_PREFIX)
        cache = constants.HF_HUB_CACHE
        offline = constants.is_offline_mode()
        if _is_missing_repo(error):
            return (
                f"Could not fetch the weights {preset}: the Hugging Face Hub "
                f"({constants.ENDPOINT}) has no model {repo_id} that this machine "
                f"may read{reason}. Check the handle, log in (`hf auth login`) for "
                f"a private or gated model, {_SAVE_HINT}. Received: weights={preset}"
            )
        if offline:
            tried = (
                f"HF_HUB_OFFLINE is set and {repo_id} is not in the Hugging Face "
                f"cache {cache}"
            )
        else:
            tried = (
                f"it is neither reachable on the Hugging Face Hub "
                f"({constants.ENDPOINT}) nor in the cache {cache}"
            )
        return (
            f"Could not fetch the weights {preset}: {tried}{reason}. To work "
            f"offline, download them on a machine with network (`hf download "
            f"{repo_id}`, into the cache that HF_HUB_CACHE names), copy that cache "
            "here and set "
            f"HF_HUB_OFFLINE=1, {_SAVE_HINT}. Received: weights={preset}"
        )
    handle = preset
    if not preset.startswith(_KAGGLE_PREFIX):
        handle = _presets(cls).get(preset, {}).get("kaggle_handle", preset)
    where = preset if handle == preset else f"{preset} ({handle})"
    return (
        f"Could not fetch the weights {where} from Kaggle{reason}. To work "
        "offline, load them once on a machine with network (kagglehub keeps them "
        "in the folder KAGGLEHUB_CACHE names, ~/.cache/kagglehub by default) and "
        f"copy that folder here, {_SAVE_HINT}. Received: weights={preset}"
    )


def _is_missing_repo(error: BaseException | None) -> bool:
    from huggingface_hub.errors import RepositoryNotFoundError

    return isinstance(error, RepositoryNotFoundError)


def _reason(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    if len(text) > 240:
        text = text[:237] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
