"""Timestamps: the fast ISO formatter agrees with datetime's own."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.timeutil import from_us, iso

_TIMES = st.one_of(
    st.integers(-(10**16), 10**17),
    st.integers(0, 10**7).map(lambda s: s * 1_000_000),  # whole seconds: no fraction
    st.integers(1_800_000_000_000_000, 1_800_000_010_000_000),  # many within one second
)


@given(st.lists(_TIMES, min_size=1, max_size=20))
def test_iso_is_datetimes_isoformat_with_z(times):
    for us in times:
        assert iso(us) == from_us(us).isoformat().replace("+00:00", "Z")
