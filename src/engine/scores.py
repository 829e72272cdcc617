"""Risk scores: deterministic, documented functions of Smart Signals and velocity features.

`abuse`, `ato` and `bot` are probabilities-like values in [0, 1] from a logistic function of a
weighted sum; `suspect` is an integer in [0, 100] that adds fixed weights per signal, so a reader
can recompute it by hand. docs/scores.md lists every weight.
"""

from __future__ import annotations

import math

import msgspec

from .signals import Signals


class Velocity(msgspec.Struct):
    distinctIps1h: int
    distinctIps24h: int
    visitorsPerIp1h: int
    visitorsPerIp24h: int
    accountsPerVisitor: int


class Scores(msgspec.Struct, frozen=True):
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


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def compute(
    signals: Signals, velocity: Velocity, *, blocklisted: bool, new_visitor: bool, linked: bool
) -> Scores:
    many_ips = velocity.distinctIps24h >= 5 or velocity.distinctIps1h >= 3
    crowded_ip = velocity.visitorsPerIp24h >= 10 or velocity.visitorsPerIp1h >= 5
    many_accounts = velocity.accountsPerVisitor >= 3
    # Scores depend on these fourteen flags alone, so each combination is computed once.
    flags = (
        signals.bot.detected, signals.tor, signals.tampered, signals.vpn.detected,
        signals.proxy, signals.emulator, signals.rootedDevice, signals.clonedApp,
        signals.incognito, blocklisted, crowded_ip, many_ips, many_accounts,
        new_visitor and linked,
    )  # fmt: skip
    scores = _computed.get(flags)
    if scores is None:
        scores = _computed[flags] = _from_flags(*flags)
    return scores


_computed: dict[tuple[bool, ...], Scores] = {}


def _from_flags(
    bot: bool,
    tor: bool,
    tampered: bool,
    vpn: bool,
    proxy: bool,
    emulator: bool,
    rooted: bool,
    cloned: bool,
    incognito: bool,
    blocklisted: bool,
    crowded_ip: bool,
    many_ips: bool,
    many_accounts: bool,
    new_linked: bool,
) -> Scores:
    bot_sum = 6.0 * bot + 1.5 * tampered + 1.0 * proxy + 0.5 * crowded_ip - 4.0
    abuse_sum = (
        1.2 * vpn
        + 1.0 * proxy
        + 2.0 * tor
        + 1.5 * tampered
        + 0.5 * incognito
        + 1.5 * emulator
        + 1.0 * rooted
        + 2.0 * cloned
        + 2.5 * blocklisted
        + 1.0 * crowded_ip
        + 1.5 * many_accounts
        + 1.5 * bot
        - 4.0
    )
    ato_sum = (
        2.0 * new_linked
        + 1.0 * many_ips
        + 1.0 * vpn
        + 1.5 * tor
        + 1.0 * tampered
        + 0.5 * incognito
        + 1.0 * many_accounts
        - 4.5
    )
    # Computed once per combination of flags: plain and readable beats fast here.
    present = {
        "bot": bot, "tor": tor, "tampered": tampered, "vpn": vpn, "proxy": proxy,
        "emulator": emulator, "rootedDevice": rooted, "clonedApp": cloned,
        "incognito": incognito, "blocklisted": blocklisted,
        "ip_velocity": crowded_ip or many_ips, "account_velocity": many_accounts,
    }  # fmt: skip
    return Scores(
        abuse=round(_sigmoid(abuse_sum), 4),
        ato=round(_sigmoid(ato_sum), 4),
        bot=round(_sigmoid(bot_sum), 4),
        suspect=min(100, sum(w for name, w in SUSPECT_WEIGHTS.items() if present[name])),
    )
