"""Which countries a time zone belongs to, from the tz database's zone.tab (package `tzdata`)."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def _table() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for name in ("zone1970.tab", "zone.tab"):
        try:
            text = resources.files("tzdata").joinpath("zoneinfo", name).read_text()
        except (FileNotFoundError, ModuleNotFoundError):
            continue
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            codes, _, zone = line.split("\t")[:3]
            out.setdefault(zone, set()).update(codes.split(","))
    return {zone: frozenset(codes) for zone, codes in out.items()}


def countries(zone: str) -> frozenset[str]:
    """ISO country codes where `zone` is used; empty when unknown (UTC, Etc/*, garbage)."""
    return _table().get(zone, frozenset())
