"""Column encodings: fixed-width numpy arrays, and variable-length byte strings.

A variable column is one value: little-endian uint32 row count, uint32 offsets (count + 1),
then the concatenated bytes. Empty bytes stand for a missing value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FIXED_DTYPES = {"i8": np.dtype("<i8"), "u4": np.dtype("<u4"), "f4": np.dtype("<f4")}
VAR = "var"


def encode_fixed(values: np.ndarray | Sequence[int], kind: str) -> bytes:
    return np.asarray(values, dtype=FIXED_DTYPES[kind]).tobytes()


def decode_fixed(raw: bytes, kind: str) -> np.ndarray:
    return np.frombuffer(raw, dtype=FIXED_DTYPES[kind]).copy()


class VarColumn:
    """Decoded variable-length column: offsets into one bytes blob."""

    __slots__ = ("data", "offsets")

    def __init__(self, offsets: np.ndarray, data: bytes) -> None:
        self.offsets = offsets
        self.data = data

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> bytes:
        return self.data[self.offsets[i] : self.offsets[i + 1]]

    def to_list(self) -> list[bytes]:
        data, off = self.data, self.offsets.tolist()
        return [data[off[i] : off[i + 1]] for i in range(len(off) - 1)]

    def take(self, index: np.ndarray) -> list[bytes]:
        data, off = self.data, self.offsets
        starts, ends = off[index].tolist(), off[index + 1].tolist()
        return [data[s:e] for s, e in zip(starts, ends, strict=True)]


def encode_var(values: Sequence[bytes]) -> bytes:
    n = len(values)
    offsets = np.zeros(n + 1, dtype="<u4")
    if n:
        np.cumsum(np.fromiter(map(len, values), dtype=np.int64, count=n), out=offsets[1:])
    return np.uint32(n).tobytes() + offsets.tobytes() + b"".join(values)


def decode_var(raw: bytes) -> VarColumn:
    n = int(np.frombuffer(raw, dtype="<u4", count=1)[0])
    offsets = np.frombuffer(raw, dtype="<u4", count=n + 1, offset=4).astype(np.int64)
    return VarColumn(offsets, bytes(raw[4 + 4 * (n + 1) :]))


def concat_var(parts: Sequence[VarColumn]) -> bytes:
    """Merge variable columns without splitting them into Python objects."""
    total = sum(len(p) for p in parts)
    offsets = np.zeros(total + 1, dtype=np.int64)
    pos, base = 1, 0
    for p in parts:
        n = len(p)
        offsets[pos : pos + n] = p.offsets[1:] - p.offsets[0] + base
        base += int(p.offsets[-1] - p.offsets[0])
        pos += n
    if base >= 1 << 32:
        raise OverflowError("variable column larger than 4 GiB")
    data = b"".join(p.data[int(p.offsets[0]) : int(p.offsets[-1])] for p in parts)
    return np.uint32(total).tobytes() + offsets.astype("<u4").tobytes() + data
