"""The Trader's checkpoint codec (``trading.state``): exact round trips, stable bytes, no pickle.

A paper session's checkpoint is read back after a crash, so the codec must give back exactly what
was stored (NaN, infinities, -0.0, dtypes), always write the same bytes for the same state, refuse
what it cannot store faithfully, and never execute anything while decoding.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trading_core.trading.state import StateFormatError, decode_state, encode_state

MAGIC = b"TRST2\n"


def _same(a: Any, b: Any, path: str = "$") -> None:
    """Deep equality that also pins types, float bits (NaN, -0.0) and array dtype/shape/bytes."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, float):
        assert a.hex() == b.hex() or (math.isnan(a) and math.isnan(b)), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert a.tobytes() == b.tobytes(), f"{path}: array contents differ"
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, set | frozenset):
        assert a == b, f"{path}: {a!r} != {b!r}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _state() -> dict[str, Any]:
    rng = np.random.default_rng(42)
    return {
        "version": 1,
        "none": None, "flags": [True, False], "big": 2 ** 70, "neg": -(2 ** 63),
        "floats": [0.1, -0.0, 0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308],
        "text": "ünïcødé ✓ \u0000 \"quoted\"",
        "tuple": (1, (2.5, "x"), [None, (-0.0,)]),
        "set": {3, 1, 2}, "strset": {"b", "a", "ç"}, "tupleset": {(1, "a"), (0, "b")}, "empty": {},
        "nested": {"a": {"b": {"c": [1, {"d": (math.nan, math.inf)}]}}},
        "i64": np.array([np.iinfo(np.int64).min, -1, 0, np.iinfo(np.int64).max], np.int64),
        "f64": np.array([[math.nan, -0.0, math.inf], [-math.inf, 1e-310, 3.0]]),
        "f32": rng.standard_normal(5).astype(np.float32),
        "u8": np.arange(7, dtype=np.uint8), "bools": rng.random((3, 4)) < 0.5,
        "unicode": np.array(["", "abc", "ünï", "✓✓✓✓"]),
        "fortran": np.asfortranarray(rng.standard_normal((3, 5))),
        "empty_arr": np.zeros((0, 3), np.int64),
        "record": np.zeros(3, np.dtype([("a", np.int64), ("b", np.float64)])),
        "arrays_in_list": [np.arange(3), (np.ones(2, np.int32),)],
    }


def test_state_round_trips_exactly_nested_values_special_floats_and_arrays() -> None:
    state = _state()
    back = decode_state(encode_state(state))
    expected = dict(state)
    expected["fortran"] = np.ascontiguousarray(state["fortran"])  # stored C-ordered, same values
    _same(expected, back)
    assert math.copysign(1.0, back["floats"][1]) == -1.0  # -0.0 keeps its sign
    assert back["unicode"].dtype.kind == "U" and back["i64"].dtype == np.int64


def test_zero_dimensional_arrays_keep_their_shape() -> None:
    back = decode_state(encode_state({"a": np.array(7.25), "b": np.array(3, np.int64)}))
    _same({"a": np.array(7.25), "b": np.array(3, np.int64)}, back)


def test_numpy_scalars_decode_as_plain_python_values() -> None:
    back = decode_state(encode_state({"i": np.int64(-5), "f": np.float64(-0.0), "b": np.bool_(True),
                                      "f32": np.float32(0.5)}))
    _same({"i": -5, "f": -0.0, "b": True, "f32": 0.5}, back)


def test_decoded_arrays_are_writable_copies() -> None:
    back = decode_state(encode_state({"a": np.arange(4)}))
    back["a"][0] = 99  # a checkpoint's arrays become live state again
    assert back["a"].tolist() == [99, 1, 2, 3]


def test_same_state_encodes_to_the_same_bytes() -> None:
    assert encode_state(_state()) == encode_state(_state())
    # sets are written sorted: insertion order does not matter
    assert encode_state({"s": {"z", "a", "m"}}) == encode_state({"s": {"m", "z", "a"}})


def _encode_in_fresh_process(tmp_path: Path, hash_seed: str) -> bytes:
    import os
    import subprocess
    import sys

    out = tmp_path / f"state_{hash_seed}.bin"
    code = ("import sys; from trading_core.trading.state import encode_state; "
            "open(sys.argv[1], 'wb').write(encode_state({'s': {'alpha', 'beta', 'gamma', 'delta', 'eps'}, "
            "'t': [{'x', 'y', 'z'}, {('k', 1), ('j', 2)}]}))")
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, timeout=120,
                   env={**os.environ, "PYTHONHASHSEED": hash_seed})
    return out.read_bytes()


def test_string_sets_encode_identically_under_any_hash_seed(tmp_path: Path) -> None:
    # str hashing is randomised per process: a set's iteration order is not, its bytes must be
    assert _encode_in_fresh_process(tmp_path, "1") == _encode_in_fresh_process(tmp_path, "987654")


def test_every_truncation_raises_state_format_error() -> None:
    data = encode_state({"a": np.arange(5), "b": [1.5, "x"], "c": np.array(["u", "v"])})
    for k in range(len(data)):
        with pytest.raises(StateFormatError):
            decode_state(data[:k])


def test_trailing_or_foreign_bytes_raise_state_format_error() -> None:
    data = encode_state({"a": np.arange(3)})
    for bad in (data + b"\x00", b"", b"TRST9\n" + data[6:], b"{}", json.dumps({"a": 1}).encode(),
                pickle.dumps({"a": 1})):
        with pytest.raises(StateFormatError):
            decode_state(bad)


def _container(head: Any, blobs: list[bytes]) -> bytes:
    h = json.dumps(head).encode()
    parts = [struct.pack("<QI", len(h), len(blobs)), h]
    for b in blobs:
        parts += [struct.pack("<Q", len(b)), b]
    body = b"".join(parts)  # a well-formed container (valid checksum) around a malformed head
    return MAGIC + hashlib.sha256(body).digest() + body


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


@pytest.mark.parametrize("what", ["bad_json", "bad_npy_header", "blob_length_too_long", "head_length_too_long"])
def test_structurally_tampered_bytes_raise_state_format_error(what: str) -> None:
    data = bytearray(_container({"a": {"__nd__": 0}}, [_npy(np.arange(4))]))
    pre = len(MAGIC) + 32  # magic, then the sha256 digest
    head_at = pre + 12
    if what == "bad_json":
        data[head_at] = ord("[")
    elif what == "bad_npy_header":
        i = data.index(b"\x93NUMPY")
        data[i + 1] = ord("X")
    elif what == "blob_length_too_long":
        (n_head,) = struct.unpack_from("<Q", data, pre)
        off = head_at + n_head
        struct.pack_into("<Q", data, off, struct.unpack_from("<Q", data, off)[0] + 5)
    else:
        struct.pack_into("<Q", data, pre, struct.unpack_from("<Q", data, pre)[0] + 3)
    with pytest.raises(StateFormatError):
        decode_state(bytes(data))


@pytest.mark.parametrize("head", [{"a": {"__nd__": 5}}, {"a": {"__f__": "zz"}}, {"a": {"__tuple__": 3}},
                                  {"a": {"__set__": [[1]]}}, {"a": {"__nd__": "0"}}],
                         ids=["blob_index", "float_hex", "tuple_not_list", "unhashable_set", "index_type"])
def test_tampered_markers_raise_state_format_error(head: dict[str, Any]) -> None:
    with pytest.raises(StateFormatError):
        decode_state(_container(head, [_npy(np.arange(2))]))


def _flips(data: bytes) -> tuple[list[int], dict[int, str]]:
    """Flip the low bit of every byte: (positions that decoded silently, position -> error type
    other than StateFormatError)."""
    silent, other = [], {}
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x01
        try:
            decode_state(bytes(bad))
        except StateFormatError:
            continue
        except Exception as e:  # noqa: BLE001 - what escapes is the finding
            other[i] = type(e).__name__
            continue
        silent.append(i)
    return silent, other


def test_a_tampered_byte_raises_nothing_but_state_format_error() -> None:
    _, other = _flips(encode_state({"t": 5, "a": np.arange(4, dtype=np.int64)}))
    assert other == {}


def test_any_single_byte_change_is_detected() -> None:
    silent, _ = _flips(encode_state({"t": 5, "a": np.arange(4, dtype=np.int64)}))
    assert silent == []


def test_object_arrays_are_refused() -> None:
    with pytest.raises(TypeError):
        encode_state({"a": np.array([{"x": 1}, None], dtype=object)})
    with pytest.raises(TypeError):
        encode_state({"a": [np.array(["a", 1], dtype=object)]})


@pytest.mark.parametrize("bad", [{1: "x"}, {("a",): 1}, {None: 1}, {"ok": {2.5: 1}}],
                         ids=["int_key", "tuple_key", "none_key", "nested_float_key"])
def test_non_str_keys_are_refused(bad: dict[Any, Any]) -> None:
    with pytest.raises(TypeError):
        encode_state(bad)


@pytest.mark.parametrize("bad", [{"__nd__": 0}, {"x": {"__f__": "0x1p+0"}}, {"__custom": 1}])
def test_keys_that_could_pass_for_markers_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        encode_state(bad)


@pytest.mark.parametrize("bad", [1 + 2j, b"bytes", object(), Path("/tmp")], ids=["complex", "bytes", "object",
                                                                                  "path"])
def test_unsupported_values_are_refused(bad: Any) -> None:
    with pytest.raises(TypeError):
        encode_state({"v": bad})


class _Boom:
    """Unpickling this runs ``_boom.fire`` -- if decoding ever unpickles, the test sees it."""

    fired: list[int] = []

    def __reduce__(self) -> Any:
        return (_Boom.fired.append, (1,))


def test_decoding_never_unpickles() -> None:
    _Boom.fired.clear()
    obj = np.array([_Boom()], dtype=object)
    buf = io.BytesIO()
    np.save(buf, obj, allow_pickle=True)  # a well-formed .npy whose payload is a pickle
    crafted = _container({"a": {"__nd__": 0}}, [buf.getvalue()])
    with pytest.raises(StateFormatError):
        decode_state(crafted)
    with pytest.raises(StateFormatError):
        decode_state(pickle.dumps({"a": _Boom()}))
    with pytest.raises(StateFormatError):
        decode_state(MAGIC + pickle.dumps({"a": _Boom()}))
    assert _Boom.fired == []
