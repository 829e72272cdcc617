"""Risk scores follow the documented formulas (docs/scores.md)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from engine.scores import SUSPECT_WEIGHTS, Velocity, compute
from engine.signals import BotSignal, Signals, VpnSignal

CALM = Velocity(1, 1, 1, 1, 0)


def signals(**flags) -> Signals:
    return Signals(
        bot=BotSignal(flags.pop("bot", False)),
        vpn=VpnSignal(flags.pop("vpn", False)),
        incognito=flags.pop("incognito", False),
        tampered=flags.pop("tampered", False),
        emulator=flags.pop("emulator", False),
        proxy=flags.pop("proxy", False),
        tor=flags.pop("tor", False),
        rootedDevice=flags.pop("rootedDevice", False),
        clonedApp=flags.pop("clonedApp", False),
    )


def sigmoid(x):
    return round(1 / (1 + math.exp(-x)), 4)


def test_clean_event_scores_low_and_matches_the_formula():
    s = compute(signals(), CALM, blocklisted=False, new_visitor=False, linked=False)
    assert s.bot == sigmoid(-4.0) and s.abuse == sigmoid(-4.0) and s.ato == sigmoid(-4.5)
    assert s.suspect == 0


def test_bot_and_tor_raise_their_scores_exactly():
    s = compute(
        signals(bot=True, tor=True), CALM, blocklisted=False, new_visitor=False, linked=False
    )
    assert s.bot == sigmoid(6.0 - 4.0)
    assert s.abuse == sigmoid(2.0 + 1.5 - 4.0)
    assert s.suspect == SUSPECT_WEIGHTS["bot"] + SUSPECT_WEIGHTS["tor"]


def test_new_device_on_a_linked_account_raises_ato():
    calm = compute(signals(), CALM, blocklisted=False, new_visitor=False, linked=True)
    new = compute(signals(), CALM, blocklisted=False, new_visitor=True, linked=True)
    assert new.ato == sigmoid(2.0 - 4.5) > calm.ato


def test_velocity_flags():
    busy = Velocity(distinctIps1h=3, distinctIps24h=3, visitorsPerIp1h=5, visitorsPerIp24h=5,
                    accountsPerVisitor=3)  # fmt: skip
    s = compute(signals(), busy, blocklisted=False, new_visitor=False, linked=False)
    assert s.suspect == SUSPECT_WEIGHTS["ip_velocity"] + SUSPECT_WEIGHTS["account_velocity"]
    assert s.abuse == sigmoid(1.0 + 1.5 - 4.0)


def test_suspect_is_capped():
    every = signals(bot=True, vpn=True, incognito=True, tampered=True, emulator=True, proxy=True,
                    tor=True, rootedDevice=True, clonedApp=True)  # fmt: skip
    s = compute(every, Velocity(9, 9, 99, 99, 9), blocklisted=True, new_visitor=True, linked=True)
    assert s.suspect == 100
    assert 0.99 < s.abuse <= 1.0


_SIGNAL_FLAGS = ("bot", "tor", "tampered", "vpn", "proxy", "emulator", "rootedDevice",
                 "clonedApp", "incognito")  # fmt: skip


def test_each_signal_adds_its_own_suspect_weight():
    for name in _SIGNAL_FLAGS:
        s = compute(signals(**{name: True}), CALM, blocklisted=False, new_visitor=False,
                    linked=False)  # fmt: skip
        assert s.suspect == SUSPECT_WEIGHTS[name], name
    s = compute(signals(), CALM, blocklisted=True, new_visitor=False, linked=False)
    assert s.suspect == SUSPECT_WEIGHTS["blocklisted"]
    crowded = Velocity(1, 1, 5, 5, 0)
    s = compute(signals(), crowded, blocklisted=False, new_visitor=False, linked=False)
    assert s.suspect == SUSPECT_WEIGHTS["ip_velocity"]


def _reference(sig: Signals, v: Velocity, blocklisted: bool, new_visitor: bool, linked: bool):
    """docs/scores.md, term by term."""
    many_ips = v.distinctIps24h >= 5 or v.distinctIps1h >= 3
    crowded = v.visitorsPerIp24h >= 10 or v.visitorsPerIp1h >= 5
    accounts = v.accountsPerVisitor >= 3
    bot, vpn = sig.bot.detected, sig.vpn.detected
    bot_sum = 6.0 * bot + 1.5 * sig.tampered + 1.0 * sig.proxy + 0.5 * crowded - 4.0
    abuse_sum = (1.2 * vpn + 1.0 * sig.proxy + 2.0 * sig.tor + 1.5 * sig.tampered
                 + 0.5 * sig.incognito + 1.5 * sig.emulator + 1.0 * sig.rootedDevice
                 + 2.0 * sig.clonedApp + 2.5 * blocklisted + 1.0 * crowded + 1.5 * accounts
                 + 1.5 * bot - 4.0)  # fmt: skip
    ato_sum = (2.0 * (new_visitor and linked) + 1.0 * many_ips + 1.0 * vpn + 1.5 * sig.tor
               + 1.0 * sig.tampered + 0.5 * sig.incognito + 1.0 * accounts - 4.5)  # fmt: skip
    on = {"bot": bot, "tor": sig.tor, "tampered": sig.tampered, "vpn": vpn, "proxy": sig.proxy,
          "emulator": sig.emulator, "rootedDevice": sig.rootedDevice,
          "clonedApp": sig.clonedApp, "incognito": sig.incognito, "blocklisted": blocklisted,
          "ip_velocity": crowded or many_ips, "account_velocity": accounts}  # fmt: skip
    suspect = min(100, sum(w for name, w in SUSPECT_WEIGHTS.items() if on[name]))
    return (sigmoid(abuse_sum), sigmoid(ato_sum), sigmoid(bot_sum), suspect)


@given(
    on=st.sets(st.sampled_from(_SIGNAL_FLAGS)),
    velocity=st.builds(Velocity, *[st.integers(0, 12)] * 5),
    blocklisted=st.booleans(),
    new_visitor=st.booleans(),
    linked=st.booleans(),
)
def test_scores_equal_the_documented_formulas(on, velocity, blocklisted, new_visitor, linked):
    sig = signals(**{name: True for name in on})
    got = compute(sig, velocity, blocklisted=blocklisted, new_visitor=new_visitor, linked=linked)
    want = _reference(sig, velocity, blocklisted, new_visitor, linked)
    assert (got.abuse, got.ato, got.bot, got.suspect) == want
