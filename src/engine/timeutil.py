"""Timestamps are int64 microseconds since the Unix epoch, UTC, everywhere inside the engine."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


def now_us() -> int:
    return time.time_ns() // 1000


def to_us(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // ONE_US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


_seconds: dict[int, str] = {}


def iso(us: int) -> str:
    """`from_us(us).isoformat()` with `Z` for `+00:00` (no fraction when it is zero). Every
    identification formats its timestamps several times, now and when the visitor was first
    seen, so the date and time of recent seconds are kept (a few thousand at most)."""
    sec, frac = divmod(int(us), 1_000_000)
    head = _seconds.get(sec)
    if head is None:
        if len(_seconds) >= 4096:
            _seconds.clear()
        head = _seconds[sec] = (EPOCH + timedelta(seconds=sec)).isoformat()[:19]
    return f"{head}.{frac:06d}Z" if frac else f"{head}Z"


def month_of(us: int) -> str:
    return from_us(us).strftime("%Y-%m")


def month_start_us(us: int) -> int:
    d = from_us(us)
    return to_us(datetime(d.year, d.month, 1, tzinfo=UTC))


def parse_instant(text: str) -> int:
    """An ISO 8601 date or date-time (UTC unless it says otherwise); raises ValueError."""
    value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return to_us(value)
