"""Risk scores follow the documented formulas (docs/scores.md)."""

from __future__ import annotations

import math

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
