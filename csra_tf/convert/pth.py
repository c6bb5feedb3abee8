"""Read PyTorch `.pth` state dicts into numpy, without torch and without pickle code.

`torch.save` (PyTorch >= 1.6) writes a zip archive with one top-level folder
(its name varies) holding:

- `data.pkl`: a pickle of the saved object, in which every tensor is a call
  `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and
  every storage is a persistent id `('storage', <storage type>, key, location,
  numel)`;
- `data/<key>`: the raw bytes of each storage;
- `byteorder` (when present): `little` or `big`, the byte order of those bytes.

A pickle can name any importable function and call it, so unpickling an
untrusted file with the standard `pickle.load` runs whatever the file says.
`load_state_dict` instead unpickles with an allow-list: the few globals a state
dict needs are replaced by numpy re-implementations, and any other global is
refused before anything in the file runs.

The legacy format (PyTorch < 1.6, or `_use_new_zipfile_serialization=False`)
is refused with instructions to re-save the file.
"""

import collections
import os
import pickle
import tarfile
import zipfile
from collections.abc import Mapping

import numpy as np
from numpy.lib.stride_tricks import as_strided

from csra_tf.errors import UserError

# The pickled magic number that starts a legacy (non-zip) `torch.save` file.
_LEGACY_MAGIC = b"l\xfc\x9cF\xf9 j\xa8P\x19"

# The prefix nn.DataParallel adds to every key.
_MODULE_PREFIX = "module."

# Keys under which common training checkpoints wrap the state dict.
_WRAPPER_KEYS = ("state_dict", "model")


class _FormatError(UserError):
    """A problem with the file's content; the caller prefixes the file name."""


class _CompleteError(UserError):
    """An error whose message is already complete; re-raised as a ValueError."""


class _Sealed:
    """Base of every object the restricted unpickler hands to the pickle.

    `__slots__` leaves no `__dict__`, and `__setstate__` refuses the BUILD
    opcode, so a pickle cannot change these objects (some are module-level
    constants shared by every load).
    """

    __slots__ = ()

    def __setstate__(self, state):
        raise _FormatError(
            f"data.pkl tries to set the state of {self!r}, which a state dict "
            "never does"
        )


class _Element(_Sealed):
    """An element type: how to read its bytes and what numpy dtype it becomes."""

    __slots__ = ("name", "raw_code", "itemsize")

    def __init__(self, name, raw_code):
        self.name = name
        self.raw_code = raw_code
        self.itemsize = np.dtype(raw_code).itemsize

    def raw_dtype(self, byteorder):
        """The numpy dtype of the stored bytes in the given byte order."""
        return np.dtype(("<" if byteorder == "little" else ">") + self.raw_code)

    def decode(self, raw):
        """Turns a copied array of stored values into a native numpy array."""
        if self.name == "bfloat16":
            # bfloat16 is the upper half of a float32.
            widened = raw.astype(np.uint32) << np.uint32(16)
            return np.asarray(widened).view(np.float32)
        if self.name == "bool":
            return np.asarray(raw != 0)
        return np.asarray(raw.astype(np.dtype(self.raw_code)))

    def __repr__(self):
        return f"torch.{self.name}"


_ELEMENTS = {
    name: _Element(name, code)
    for name, code in [
        ("float32", "f4"),
        ("float16", "f2"),
        ("float64", "f8"),
        ("bfloat16", "u2"),
        ("int64", "i8"),
        ("int32", "i4"),
        ("int16", "i2"),
        ("int8", "i1"),
        ("uint8", "u1"),
        ("uint16", "u2"),
        ("uint32", "u4"),
        ("uint64", "u8"),
        ("bool", "u1"),
        ("complex64", "c8"),
        ("complex128", "c16"),
    ]
}


class _StorageType(_Sealed):
    """What a storage class global such as `torch.FloatStorage` unpickles to."""

    __slots__ = ("qualname", "element")

    def __init__(self, qualname, element):
        self.qualname = qualname
        self.element = element

    def __repr__(self):
        return self.qualname


class _Storage(_Sealed):
    """The bytes of one `data/<key>` record and the element type they hold."""

    __slots__ = ("key", "element", "data", "byteorder")

    def __init__(self, key, element, data, byteorder):
        self.key = key
        self.element = element
        self.data = data
        self.byteorder = byteorder

    def __repr__(self):
        return f"storage {self.key!r}"


class _Tensor(_Sealed):
    """A rebuilt tensor; replaced by its numpy array once unpickling is done."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __repr__(self):
        return f"tensor of shape {self.array.shape}"


class _Rebuild(_Sealed):
    """A numpy stand-in for one of torch's `_rebuild_*` functions."""

    __slots__ = ("qualname", "function")

    def __init__(self, qualname, function):
        self.qualname = qualname
        self.function = function

    def __call__(self, *args):
        return self.function(*args)

    def __repr__(self):
        return self.qualname


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _int_tuple(value, what):
    if not isinstance(value, tuple | list) or not all(_is_int(v) for v in value):
        raise _FormatError(f"a tensor's {what} must be a tuple of ints, got {value!r}")
    if any(v < 0 for v in value):
        raise _FormatError(f"a tensor's {what} must not be negative, got {value!r}")
    return tuple(value)


def _tensor_from_storage(storage, element, offset, size, stride):
    """Copies the strided view `(offset, size, stride)` of a storage to numpy."""
    if not isinstance(storage, _Storage):
        raise _FormatError(f"a tensor must be built from a storage, got {storage!r}")
    if not _is_int(offset) or offset < 0:
        raise _FormatError(f"a tensor's storage offset must be an int >= 0: {offset}")
    size = _int_tuple(size, "size")
    stride = _int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise _FormatError(
            f"a tensor's size {size} and stride {stride} have different lengths"
        )
    available = len(storage.data) // element.itemsize
    raw_dtype = element.raw_dtype(storage.byteorder)
    if 0 in size:
        return element.decode(np.zeros(size, dtype=raw_dtype))
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= available:
        raise _FormatError(
            f"a tensor (offset {offset}, size {size}, stride {stride}) reaches "
            f"element {last} of {storage!r}, which holds {available} "
            f"{element.name} elements"
        )
    flat = np.frombuffer(storage.data, dtype=raw_dtype, count=available)
    view = as_strided(
        flat[offset:],
        shape=size,
        strides=tuple(s * element.itemsize for s in stride),
        writeable=False,
    )
    return element.decode(np.array(view))


def _apply_metadata(array, metadata):
    """Applies the lazy negation / conjugation bits torch may record."""
    if not metadata:
        return array
    if not isinstance(metadata, dict):
        raise _FormatError(f"a tensor's metadata must be a dict, got {metadata!r}")
    for key, value in metadata.items():
        if not value:
            continue
        if key == "neg":
            array = np.asarray(-array)
        elif key == "conj":
            array = np.asarray(np.conj(array))
        else:
            raise _FormatError(f"unsupported tensor metadata {key!r}={value!r}")
    return array


def _rebuild_tensor(storage, storage_offset, size, stride):
    element = storage.element if isinstance(storage, _Storage) else None
    return _Tensor(_tensor_from_storage(storage, element, storage_offset, size, stride))


def _rebuild_tensor_v2(
    storage,
    storage_offset,
    size,
    stride,
    requires_grad=False,
    backward_hooks=None,
    metadata=None,
):
    tensor = _rebuild_tensor(storage, storage_offset, size, stride)
    return _Tensor(_apply_metadata(tensor.array, metadata))


def _rebuild_tensor_v3(
    storage,
    storage_offset,
    size,
    stride,
    requires_grad,
    backward_hooks,
    dtype,
    metadata=None,
):
    # Written for dtypes without a typed storage class (e.g. uint16): the
    # storage is untyped bytes and `dtype` says how to read them.
    if not isinstance(dtype, _Element):
        raise _FormatError(f"a tensor's dtype must be a torch dtype, got {dtype!r}")
    array = _tensor_from_storage(storage, dtype, storage_offset, size, stride)
    return _Tensor(_apply_metadata(array, metadata))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, _Tensor):
        raise _FormatError(f"a parameter must wrap a tensor, got {data!r}")
    return data


# torch's storage classes as torch 2.x still writes them for the classic dtypes.
_STORAGE_CLASSES = {
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "DoubleStorage": "float64",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}

_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{
        ("torch._utils", name): _Rebuild(f"torch._utils.{name}", function)
        for name, function in [
            ("_rebuild_tensor", _rebuild_tensor),
            ("_rebuild_tensor_v2", _rebuild_tensor_v2),
            ("_rebuild_tensor_v3", _rebuild_tensor_v3),
            ("_rebuild_parameter", _rebuild_parameter),
            ("_rebuild_parameter_with_state", _rebuild_parameter),
        ]
    },
    **{
        ("torch", cls): _StorageType(f"torch.{cls}", _ELEMENTS[dtype])
        for cls, dtype in _STORAGE_CLASSES.items()
    },
    # Untyped storages hold bytes; `_rebuild_tensor_v3` names their dtype.
    ("torch.storage", "UntypedStorage"): _StorageType(
        "torch.storage.UntypedStorage", _ELEMENTS["uint8"]
    ),
    ("torch", "UntypedStorage"): _StorageType(
        "torch.UntypedStorage", _ELEMENTS["uint8"]
    ),
    # dtype objects pickle as the global `torch.<name>`.
    **{("torch", name): element for name, element in _ELEMENTS.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only resolves the globals a state dict needs."""

    def __init__(self, file, path, archive, prefix, byteorder):
        super().__init__(file)
        self._path = path
        self._archive = archive
        self._prefix = prefix
        self._byteorder = byteorder
        self._storages = {}

    def find_class(self, module, name):
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise _CompleteError(
                f"{self._path}: load_state_dict refuses the global "
                f"'{module}.{name}' referenced by data.pkl; a state dict only "
                "needs tensors, storages and OrderedDict, and nothing in the file "
                "was run. Received: path="
                f"{self._path}"
            )
        return allowed

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) != 5:
            raise _FormatError(f"unsupported persistent id in data.pkl: {pid!r}")
        typename, storage_type, key, _location, numel = pid
        if isinstance(typename, bytes):
            typename = typename.decode("ascii", "replace")
        if typename != "storage":
            raise _FormatError(f"unsupported persistent id in data.pkl: {pid!r}")
        if not isinstance(storage_type, _StorageType):
            raise _FormatError(f"unsupported storage type {storage_type!r}")
        if not isinstance(key, str) or not _is_int(numel) or numel < 0:
            raise _FormatError(f"malformed storage record {pid!r}")
        storage = self._storages.get(key)
        if storage is None:
            storage = self._read_storage(key, storage_type.element, numel)
            self._storages[key] = storage
        elif storage.element is not storage_type.element:
            raise _FormatError(
                f"storage {key!r} is used as both {storage.element!r} and "
                f"{storage_type.element!r}"
            )
        return storage

    def _read_storage(self, key, element, numel):
        record = f"{self._prefix}data/{key}"
        try:
            data = self._archive.read(record)
        except KeyError:
            raise _FormatError(f"storage record {record!r} is missing") from None
        nbytes = numel * element.itemsize
        if len(data) < nbytes:
            raise _FormatError(
                f"storage record {record!r} holds {len(data)} bytes, but "
                f"{numel} {element.name} elements need {nbytes}"
            )
        return _Storage(key, element, data[:nbytes], self._byteorder)


def _not_a_checkpoint(path, reason):
    return (
        f"{path} is not a PyTorch checkpoint ({reason}; expected the zip format "
        f"written by torch.save). Received: path={path}"
    )


def _is_legacy(path):
    """Whether `path` is a pre-1.6 `torch.save` file (a pickle stream or a tar)."""
    with open(path, "rb") as file:
        head = file.read(64)
    if head.startswith(b"\x80") and _LEGACY_MAGIC in head:
        return True
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _find_data_pkl(path, names):
    """Returns the archive folder prefix (e.g. `'model/'`) holding data.pkl."""
    candidates = [
        name for name in names if name.count("/") == 1 and name.endswith("/data.pkl")
    ]
    if len(candidates) != 1:
        found = "no" if not candidates else f"{len(candidates)}"
        raise _CompleteError(
            _not_a_checkpoint(
                path, f"the zip archive has {found} <folder>/data.pkl records"
            )
        )
    return candidates[0][: -len("data.pkl")]


def _read_byteorder(archive, prefix, names):
    record = f"{prefix}byteorder"
    if record not in names:
        # Written by torch >= 1.13; older files come from little-endian hosts.
        return "little"
    value = archive.read(record).decode("ascii", "replace").strip()
    if value not in ("little", "big"):
        raise _FormatError(f"unknown byte order {value!r} in {record!r}")
    return value


def _tensor_mapping(obj):
    """The mapping's tensors as numpy arrays, or None if it is not name -> tensor."""
    if not isinstance(obj, Mapping):
        return None
    if not all(isinstance(k, str) and isinstance(v, _Tensor) for k, v in obj.items()):
        return None
    return {key: value.array for key, value in obj.items()}


def _describe(obj):
    if not isinstance(obj, Mapping):
        return f"an object of type {type(obj).__name__}"
    for key, value in obj.items():
        if not isinstance(key, str):
            return f"a mapping with the non-string key {key!r}"
        if not isinstance(value, _Tensor):
            return (
                f"a mapping whose entry {key!r} is of type "
                f"{type(value).__name__}, not a tensor"
            )
    return "a mapping"


def _as_state_dict(path, obj):
    state_dict = _tensor_mapping(obj)
    if state_dict is not None:
        return state_dict
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            state_dict = _tensor_mapping(obj.get(key))
            if state_dict is not None:
                return state_dict
    raise UserError(
        f"{path} does not hold a state dict: expected a mapping of parameter "
        "names to tensors, either at the top level or under one of the keys "
        f"{list(_WRAPPER_KEYS)}. Received: {_describe(obj)}"
    )


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Reads a PyTorch state dict saved with `torch.save` into numpy arrays.

    Neither torch nor any code from the file is run: `data.pkl` is unpickled
    with an allow-list of globals (OrderedDict, tensor rebuilds, storage
    classes, dtypes), and the tensors are rebuilt in numpy from the storage
    bytes, honoring offsets and strides (so views, transposed tensors and
    tensors that share a storage come out right) and the recorded byte order.

    The arrays keep their torch dtype, except bfloat16 which becomes float32
    (exactly). A checkpoint that wraps the state dict under `"state_dict"` or
    `"model"` is unwrapped. Names are returned as stored: a `module.` prefix
    (from `DataParallel`) is kept.

    Args:
        path: A `.pth` file written by `torch.save` with PyTorch >= 1.6 (the
            zip format).

    Returns:
        The tensors as `{name: numpy array}`, in the order they were stored.

    Raises:
        ValueError: If the file is missing, is not a zip-format PyTorch
            checkpoint (the legacy format gets instructions to re-save it),
            references a global a state dict does not need (e.g.
            `os.system`), or does not hold a mapping of names to tensors.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(_not_a_checkpoint(path, "no such file"))
    if not zipfile.is_zipfile(path):
        if _is_legacy(path):
            raise UserError(
                f"{path} is in the legacy PyTorch format (torch.save before "
                "PyTorch 1.6, or with _use_new_zipfile_serialization=False), "
                "which load_state_dict does not read. Re-save it in the zip "
                "format with a recent torch: torch.save(torch.load(path), "
                f"path_new). Received: path={path}"
            )
        raise UserError(_not_a_checkpoint(path, "not a zip archive"))
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            prefix = _find_data_pkl(path, names)
            byteorder = _read_byteorder(archive, prefix, names)
            with archive.open(f"{prefix}data.pkl") as file:
                unpickler = _RestrictedUnpickler(file, path, archive, prefix, byteorder)
                obj = unpickler.load()
    except _CompleteError as error:
        raise UserError(str(error)) from None
    except _FormatError as error:
        raise UserError(f"{path}: {error}. Received: path={path}") from None
    except Exception as error:  # A damaged archive or pickle: report, don't crash.
        raise UserError(
            f"{path}: data.pkl could not be read as a state dict "
            f"({type(error).__name__}: {error}). Received: path={path}"
        ) from error
    return _as_state_dict(path, obj)


def strip_module_prefix(state_dict: Mapping[str, np.ndarray]) -> dict:
    """Drops the `module.` prefix DataParallel adds to every key.

    Args:
        state_dict: tensor name -> array.

    Returns:
        The state dict with unprefixed names (unchanged when no key has it).
    """
    if state_dict and all(key.startswith(_MODULE_PREFIX) for key in state_dict):
        return {key[len(_MODULE_PREFIX) :]: value for key, value in state_dict.items()}
    return dict(state_dict)
