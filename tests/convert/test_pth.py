"""Tests for csra_tf.convert.pth: reading `.pth` state dicts without torch.

The committed fixtures come from fixtures/make_pth_fixtures.py (which needs
torch); every other file here is built with zipfile and hand-written pickle
opcodes (fixtures/make_hostile_pth.py), so these tests never import torch.
Hostile files claim gigabytes they do not hold; the reader must refuse them
(or read them, when they are legitimate) within a small margin of memory over
its baseline, measured with tracemalloc.
"""

import builtins
import os
import pickle
import re
import subprocess
import tracemalloc
import zipfile

import numpy as np
import pytest

from csra_tf.convert import load_state_dict
from tests.convert.fixtures import make_hostile_pth as hostile

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
MiB = 1 << 20

# Memory the reader may use beyond its baseline (reading a tiny checkpoint)
# plus the bytes a file's tensors really hold.
MARGIN = MiB


def _fixture(name):
    return os.path.join(FIXTURES, name)


_str = hostile.pickle_str
_global = hostile.pickle_global
_tensor = hostile.tensor_opcodes
_dict_pickle = hostile.dict_pickle
_write_pth = hostile.write_pth


class _RunsShell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Evaluates:
    def __init__(self, source):
        self.source = source

    def __reduce__(self):
        return (builtins.eval, (self.source,))


class _StartsProcess:
    def __init__(self, argv):
        self.argv = argv

    def __reduce__(self):
        return (subprocess.Popen, (self.argv,))


# --- fixtures written by torch -------------------------------------------------


def test_values_dtypes_and_order_match_torch():
    state_dict = load_state_dict(_fixture("pth_tensors.pth"))
    with np.load(_fixture("pth_expected.npz")) as expected:
        assert list(state_dict) == list(expected.files)
        for name in expected.files:
            array = state_dict[name]
            assert isinstance(array, np.ndarray), name
            assert array.dtype == expected[name].dtype, name
            assert array.dtype.isnative, name
            assert array.shape == expected[name].shape, name
            np.testing.assert_array_equal(array, expected[name], err_msg=name)


def test_special_tensors_come_out_right():
    state_dict = load_state_dict(_fixture("pth_tensors.pth"))
    assert state_dict["norm.bfloat16"].dtype == np.float32
    assert state_dict["bn.num_batches_tracked"].dtype == np.int64
    assert state_dict["bn.num_batches_tracked"].shape == ()
    assert state_dict["bn.num_batches_tracked"] == 7
    assert state_dict["mask"].dtype == np.bool_
    assert state_dict["ints.uint16"].tolist() == [1, 65535]
    assert state_dict["empty"].shape == (0, 3)
    assert state_dict["negated"].tolist() == [-1.0, 2.0]
    np.testing.assert_array_equal(state_dict["shared.a"], [2, 3, 4, 5])
    np.testing.assert_array_equal(state_dict["shared.b"], [[4, 5, 6], [7, 8, 9]])
    np.testing.assert_array_equal(state_dict["expanded"], [[0, 1, 2], [0, 1, 2]])
    # Results are independent, writable copies, not views of one buffer.
    state_dict["shared.a"][2] = -1.0
    assert state_dict["shared.b"][0, 0] == 4.0
    assert state_dict["transposed"].flags.writeable


def test_big_endian_storages_are_byte_swapped():
    state_dict = load_state_dict(_fixture("pth_bigendian.pth"))
    with np.load(_fixture("pth_bigendian_expected.npz")) as expected:
        assert list(state_dict) == list(expected.files)
        for name in expected.files:
            assert state_dict[name].dtype == expected[name].dtype, name
            assert state_dict[name].dtype.isnative, name
            np.testing.assert_array_equal(state_dict[name], expected[name], name)


@pytest.mark.parametrize("name", ["pth_nested.pth", "pth_model_key.pth"])
def test_checkpoint_wrapping_the_state_dict_is_unwrapped(name):
    state_dict = load_state_dict(_fixture(name))
    with np.load(_fixture("pth_nested_expected.npz")) as expected:
        assert list(state_dict) == list(expected.files)
        assert "1.num_batches_tracked" in state_dict
        for key in expected.files:
            assert state_dict[key].dtype == expected[key].dtype, key
            np.testing.assert_array_equal(state_dict[key], expected[key], key)


def test_legacy_format_is_refused_with_a_re_save_hint():
    path = _fixture("pth_legacy.pth")
    with pytest.raises(ValueError, match="legacy PyTorch format") as info:
        load_state_dict(path)
    message = str(info.value)
    assert path in message
    assert "torch.save(torch.load(path), path_new)" in message
    assert "\n" not in message


# --- files that are not checkpoints ---------------------------------------------


def test_non_zip_file_is_refused(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="is not a PyTorch checkpoint") as info:
        load_state_dict(str(path))
    assert f"Received: path={path}" in str(info.value)
    assert "zip format written by torch.save" in str(info.value)


def test_plain_pickle_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps(_RunsShell(f"touch {tmp_path / 'pwned'}")))
    with pytest.raises(ValueError, match="is not a PyTorch checkpoint"):
        load_state_dict(str(path))
    assert not (tmp_path / "pwned").exists()


def test_missing_file_and_directory_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no such file") as info:
        load_state_dict(str(tmp_path / "missing.pth"))
    assert "missing.pth" in str(info.value)
    with pytest.raises(ValueError, match="is not a PyTorch checkpoint"):
        load_state_dict(str(tmp_path))


def test_zip_without_data_pkl_is_refused(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("folder/readme.txt", "hello")
    with pytest.raises(ValueError, match="no <folder>/data.pkl") as info:
        load_state_dict(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "obj, received",
    [
        ([1, 2], "an object of type list"),
        ({"epoch": 3}, "entry 'epoch' is of type int, not a tensor"),
        ({"state_dict": {"epoch": 3}}, "entry 'state_dict' is of type dict"),
    ],
)
def test_object_that_is_not_a_state_dict_is_refused(tmp_path, obj, received):
    path = _write_pth(tmp_path / "x.pth", pickle.dumps(obj, protocol=2))
    with pytest.raises(ValueError, match="does not hold a state dict") as info:
        load_state_dict(path)
    assert received in str(info.value)


# --- malicious pickles -----------------------------------------------------------


def test_payload_really_runs_under_plain_pickle(tmp_path):
    # Control for the tests below: the same payload does run with pickle.loads.
    marker = tmp_path / "control"
    pickle.loads(pickle.dumps(_RunsShell(f"touch {marker}"), protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("nested", [False, True])
def test_os_system_is_refused_and_not_run(tmp_path, nested):
    pwned = tmp_path / "pwned"
    payload = _RunsShell(f"touch {pwned}")
    obj = {"fc.weight": payload} if nested else payload
    path = _write_pth(tmp_path / "evil.pth", pickle.dumps(obj, protocol=2))
    qualname = f"{os.system.__module__}.system"  # posix.system on Linux
    with pytest.raises(ValueError, match=re.escape(f"refuses the global '{qualname}'")):
        load_state_dict(path)
    assert not pwned.exists()


def test_eval_is_refused_and_not_run(tmp_path):
    pwned = tmp_path / "pwned"
    source = f"__import__('os').system('touch {pwned}')"
    path = _write_pth(tmp_path / "evil.pth", pickle.dumps(_Evaluates(source)))
    with pytest.raises(ValueError, match="refuses the global 'builtins.eval'"):
        load_state_dict(path)
    assert not pwned.exists()


def test_subprocess_is_refused_and_not_run(tmp_path):
    pwned = tmp_path / "pwned"
    payload = pickle.dumps(_StartsProcess(["touch", str(pwned)]), protocol=4)
    path = _write_pth(tmp_path / "evil.pth", payload)
    with pytest.raises(ValueError, match="refuses the global 'subprocess.Popen'"):
        load_state_dict(path)
    assert not pwned.exists()


def test_unknown_torch_global_is_refused(tmp_path):
    data_pkl = b"\x80\x02" + _global("torch.nn", "Module") + b")\x81."  # NEWOBJ
    path = _write_pth(tmp_path / "module.pth", data_pkl)
    with pytest.raises(ValueError, match="refuses the global 'torch.nn.Module'"):
        load_state_dict(path)


def test_allowed_globals_cannot_be_modified_by_build(tmp_path):
    # GLOBAL torch.FloatStorage; {"element": 1}; BUILD would overwrite a shared
    # module-level object if the loader let it.
    data_pkl = (
        b"\x80\x02"
        + _global("torch", "FloatStorage")
        + b"}"
        + _str("element")
        + b"K\x01sb."
    )
    path = _write_pth(tmp_path / "build.pth", data_pkl)
    with pytest.raises(ValueError, match="set the state"):
        load_state_dict(path)
    # The loader still works afterwards.
    assert load_state_dict(_fixture("pth_tensors.pth"))["scalar"] == 2.5


# --- hand-written storages -------------------------------------------------------


def test_hand_written_checkpoint_keeps_names_and_reads_strides(tmp_path):
    storage = np.arange(8, dtype="<f4").tobytes()
    data_pkl = _dict_pickle(
        [
            ("module.fc.weight", _tensor("0", 8, 1, (2, 3), (1, 2))),
            ("module.fc.bias", _tensor("0", 8, 6, (2,), (1,))),
        ]
    )
    path = _write_pth(
        tmp_path / "x.pth", data_pkl, {"0": storage}, folder="my model", byteorder=None
    )
    state_dict = load_state_dict(path)
    assert list(state_dict) == ["module.fc.weight", "module.fc.bias"]
    np.testing.assert_array_equal(
        state_dict["module.fc.weight"], [[1, 3, 5], [2, 4, 6]]
    )
    np.testing.assert_array_equal(state_dict["module.fc.bias"], [6, 7])


def test_big_endian_hand_written_storage(tmp_path):
    storage = np.array([1.5, -2.0], dtype=">f4").tobytes()
    data_pkl = _dict_pickle([("w", _tensor("0", 2, 0, (2,), (1,)))])
    path = _write_pth(tmp_path / "x.pth", data_pkl, {"0": storage}, byteorder=b"big")
    np.testing.assert_array_equal(load_state_dict(path)["w"], [1.5, -2.0])


@pytest.mark.parametrize(
    "size, stride, numel, match",
    [
        ((3, 3), (3, 1), 4, "holds 4 float32 elements"),  # view past the end
        ((4,), (1,), 99, "need 396"),  # record shorter than numel says
    ],
)
def test_out_of_bounds_tensor_is_refused(tmp_path, size, stride, numel, match):
    storage = np.zeros(4, dtype="<f4").tobytes()
    data_pkl = _dict_pickle([("w", _tensor("0", numel, 0, size, stride))])
    path = _write_pth(tmp_path / "x.pth", data_pkl, {"0": storage})
    with pytest.raises(ValueError, match=match) as info:
        load_state_dict(path)
    assert str(tmp_path / "x.pth") in str(info.value)


def test_missing_storage_record_is_refused(tmp_path):
    data_pkl = _dict_pickle([("w", _tensor("7", 2, 0, (2,), (1,)))])
    path = _write_pth(tmp_path / "x.pth", data_pkl)
    with pytest.raises(ValueError, match="'archive/data/7' is missing"):
        load_state_dict(path)


def test_damaged_pickle_is_reported_as_value_error(tmp_path):
    path = _write_pth(tmp_path / "x.pth", b"\x80\x02}(X\x05\x00")
    with pytest.raises(ValueError, match="could not be read as a state dict") as info:
        load_state_dict(path)
    assert "\n" not in str(info.value)


# --- hostile files: memory stays within a margin of what the file holds ---------


def _peak(function, *args):
    """Runs `function(*args)`; returns (its result or ValueError, peak bytes)."""
    tracemalloc.start()
    try:
        try:
            result = function(*args)
        except ValueError as error:
            result = error
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """Peak memory of reading a tiny legitimate checkpoint."""
    path = hostile.small_checkpoint(tmp_path_factory.mktemp("small") / "small.pth")
    state_dict, peak = _peak(load_state_dict, path)
    np.testing.assert_array_equal(state_dict["fc.weight"], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(state_dict["fc.bias"], [0.5, -0.5])
    return peak


def _assert_refused_cheaply(path, baseline, *fragments):
    error, peak = _peak(load_state_dict, path)
    assert isinstance(error, ValueError), f"{path} was read: {error!r}"
    message = str(error)
    assert str(path) in message
    assert "\n" not in message and len(message) < 600, message
    for fragment in fragments:
        assert fragment in message, message
    assert peak < baseline + MARGIN, f"peak {peak} bytes for {path}"
    return message


def test_stride0_view_is_refused_before_copying(tmp_path, baseline):
    # One stored float32 viewed 2**30 times: a 4 GiB copy.
    path = hostile.stride0_view(tmp_path / "stride0.pth", numel=2**30)
    assert os.path.getsize(path) < 2048
    _assert_refused_cheaply(
        path, baseline, "would take 4294967296 bytes", "stride (0,)"
    )


def test_small_broadcast_views_within_the_allowance_are_copied(tmp_path):
    path = hostile.stride0_view(tmp_path / "broadcast.pth", numel=1000)
    weight = load_state_dict(path)["fc.weight"]
    assert weight.shape == (1000,) and weight.strides == (4,)
    np.testing.assert_array_equal(weight, np.ones(1000, np.float32))
    weight[0] = 5.0  # a writable copy of its own
    assert weight[1] == 1.0


def test_deflate_bomb_is_refused_before_inflating(tmp_path, baseline):
    path = hostile.deflate_bomb(tmp_path / "bomb.pth", nbytes=2**30)
    assert os.path.getsize(path) < 2 * MiB
    with zipfile.ZipFile(path) as archive:  # a real bomb: it does inflate
        info = archive.getinfo("archive/data/0")
        assert info.file_size == 2**30
        with archive.open(info) as member:
            assert member.read(MiB) == bytes(MiB)
    _assert_refused_cheaply(
        path, baseline, "'archive/data/0' is compressed", "not inflated"
    )


def test_deflated_data_pkl_is_refused(tmp_path, baseline):
    path = hostile.deflated_data_pkl(tmp_path / "deflated.pth")
    _assert_refused_cheaply(path, baseline, "'archive/data.pkl' is compressed")


def test_hundreds_of_disjoint_views_of_one_storage_are_read(tmp_path, baseline):
    count, length = 512, 512
    path = hostile.disjoint_views(tmp_path / "disjoint.pth", count, length)
    state_dict, peak = _peak(load_state_dict, path)
    assert list(state_dict) == [f"w.{i}" for i in range(count)]
    expected = np.arange(count * length, dtype=np.float32).reshape(count, length)
    for i in range(count):
        np.testing.assert_array_equal(state_dict[f"w.{i}"], expected[i])
    state_dict["w.0"][:] = -1.0  # independent copies
    np.testing.assert_array_equal(state_dict["w.1"], expected[1])
    # The storage record (1 MiB) and one copy of it.
    assert peak < baseline + 2 * expected.nbytes + MARGIN, peak


def test_identical_views_of_one_storage_are_one_array(tmp_path, baseline):
    count, numel = 512, 256 * 1024
    path = hostile.identical_views(tmp_path / "tied.pth", count, numel)
    state_dict, peak = _peak(load_state_dict, path)
    assert len(state_dict) == count
    first = state_dict["w.0"]
    assert first.shape == (numel,) and not first.any()
    assert all(state_dict[f"w.{i}"] is first for i in range(count))
    # The storage record is handed out as the array: no copy at all.
    assert peak < baseline + 4 * numel + MARGIN, peak


def test_hundreds_of_overlapping_views_are_refused(tmp_path, baseline):
    # 512 views of a 1 MiB storage, each shifted by one element: 511 MiB.
    path = hostile.overlapping_views(tmp_path / "overlap.pth", 512, 256 * 1024)
    _assert_refused_cheaply(
        path,
        baseline,
        f"would take {512 * (256 * 1024 - 512) * 4} bytes",
        "more than the 1048576 bytes of their storages",
        "size (261632,)",
    )


def test_storage_declared_beyond_its_record_is_refused(tmp_path, baseline):
    path = hostile.declared_beyond_record(tmp_path / "declared.pth", numel=2**30)
    _assert_refused_cheaply(
        path,
        baseline,
        "'archive/data/0' holds 16 bytes",
        "1073741824 float32 elements need 4294967296",
    )


@pytest.mark.parametrize(
    "size, stride, offset, fragment",
    [
        ((-1,), (1,), 0, "size must not be negative"),
        ((2,), (-1,), 0, "stride must not be negative"),
        ((2,), (1,), -1, "offset must be an int >= 0"),
        ((2**40, 2**40), (0, 0), 0, "overflows"),
        ((0, 2**62), (1, 1), 0, "overflows"),
        ((2,), (2**63,), 0, "reaches element 9223372036854775808"),
        ((2, 2), (1, 2**70), 0, "reaches element"),
        ((1,), (1,), 2**70, "reaches element 1180591620717411303424"),
        ((1,) * 65, (1,) * 65, 0, "at most 64 ints"),
        ((2,), (1, 1), 0, "different lengths"),
    ],
)
def test_negative_or_overflowing_geometry_is_refused(
    tmp_path, baseline, size, stride, offset, fragment
):
    path = hostile.shaped(tmp_path / "shape.pth", size, stride, offset)
    _assert_refused_cheaply(path, baseline, fragment)


def test_unused_strides_of_length_one_dimensions_are_ignored(tmp_path):
    path = hostile.shaped(tmp_path / "shape.pth", (1, 4), (2**63, 1))
    np.testing.assert_array_equal(load_state_dict(path)["fc.weight"], [[1, 2, 3, 4]])


def test_memo_index_does_not_size_a_table(tmp_path, baseline):
    # The C unpickler would allocate 32 GiB for this memo index.
    path = hostile.memo_bomb(tmp_path / "memo.pth")
    state_dict, peak = _peak(load_state_dict, path)
    np.testing.assert_array_equal(state_dict["fc.weight"], [1.0, 2.0])
    assert peak < baseline + MARGIN, peak


def test_pickle_buffers_are_refused_before_allocating(tmp_path, baseline):
    path = hostile.bytearray_bomb(tmp_path / "bytearray.pth")
    _assert_refused_cheaply(path, baseline, "protocol 5 buffers")


def test_tensors_outside_the_state_dict_are_not_read(tmp_path, baseline):
    numel = 2 * MiB  # 8 MiB of optimizer state
    state_dict = b"}(" + _str("w") + _tensor("0", 2, 0, (2,), (1,)) + b"u"
    optimizer = _tensor("1", numel, 0, (numel,), (1,))
    data_pkl = _dict_pickle([("state_dict", state_dict), ("optimizer", optimizer)])
    storages = {"0": hostile.float32_bytes([1.0, 2.0]), "1": bytes(4 * numel)}
    path = _write_pth(tmp_path / "wrapped.pth", data_pkl, storages)
    state_dict, peak = _peak(load_state_dict, path)
    assert list(state_dict) == ["w"]
    np.testing.assert_array_equal(state_dict["w"], [1.0, 2.0])
    assert peak < baseline + MARGIN, peak


# --- unreadable files: one line naming the file ----------------------------------


@pytest.mark.parametrize(
    "builder, fragment",
    [
        (hostile.truncated, "it looks truncated"),
        (hostile.random_bytes, "not a zip archive"),
        (hostile.empty, "the file is empty"),
    ],
)
def test_unreadable_file_is_one_line(tmp_path, baseline, builder, fragment):
    path = builder(tmp_path / "weights.pth")
    message = _assert_refused_cheaply(path, baseline, fragment)
    assert "expected the zip format written by torch.save" in message


def test_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="it is a directory") as info:
        load_state_dict(tmp_path)
    assert f"Received: path={tmp_path}" in str(info.value)


def test_record_past_the_end_of_the_file_is_refused(tmp_path, baseline):
    path = hostile.small_checkpoint(tmp_path / "cut.pth")
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("archive/data/0")
    # Cut the file inside the first storage's bytes, keep the directory.
    with open(path, "rb") as file:
        data = file.read()
    start = info.header_offset + 30 + len(info.filename)
    directory = data.index(b"PK\x01\x02")
    with open(path, "wb") as file:
        file.write(data[: start + 8] + data[directory:])
    _assert_refused_cheaply(path, baseline, str(path))


# --- error messages stay short ------------------------------------------------------


def test_long_names_from_the_file_are_shortened(tmp_path):
    long_name = "x" * 100_000
    data_pkl = b"\x80\x02" + _global("os", long_name) + b")R."
    path = _write_pth(tmp_path / "global.pth", data_pkl)
    with pytest.raises(ValueError, match="refuses the global 'os.xxx") as info:
        load_state_dict(path)
    assert len(str(info.value).replace(str(path), "")) < 400  # the path aside

    entries = [(long_name, b"K\x01")] + [(f"k{i}", b"K\x01") for i in range(999)]
    path = _write_pth(tmp_path / "keys.pth", _dict_pickle(entries))
    with pytest.raises(ValueError, match="does not hold a state dict") as info:
        load_state_dict(path)
    assert "a mapping of 1000 entries" in str(info.value)
    assert len(str(info.value).replace(str(path), "")) < 400  # the path aside

    storage = hostile.storage_opcodes(long_name, 1)
    path = _write_pth(tmp_path / "storage.pth", b"\x80\x02" + storage + b".")
    with pytest.raises(ValueError, match="is missing") as info:
        load_state_dict(path)
    assert len(str(info.value).replace(str(path), "")) < 400  # the path aside
