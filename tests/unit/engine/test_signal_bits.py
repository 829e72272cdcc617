"""The `signals` column of identifications: one bit per signal, as SIGNAL_BITS names them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.identification import SIGNAL_BITS, signal_bits
from engine.signals import BotSignal, Signals, VpnSignal

_FLAGS = [name for name in SIGNAL_BITS if name not in ("bot", "vpn", "blocklisted")]


@given(on=st.sets(st.sampled_from(list(SIGNAL_BITS))))
def test_each_signal_sets_its_own_bit(on):
    signals = Signals(
        bot=BotSignal("bot" in on), vpn=VpnSignal("vpn" in on), **{f: f in on for f in _FLAGS}
    )
    bits = signal_bits(signals, "blocklisted" in on)
    assert isinstance(bits, int)
    assert bits == sum(SIGNAL_BITS[name] for name in on)
