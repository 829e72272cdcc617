"""Column encodings round-trip; merged variable columns equal the encoding of the merged list."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.columns import (
    FIXED_DTYPES,
    VarColumn,
    concat_var,
    decode_fixed,
    decode_var,
    encode_fixed,
    encode_var,
)

blobs = st.lists(st.binary(max_size=20), max_size=30)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50))
def test_fixed_int64_roundtrip(values):
    raw = encode_fixed(values, "i8")
    assert len(raw) == 8 * len(values)
    assert decode_fixed(raw, "i8").tolist() == values


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), max_size=50))
def test_fixed_uint32_roundtrip(values):
    raw = encode_fixed(values, "u4")
    assert len(raw) == 4 * len(values)
    assert decode_fixed(raw, "u4").tolist() == values


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False), max_size=50))
def test_fixed_float32_roundtrip(values):
    decoded = decode_fixed(encode_fixed(values, "f4"), "f4")
    assert decoded.dtype == np.dtype("<f4")
    assert decoded.tolist() == values


@pytest.mark.parametrize("kind", sorted(FIXED_DTYPES))
def test_fixed_empty_values(kind):
    assert encode_fixed([], kind) == b""
    decoded = decode_fixed(b"", kind)
    assert len(decoded) == 0 and decoded.dtype == FIXED_DTYPES[kind]


def test_decoded_fixed_column_is_a_writable_copy():
    raw = encode_fixed([1, 2, 3], "i8")
    column = decode_fixed(raw, "i8")
    column[0] = 99  # a view of the LMDB buffer would be read-only
    assert decode_fixed(raw, "i8").tolist() == [1, 2, 3]


@settings(max_examples=50, deadline=None)
@given(blobs)
def test_var_roundtrip(values):
    column = decode_var(encode_var(values))
    assert column.to_list() == values
    assert len(column) == len(values)
    assert [column[i] for i in range(len(values))] == values
    if values:
        index = np.arange(len(values))[::2]
        assert column.take(index) == values[::2]


def test_var_empty_column_and_empty_values():
    empty = encode_var([])
    assert empty == np.uint32(0).tobytes() + np.uint32(0).tobytes()
    column = decode_var(empty)
    assert len(column) == 0 and column.to_list() == []
    assert column.take(np.array([], dtype=np.int64)) == []
    # Empty bytes stand for missing values and must survive as such, also between others.
    values = [b"", b"a", b"", b"", b"bc", b""]
    column = decode_var(encode_var(values))
    assert column.to_list() == values
    assert column.take(np.array([0, 2, 4])) == [b"", b"", b"bc"]


def test_var_accepts_memoryview_input_like_an_lmdb_buffer():
    values = [b"one", b"", b"three"]
    assert decode_var(memoryview(encode_var(values))).to_list() == values


@settings(max_examples=50, deadline=None)
@given(st.lists(blobs, max_size=5))
def test_concat_var_equals_encoding_of_the_concatenation(parts):
    merged = concat_var([decode_var(encode_var(p)) for p in parts])
    assert merged == encode_var([v for p in parts for v in p])


@settings(max_examples=50, deadline=None)
@given(st.lists(blobs, max_size=4), st.data())
def test_concat_var_of_slices_whose_offsets_do_not_start_at_zero(parts, data):
    # A column slice keeps the offsets of the full column: concat_var must rebase them.
    columns, expected = [], []
    for values in parts:
        full = decode_var(encode_var(values))
        lo = data.draw(st.integers(0, len(values)))
        hi = data.draw(st.integers(lo, len(values)))
        columns.append(VarColumn(full.offsets[lo : hi + 1], full.data))
        expected += values[lo:hi]
    assert concat_var(columns) == encode_var(expected)
    assert decode_var(concat_var(columns)).to_list() == expected


def test_concat_var_of_nothing_is_the_empty_column():
    assert concat_var([]) == encode_var([])
    assert concat_var([decode_var(encode_var([]))] * 3) == encode_var([])
