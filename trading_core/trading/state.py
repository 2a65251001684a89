"""Bytes for a Trader's state: plain values as JSON, NumPy arrays as ``.npy`` blobs.

Why not pickle: a checkpoint is read back from storage after a crash, and unpickling runs code
chosen by whoever wrote the bytes. This format holds only None, bool, int, float (NaN and inf
included, exactly), str, lists, tuples, sets, str-keyed dicts and arrays of plain dtypes (read
with ``allow_pickle=False``), so decoding can never execute anything. The same state always
encodes to the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from typing import Any

import numpy as np

__all__ = ["encode_state", "decode_state", "StateFormatError"]

_MAGIC = b"TRST2\n"
_DIGEST = 32  # sha256 of everything after it: a flipped bit anywhere is an error, not a new state


class StateFormatError(ValueError):
    """The bytes are not a Trader state (truncated, another format, or a newer version)."""


def _pack(obj: Any, blobs: list[bytes]) -> Any:
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("object arrays cannot be stored in a Trader state")
        buf = io.BytesIO()
        np.save(buf, obj if obj.flags.c_contiguous else obj.copy(order="C"), allow_pickle=False)
        blobs.append(buf.getvalue())
        return {"__nd__": len(blobs) - 1}
    if isinstance(obj, np.generic):
        return _pack(obj.item(), blobs)
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return {"__f__": obj.hex()}  # exact, and NaN/inf without JSON extensions
    if isinstance(obj, tuple):
        return {"__tuple__": [_pack(v, blobs) for v in obj]}
    if isinstance(obj, set | frozenset):
        return {"__set__": [_pack(v, blobs) for v in sorted(obj)]}
    if isinstance(obj, list):
        return [_pack(v, blobs) for v in obj]
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError("state dicts must have str keys")
        if any(k.startswith("__") for k in obj):
            raise TypeError("state dict keys may not start with '__'")
        return {k: _pack(v, blobs) for k, v in obj.items()}
    raise TypeError(f"cannot store a {type(obj).__name__} in a Trader state")


def _unpack(obj: Any, blobs: list[np.ndarray]) -> Any:
    if isinstance(obj, list):
        return [_unpack(v, blobs) for v in obj]
    if isinstance(obj, dict):
        if "__nd__" in obj:
            return blobs[obj["__nd__"]].copy()
        if "__f__" in obj:
            return float.fromhex(obj["__f__"])
        if "__tuple__" in obj:
            return tuple(_unpack(v, blobs) for v in obj["__tuple__"])
        if "__set__" in obj:
            return {_unpack(v, blobs) for v in obj["__set__"]}
        return {k: _unpack(v, blobs) for k, v in obj.items()}
    return obj


def encode_state(state: Any) -> bytes:
    blobs: list[bytes] = []
    head = json.dumps(_pack(state, blobs), separators=(",", ":"), allow_nan=False).encode()
    parts = [struct.pack("<QI", len(head), len(blobs)), head]
    for b in blobs:
        parts += [struct.pack("<Q", len(b)), b]
    body = b"".join(parts)
    return _MAGIC + hashlib.sha256(body).digest() + body


def decode_state(data: bytes) -> Any:
    mv = memoryview(data)
    n = len(_MAGIC)
    if bytes(mv[:n]) != _MAGIC:
        raise StateFormatError("not a Trader state (bad header or another version)")
    digest, body = bytes(mv[n:n + _DIGEST]), mv[n + _DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise StateFormatError("corrupt Trader state: checksum mismatch (truncated or altered)")
    try:
        n_head, n_blobs = struct.unpack_from("<QI", body, 0)
        off = 12
        head = json.loads(bytes(body[off:off + n_head]))
        off += n_head
        blobs = []
        for _ in range(n_blobs):
            (k,) = struct.unpack_from("<Q", body, off)
            off += 8
            blobs.append(np.load(io.BytesIO(bytes(body[off:off + k])), allow_pickle=False))
            off += k
        if off != len(body):
            raise StateFormatError("corrupt Trader state: trailing bytes")
        return _unpack(head, blobs)
    except StateFormatError:
        raise
    except Exception as e:  # any malformed content is a format error, never a crash elsewhere
        raise StateFormatError(f"corrupt Trader state: {type(e).__name__}: {e}") from None
