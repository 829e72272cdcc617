"""The fields a rule condition may test: dotted paths of the identification event document.

Each field has a kind (what operators and values it accepts) and where it is read in an event
document; `backtest_columns.SOURCES` says which column of the `identifications` table holds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

Kind = Literal["bool", "number", "string"]


class Field(msgspec.Struct, frozen=True):
    kind: Kind
    path: tuple[str, ...]
    # Entries of which list type can stand for values of this field ("in": {"list": ...}).
    list_type: str | None = None


def _f(kind: Kind, dotted: str, list_type: str | None = None) -> tuple[str, Field]:
    return dotted, Field(kind, tuple(dotted.split(".")), list_type)


FIELDS: dict[str, Field] = dict(
    [
        _f("string", "visitorId", "visitor"),
        _f("number", "confidence"),
        _f("bool", "visitorFound"),
        _f("string", "linkedId", "email"),
        _f("string", "event.type"),
        _f("bool", "signals.bot.detected"),
        _f("bool", "signals.vpn.detected"),
        _f("bool", "signals.incognito"),
        _f("bool", "signals.tampered"),
        _f("bool", "signals.emulator"),
        _f("bool", "signals.proxy"),
        _f("bool", "signals.tor"),
        _f("bool", "signals.rootedDevice"),
        _f("bool", "signals.clonedApp"),
        _f("number", "scores.abuse"),
        _f("number", "scores.ato"),
        _f("number", "scores.bot"),
        _f("number", "scores.suspect"),
        _f("string", "ip.address", "ip"),
        _f("string", "ip.country"),
        _f("string", "ip.city"),
        _f("number", "ip.asn"),
        _f("bool", "ip.blocklisted"),
        _f("string", "device.platform"),
        _f("string", "device.browser"),
        _f("string", "device.type"),
        _f("string", "device.os"),
        _f("number", "velocity.distinctIps1h"),
        _f("number", "velocity.distinctIps24h"),
        _f("number", "velocity.visitorsPerIp1h"),
        _f("number", "velocity.visitorsPerIp24h"),
        _f("number", "velocity.accountsPerVisitor"),
    ]
)


def read(document: Mapping[str, Any], field: str) -> Any:
    """The field's value in an event document, or None when absent."""
    value: Any = document
    for part in FIELDS[field].path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
