"""Column encodings round-trip; merged variable columns equal the encoding of the merged list."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.columns import concat_var, decode_fixed, decode_var, encode_fixed, encode_var

blobs = st.lists(st.binary(max_size=20), max_size=30)


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50))
def test_fixed_int64_roundtrip(values):
    assert decode_fixed(encode_fixed(values, "i8"), "i8").tolist() == values


@given(blobs)
def test_var_roundtrip(values):
    column = decode_var(encode_var(values))
    assert column.to_list() == values
    assert len(column) == len(values)
    if values:
        index = np.arange(len(values))[::2]
        assert column.take(index) == values[::2]


@settings(max_examples=60)
@given(st.lists(blobs, max_size=5))
def test_concat_var_equals_encoding_of_the_concatenation(parts):
    merged = concat_var([decode_var(encode_var(p)) for p in parts])
    assert merged == encode_var([v for p in parts for v in p])
