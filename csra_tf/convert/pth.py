"""Read PyTorch `.pth` state dicts into numpy, without torch and without pickle code.

`torch.save` (PyTorch >= 1.6) writes a zip archive with one top-level folder
(its name varies) holding, each as a stored (uncompressed) record:

- `data.pkl`: a pickle of the saved object, in which every tensor is a call
  `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and
  every storage is a persistent id `('storage', <storage type>, key, location,
  numel)`;
- `data/<key>`: the raw bytes of each storage, `numel` elements;
- `byteorder` (when present): `little` or `big`, the byte order of those bytes.

A pickle can name any importable function and call it, so unpickling an
untrusted file with the standard `pickle.load` runs whatever the file says.
`load_state_dict` instead unpickles with an allow-list: the few globals a state
dict needs are replaced by numpy re-implementations, and any other global is
refused before anything in the file runs.

An untrusted file also must not be able to make the reader allocate much more
memory than the tensors it really holds. The reader therefore:

- reads only stored zip records (a deflated record is refused before it is
  inflated), and checks that every record lies inside the file;
- unpickles with the pure-Python unpickler, whose memo is a dict (the C
  unpickler sizes its memo table after the largest index a pickle names);
- checks each storage's declared size against its record, and each tensor's
  offset, shape and strides against its storage, before reading any storage;
- copies a tensor out of its storage only while the copies add up to no more
  than the bytes of those storages (plus `_COPY_ALLOWANCE`): views that repeat
  elements (stride 0, or tensors that overlap) cannot multiply memory. Tensors
  that are the same view of the same storage come back as one array.

The legacy format (PyTorch < 1.6, or `_use_new_zipfile_serialization=False`)
is refused with instructions to re-save the file.
"""

import collections
import io
import math
import os
import pickle
import reprlib
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

# Bytes that tensor copies may take beyond the bytes of their storages: room
# for the small broadcast or overlapping views real state dicts may hold.
_COPY_ALLOWANCE = 1 << 20

# numpy's limit on the number of dimensions.
_MAX_DIMS = 64

# A tensor's bytes must stay well inside numpy's index type.
_MAX_BYTES = 1 << 62

# Storage records are read in pieces of this size.
_READ_CHUNK = 1 << 16

# How much of a value from the file an error message quotes.
_QUOTE = reprlib.Repr()
_QUOTE.maxlevel = 3
_QUOTE.maxtuple = _QUOTE.maxlist = _QUOTE.maxdict = 8
_QUOTE.maxstring = _QUOTE.maxother = 80
_QUOTE.maxlong = 40


def _quote(value):
    """A repr of a value from the file, short whatever the file holds."""
    return _QUOTE.repr(value)


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

    def is_native(self, byteorder):
        """Whether the stored bytes already are the numpy array it becomes."""
        return (
            self.name not in ("bfloat16", "bool") and self.raw_dtype(byteorder).isnative
        )

    def decode(self, raw):
        """Copies (possibly strided) stored values into a new native C array."""
        if self.name == "bfloat16":
            # bfloat16 is the upper half of a float32.
            widened = raw.astype(np.uint32, order="C")
            widened <<= np.uint32(16)
            return widened.view(np.float32)
        if self.name == "bool":
            return np.not_equal(raw, 0, order="C")
        return raw.astype(np.dtype(self.raw_code), order="C")

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
    """One `data/<key>` record: checked when named, read only when needed."""

    __slots__ = ("key", "element", "numel", "record", "byteorder")

    def __init__(self, key, element, numel, record, byteorder):
        self.key = key
        self.element = element
        self.numel = numel
        self.record = record
        self.byteorder = byteorder

    @property
    def nbytes(self):
        return self.numel * self.element.itemsize

    def __repr__(self):
        return f"storage {_quote(self.key)}"


class _Tensor(_Sealed):
    """A checked view `(offset, size, stride)` of a storage, not yet read."""

    __slots__ = ("storage", "element", "offset", "size", "stride", "flags")

    def __init__(self, storage, element, offset, size, stride, flags=()):
        self.storage = storage
        self.element = element
        self.offset = offset
        self.size = size
        self.stride = stride
        self.flags = flags

    @property
    def numel(self):
        return math.prod(self.size)

    @property
    def view_key(self):
        """Equal for two tensors that are the same view of the same bytes."""
        return (
            self.storage.key,
            self.element.name,
            self.offset,
            self.size,
            self.stride,
            self.flags,
        )

    def extent(self):
        """The first and last storage element the view reads (inclusive)."""
        last = self.offset + sum(
            (n - 1) * s for n, s in zip(self.size, self.stride, strict=True)
        )
        return self.offset, last

    def repeats_elements(self):
        """Whether two indices of the view may read the same storage element.

        Sorted by stride, each stride must step over everything the smaller
        ones span; otherwise (a stride of 0, say) the view is treated as one
        that repeats elements.
        """
        span = 0
        for stride, n in sorted(
            (s, n) for n, s in zip(self.size, self.stride, strict=True)
        ):
            if n == 1:
                continue
            if stride <= span:
                return True
            span += (n - 1) * stride
        return False

    def is_whole_storage(self):
        """Whether the view is its storage, in order, as one C-contiguous array."""
        if self.offset != 0 or self.numel * self.element.itemsize != (
            self.storage.nbytes
        ):
            return False
        expected = 1
        for n, s in reversed(list(zip(self.size, self.stride, strict=True))):
            if n != 1 and s != expected:
                return False
            expected *= n
        return True

    def __repr__(self):
        return f"tensor of shape {_quote(self.size)}"


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
    if (
        not isinstance(value, tuple | list)
        or len(value) > _MAX_DIMS
        or not all(_is_int(v) for v in value)
    ):
        raise _FormatError(
            f"a tensor's {what} must be a tuple of at most {_MAX_DIMS} ints, "
            f"got {_quote(value)}"
        )
    if any(v < 0 for v in value):
        raise _FormatError(
            f"a tensor's {what} must not be negative, got {_quote(value)}"
        )
    return tuple(value)


def _view(storage, element, offset, size, stride, flags=()):
    """Checks the view `(offset, size, stride)` of a storage; reads nothing."""
    if not isinstance(storage, _Storage):
        raise _FormatError(
            f"a tensor must be built from a storage, got {_quote(storage)}"
        )
    if not _is_int(offset) or offset < 0:
        raise _FormatError(
            f"a tensor's storage offset must be an int >= 0, got {_quote(offset)}"
        )
    size = _int_tuple(size, "size")
    stride = _int_tuple(stride, "stride")
    if len(size) != len(stride):
        raise _FormatError(
            f"a tensor's size {_quote(size)} and stride {_quote(stride)} have "
            "different lengths"
        )
    # Strides of length-1 dimensions are never used; dropping them keeps every
    # byte stride inside numpy's index type.
    stride = tuple(s if n > 1 else 0 for n, s in zip(size, stride, strict=True))
    tensor = _Tensor(storage, element, offset, size, stride, flags)
    nonzero = math.prod(n for n in size if n)
    if nonzero * element.itemsize >= _MAX_BYTES:
        raise _FormatError(
            f"a tensor's size {_quote(size)} overflows: {_quote(nonzero)} "
            f"{element.name} elements"
        )
    if tensor.numel == 0:
        return tensor
    available = storage.nbytes // element.itemsize
    _, last = tensor.extent()
    if last >= available:
        raise _FormatError(
            f"a tensor (offset {_quote(offset)}, size {_quote(size)}, stride "
            f"{_quote(stride)}) reaches element {_quote(last)} of {storage!r}, "
            f"which holds {available} {element.name} elements"
        )
    return tensor


def _flags(metadata):
    """The lazy negation / conjugation bits torch may record, as a tuple."""
    if not metadata:
        return ()
    if not isinstance(metadata, dict):
        raise _FormatError(
            f"a tensor's metadata must be a dict, got {_quote(metadata)}"
        )
    flags = []
    for key, value in metadata.items():
        if not value:
            continue
        if key not in ("neg", "conj"):
            raise _FormatError(
                f"unsupported tensor metadata {_quote(key)}={_quote(value)}"
            )
        flags.append(key)
    return tuple(sorted(flags))


def _storage_element(storage):
    return storage.element if isinstance(storage, _Storage) else None


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _view(storage, _storage_element(storage), storage_offset, size, stride)


def _rebuild_tensor_v2(
    storage,
    storage_offset,
    size,
    stride,
    requires_grad=False,
    backward_hooks=None,
    metadata=None,
):
    element = _storage_element(storage)
    return _view(storage, element, storage_offset, size, stride, _flags(metadata))


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
        raise _FormatError(
            f"a tensor's dtype must be a torch dtype, got {_quote(dtype)}"
        )
    return _view(storage, dtype, storage_offset, size, stride, _flags(metadata))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, _Tensor):
        raise _FormatError(f"a parameter must wrap a tensor, got {_quote(data)}")
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


class _Archive:
    """The zip archive, whose records are checked before they are read."""

    def __init__(self, zip_file, size):
        self.zip = zip_file
        self.size = size

    def member(self, name):
        """The checked ZipInfo of a record, or None when there is none."""
        try:
            info = self.zip.getinfo(name)
        except KeyError:
            return None
        if info.compress_type != zipfile.ZIP_STORED:
            raise _FormatError(
                f"record {_quote(name)} is compressed (zip method "
                f"{info.compress_type}); torch.save stores records uncompressed, "
                "and compressed ones are not inflated"
            )
        if info.flag_bits & 0x1:
            raise _FormatError(f"record {_quote(name)} is encrypted")
        if (
            info.file_size != info.compress_size
            or info.header_offset + info.compress_size > self.size
        ):
            raise _FormatError(
                f"record {_quote(name)} claims {info.file_size} bytes at offset "
                f"{info.header_offset}, which the {self.size}-byte file does "
                "not hold"
            )
        return info

    def read(self, info):
        """The bytes of a checked record, in a writable buffer."""
        buffer = bytearray(info.file_size)
        view = memoryview(buffer)
        position = 0
        with self.zip.open(info) as file:
            while position < len(buffer):
                chunk = file.read(min(_READ_CHUNK, len(buffer) - position))
                if not chunk:
                    raise _FormatError(f"record {_quote(info.filename)} is truncated")
                view[position : position + len(chunk)] = chunk
                position += len(chunk)
        return buffer


class _RestrictedUnpickler(pickle._Unpickler):
    """An unpickler that only resolves the globals a state dict needs.

    It is the standard library's pure-Python unpickler (`pickle._Unpickler`):
    its memo is a dict, where the C one allocates a table as long as the
    largest memo index a pickle names. Protocol 5 buffers, which allocate the
    size a pickle names before reading it, are refused.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def _refuse_buffer(self):
        raise _FormatError(
            "data.pkl uses pickle protocol 5 buffers, which torch.save never writes"
        )

    for _opcode in (pickle.BYTEARRAY8, pickle.NEXT_BUFFER, pickle.READONLY_BUFFER):
        dispatch[_opcode[0]] = _refuse_buffer
    del _opcode

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
            qualname = _QUOTE.repr_str(f"{module}.{name}", 0)
            raise _CompleteError(
                f"{self._path}: load_state_dict refuses the global {qualname} "
                "referenced by data.pkl; a state dict only needs tensors, "
                "storages and OrderedDict, and nothing in the file was run. "
                f"Received: path={self._path}"
            )
        return allowed

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) != 5:
            raise _FormatError(f"unsupported persistent id in data.pkl: {_quote(pid)}")
        typename, storage_type, key, _location, numel = pid
        if isinstance(typename, bytes):
            typename = typename.decode("ascii", "replace")
        if typename != "storage":
            raise _FormatError(f"unsupported persistent id in data.pkl: {_quote(pid)}")
        if not isinstance(storage_type, _StorageType):
            raise _FormatError(f"unsupported storage type {_quote(storage_type)}")
        if not isinstance(key, str) or not _is_int(numel) or numel < 0:
            raise _FormatError(f"malformed storage record {_quote(pid)}")
        storage = self._storages.get(key)
        if storage is None:
            storage = self._check_storage(key, storage_type.element, numel)
            self._storages[key] = storage
        elif storage.element is not storage_type.element or storage.numel != numel:
            raise _FormatError(
                f"{storage!r} is declared both as {storage.numel} "
                f"{storage.element!r} and as {_quote(numel)} "
                f"{storage_type.element!r} elements"
            )
        return storage

    def _check_storage(self, key, element, numel):
        """Checks a storage's record against its declared size; reads nothing."""
        record = f"{self._prefix}data/{key}"
        info = self._archive.member(record)
        if info is None:
            raise _FormatError(f"storage record {_quote(record)} is missing")
        nbytes = numel * element.itemsize
        if info.file_size != nbytes:
            raise _FormatError(
                f"storage record {_quote(record)} holds {info.file_size} bytes, "
                f"but {numel} {element.name} elements need {nbytes}"
            )
        return _Storage(key, element, numel, info, self._byteorder)


def _unique_views(tensors):
    """One tensor per distinct view, and each tensor's representative."""
    views, representative = {}, {}
    for tensor in tensors:
        representative[id(tensor)] = views.setdefault(tensor.view_key, tensor)
    return list(views.values()), representative


def _overlapping(views):
    """The views that repeat elements or share elements with another view."""
    shared = {id(view) for view in views if view.repeats_elements()}
    by_storage = collections.defaultdict(list)
    for view in views:
        if view.numel:
            first, last = view.extent()
            start = first * view.element.itemsize
            end = (last + 1) * view.element.itemsize
            by_storage[view.storage.key].append((start, end, view))
    for spans in by_storage.values():
        spans.sort(key=lambda span: span[:2])
        reach, owner = -1, None
        for start, end, view in spans:
            if start < reach:
                shared.update((id(view), id(owner)))
            if end > reach:
                reach, owner = end, view
    return [view for view in views if id(view) in shared]


def _check_budget(views, archive):
    """Refuses views whose copies would take more than their storages hold."""
    storages = {view.storage.key: view.storage for view in views}
    held = sum(storage.nbytes for storage in storages.values())
    if held > archive.size:
        raise _FormatError(
            f"its storage records claim {held} bytes in all, more than the "
            f"{archive.size} bytes of the file"
        )
    needed = sum(view.numel * view.element.itemsize for view in views)
    if needed <= held + _COPY_ALLOWANCE:
        return
    culprits = _overlapping(views) or views
    worst = max(culprits, key=lambda view: view.numel)
    raise _FormatError(
        f"its tensors would take {needed} bytes, more than the {held} bytes "
        f"of their storages plus {_COPY_ALLOWANCE} bytes the reader allows for "
        "views that repeat storage elements; the largest such view: size "
        f"{_quote(worst.size)}, stride {_quote(worst.stride)} of {worst.storage!r} "
        f"({worst.element.name})"
    )


def _materialize(views, archive):
    """Reads each needed storage once and copies (or hands out) the views."""
    arrays = {}
    by_storage = collections.defaultdict(list)
    for view in views:
        if view.numel == 0:
            raw_dtype = view.element.raw_dtype(view.storage.byteorder)
            arrays[id(view)] = view.element.decode(np.zeros(view.size, raw_dtype))
        else:
            by_storage[view.storage.key].append(view)
    for storage_views in by_storage.values():
        storage = storage_views[0].storage
        buffer = archive.read(storage.record)
        for view in storage_views:
            element, byteorder = view.element, storage.byteorder
            flat = np.frombuffer(
                buffer,
                dtype=element.raw_dtype(byteorder),
                count=storage.nbytes // element.itemsize,
            )
            if (
                len(storage_views) == 1
                and not view.flags
                and element.is_native(byteorder)
                and view.is_whole_storage()
            ):
                # The one tensor of its storage, as stored: no copy needed.
                array = flat.reshape(view.size)
            else:
                strided = as_strided(
                    flat[view.offset :],
                    shape=view.size,
                    strides=tuple(s * element.itemsize for s in view.stride),
                    writeable=False,
                )
                array = element.decode(strided)
            if "neg" in view.flags:
                np.negative(array, out=array)
            if "conj" in view.flags and np.iscomplexobj(array):
                np.conjugate(array, out=array)
            arrays[id(view)] = array
        del buffer
    return arrays


def _not_a_checkpoint(path, reason):
    return (
        f"{path} is not a PyTorch checkpoint ({reason}; expected the zip format "
        f"written by torch.save). Received: path={path}"
    )


def _head(path):
    with open(path, "rb") as file:
        return file.read(512)


def _is_legacy(head):
    """Whether a file's first bytes are those of a pre-1.6 `torch.save` file.

    That is a pickle stream starting with torch's magic number, or (before
    PyTorch 0.4) an uncompressed tar archive.
    """
    pickled = head.startswith(b"\x80") and _LEGACY_MAGIC in head[:64]
    return pickled or head[257:262] == b"ustar"


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


def _read_byteorder(archive, prefix):
    record = f"{prefix}byteorder"
    info = archive.member(record)
    if info is None:
        # Written by torch >= 1.13; older files come from little-endian hosts.
        return "little"
    if info.file_size > 16:
        raise _FormatError(f"record {_quote(record)} holds {info.file_size} bytes")
    value = bytes(archive.read(info)).decode("ascii", "replace").strip()
    if value not in ("little", "big"):
        raise _FormatError(f"unknown byte order {_quote(value)} in {_quote(record)}")
    return value


def _tensor_mapping(obj):
    """The mapping itself if it maps names to tensors, else None."""
    if not isinstance(obj, Mapping):
        return None
    if not all(isinstance(k, str) and isinstance(v, _Tensor) for k, v in obj.items()):
        return None
    return obj


def _describe(obj):
    if not isinstance(obj, Mapping):
        return f"an object of type {type(obj).__name__}"
    for key, value in obj.items():
        if not isinstance(key, str):
            return f"a mapping with the non-string key {_quote(key)}"
        if not isinstance(value, _Tensor):
            return (
                f"a mapping of {len(obj)} entries whose entry {_quote(key)} is of "
                f"type {type(value).__name__}, not a tensor"
            )
    return "a mapping"


def _find_state_dict(path, obj):
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


def _open_checkpoint(path):
    """Checks that `path` is a readable zip archive; returns its size."""
    if os.path.isdir(path):
        raise UserError(_not_a_checkpoint(path, "it is a directory"))
    if not os.path.exists(path):
        raise UserError(_not_a_checkpoint(path, "no such file"))
    try:
        head = _head(path)
        size = os.path.getsize(path)
        is_zip = zipfile.is_zipfile(path)
    except OSError as error:
        reason = f"it could not be read: {error.strerror or error}"
        raise UserError(_not_a_checkpoint(path, reason)) from None
    if is_zip:
        return size
    if _is_legacy(head):
        raise UserError(
            f"{path} is in the legacy PyTorch format (torch.save before "
            "PyTorch 1.6, or with _use_new_zipfile_serialization=False), "
            "which load_state_dict does not read. Re-save it in the zip "
            "format with a recent torch: torch.save(torch.load(path), "
            f"path_new). Received: path={path}"
        )
    if not head:
        reason = "the file is empty"
    elif head.startswith(b"PK\x03\x04"):
        reason = "it looks truncated: a zip archive without its central directory"
    else:
        reason = "not a zip archive"
    raise UserError(_not_a_checkpoint(path, reason))


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Reads a PyTorch state dict saved with `torch.save` into numpy arrays.

    Neither torch nor any code from the file is run: `data.pkl` is unpickled
    with an allow-list of globals (OrderedDict, tensor rebuilds, storage
    classes, dtypes), and the tensors are rebuilt in numpy from the storage
    bytes, honoring offsets and strides (so views, transposed tensors and
    tensors that share a storage come out right) and the recorded byte order.

    Memory stays close to the bytes of the storages the state dict uses:
    compressed records are refused, every size the file declares is checked
    against the file before anything is read, and views that repeat storage
    elements (stride 0, overlapping tensors) are refused once their copies
    would take more than those storages hold plus 1 MiB. Other tensors of a
    wrapping checkpoint (e.g. optimizer state) are never read.

    The arrays keep their torch dtype, except bfloat16 which becomes float32
    (exactly). Each is a C-contiguous, writable array of its own, except that
    tensors which are the same view of the same storage (tied weights) come
    back as one array. A checkpoint that wraps the state dict under
    `"state_dict"` or `"model"` is unwrapped. Names are returned as stored: a
    `module.` prefix (from `DataParallel`) is kept.

    Args:
        path: A `.pth` file written by `torch.save` with PyTorch >= 1.6 (the
            zip format).

    Returns:
        The tensors as `{name: numpy array}`, in the order they were stored.

    Raises:
        ValueError: (a `csra_tf.errors.UserError`, one line naming the file) If
            the file is missing or unreadable, is not a zip-format PyTorch
            checkpoint (the legacy format gets instructions to re-save it), has
            compressed or inconsistent records, references a global a state
            dict does not need (e.g. `os.system`), declares tensors its bytes
            do not hold, or does not hold a mapping of names to tensors.
    """
    path = os.fspath(path)
    size = _open_checkpoint(path)
    try:
        with zipfile.ZipFile(path) as zip_file:
            archive = _Archive(zip_file, size)
            prefix = _find_data_pkl(path, set(zip_file.namelist()))
            byteorder = _read_byteorder(archive, prefix)
            info = archive.member(f"{prefix}data.pkl")
            data_pkl = io.BytesIO(archive.read(info))
            unpickler = _RestrictedUnpickler(data_pkl, path, archive, prefix, byteorder)
            obj = unpickler.load()
            state_dict = _find_state_dict(path, obj)
            views, representative = _unique_views(state_dict.values())
            _check_budget(views, archive)
            arrays = _materialize(views, archive)
    except _CompleteError as error:
        raise UserError(str(error)) from None
    except _FormatError as error:
        raise UserError(f"{path}: {error}. Received: path={path}") from None
    except UserError:
        raise
    except Exception as error:  # A damaged archive or pickle.
        detail = _quote(str(error))
        raise UserError(
            f"{path}: the file could not be read as a state dict "
            f"({type(error).__name__}: {detail}). Received: path={path}"
        ) from None
    return {
        key: arrays[id(representative[id(tensor)])]
        for key, tensor in state_dict.items()
    }


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
