"""Tests for csra_tf.convert.pth: reading `.pth` state dicts without torch.

The committed fixtures come from fixtures/make_pth_fixtures.py (which needs
torch); every other file here is built with zipfile and hand-written pickle
opcodes, so these tests never import torch.
"""

import builtins
import os
import pickle
import re
import struct
import subprocess
import zipfile

import numpy as np
import pytest

from csra_tf.convert import load_state_dict

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def _fixture(name):
    return os.path.join(FIXTURES, name)


# --- hand-written zip-format checkpoints --------------------------------------


def _str(text):
    data = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value):
    return b"J" + struct.pack("<i", value)


def _tuple(values):
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def _global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _tensor(key, numel, offset, size, stride, storage_class="FloatStorage"):
    """Opcodes torch writes for one tensor: `_rebuild_tensor_v2(...)`."""
    storage = (
        b"("
        + _str("storage")
        + _global("torch", storage_class)
        + _str(key)
        + _str("cpu")
        + _int(numel)
        + b"tQ"  # TUPLE, BINPERSID
    )
    hooks = _global("collections", "OrderedDict") + b")R"
    return (
        _global("torch._utils", "_rebuild_tensor_v2")
        + b"("
        + storage
        + _int(offset)
        + _tuple(size)
        + _tuple(stride)
        + b"\x89"  # NEWFALSE: requires_grad
        + hooks
        + b"tR"  # TUPLE, REDUCE
    )


def _dict_pickle(entries):
    """A pickle of `{name: value}` from `(name, value opcodes)` pairs."""
    items = b"".join(_str(name) + value for name, value in entries)
    return b"\x80\x02}(" + items + b"u."


def _write_pth(path, data_pkl, storages=None, folder="archive", byteorder=b"little"):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{folder}/data.pkl", data_pkl)
        if byteorder is not None:
            archive.writestr(f"{folder}/byteorder", byteorder)
        for key, data in (storages or {}).items():
            archive.writestr(f"{folder}/data/{key}", data)
        archive.writestr(f"{folder}/version", b"3\n")
    return str(path)


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
    with pytest.raises(ValueError, match="could not be read as a state dict"):
        load_state_dict(path)
