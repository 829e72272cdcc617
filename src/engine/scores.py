"""Risk scores: deterministic, documented functions of Smart Signals and velocity features.

`abuse`, `ato` and `bot` are probabilities-like values in [0, 1] from a logistic function of a
weighted sum; `suspect` is an integer in [0, 100] that adds fixed weights per signal, so a reader
can recompute it by hand. docs/scores.md lists every weight.
"""

from __future__ import annotations

import math
from itertools import compress

import msgspec

from .signals import Signals


class Velocity(msgspec.Struct):
    distinctIps1h: int
    distinctIps24h: int
    visitorsPerIp1h: int
    visitorsPerIp24h: int
    accountsPerVisitor: int


class Scores(msgspec.Struct):
    abuse: float
    ato: float
    bot: float
    suspect: int


SUSPECT_WEIGHTS = {
    "bot": 25,
    "tor": 20,
    "tampered": 15,
    "vpn": 10,
    "proxy": 10,
    "emulator": 15,
    "rootedDevice": 10,
    "clonedApp": 15,
    "incognito": 5,
    "blocklisted": 20,
    "ip_velocity": 10,
    "account_velocity": 10,
}


# `compute` lists its flags in this order.
_SUSPECT_VALUES = tuple(SUSPECT_WEIGHTS.values())


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def compute(
    signals: Signals, velocity: Velocity, *, blocklisted: bool, new_visitor: bool, linked: bool
) -> Scores:
    many_ips = velocity.distinctIps24h >= 5 or velocity.distinctIps1h >= 3
    crowded_ip = velocity.visitorsPerIp24h >= 10 or velocity.visitorsPerIp1h >= 5
    many_accounts = velocity.accountsPerVisitor >= 3

    bot_sum = (
        6.0 * signals.bot.detected
        + 1.5 * signals.tampered
        + 1.0 * signals.proxy
        + 0.5 * crowded_ip
        - 4.0
    )
    abuse_sum = (
        1.2 * signals.vpn.detected
        + 1.0 * signals.proxy
        + 2.0 * signals.tor
        + 1.5 * signals.tampered
        + 0.5 * signals.incognito
        + 1.5 * signals.emulator
        + 1.0 * signals.rootedDevice
        + 2.0 * signals.clonedApp
        + 2.5 * blocklisted
        + 1.0 * crowded_ip
        + 1.5 * many_accounts
        + 1.5 * signals.bot.detected
        - 4.0
    )
    ato_sum = (
        2.0 * (new_visitor and linked)
        + 1.0 * many_ips
        + 1.0 * signals.vpn.detected
        + 1.5 * signals.tor
        + 1.0 * signals.tampered
        + 0.5 * signals.incognito
        + 1.0 * many_accounts
        - 4.5
    )
    # In the order of SUSPECT_WEIGHTS.
    flags = (
        signals.bot.detected,
        signals.tor,
        signals.tampered,
        signals.vpn.detected,
        signals.proxy,
        signals.emulator,
        signals.rootedDevice,
        signals.clonedApp,
        signals.incognito,
        blocklisted,
        crowded_ip or many_ips,
        many_accounts,
    )
    suspect = min(100, sum(compress(_SUSPECT_VALUES, flags)))
    return Scores(
        abuse=round(_sigmoid(abuse_sum), 4),
        ato=round(_sigmoid(ato_sum), 4),
        bot=round(_sigmoid(bot_sum), 4),
        suspect=suspect,
    )
