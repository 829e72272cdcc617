"""Device analytics: identification counts grouped by verdict, platform, country or time, and
Smart Signal counts, rates and trends. numpy over the identification columns (segments and
pending rows, tombstoned rows left out), one read snapshot per query. docs/device-analytics.md.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import lmdb
import msgspec
import numpy as np

from . import dictionary
from .backtest_columns import Window
from .errors import InvalidInput
from .identification import COUNTRY_KIND, PLATFORM_KIND, SIGNAL_BITS, VERDICT_CODES
from .store import Store
from .tenant import Tenant
from .timeutil import iso

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
_VERDICTS = {code: name for name, code in VERDICT_CODES.items()}
SIGNALS = ["bot", "vpn", "incognito", "tampered", "emulator", "proxy", "tor", "rootedDevice",
           "clonedApp"]  # fmt: skip
# A trend moves only when the two windows' rates differ by at least this many standard errors
# (a two-proportion z-test) and by at least MIN_RELATIVE of the earlier rate: small counts and
# tiny wobbles read "stable".
TREND_Z = 2.0
MIN_RELATIVE = 0.10

EventGroup = Literal["verdict", "platform", "country", "hour", "day", "week"]
SignalGroup = Literal["signal", "day", "week"]


class EventsAnswer(msgspec.Struct):
    from_: str = msgspec.field(name="from")
    to: str = ""
    total: int = 0
    groups: list[dict[str, Any]] = []


class SignalsAnswer(msgspec.Struct):
    from_: str = msgspec.field(name="from")
    to: str = ""
    total: int = 0
    signals: list[dict[str, Any]] = []


def _window(txn: lmdb.Transaction, store: Store, tenant: Tenant, lo: int, hi: int) -> Window:
    if lo >= hi:
        raise InvalidInput("'from' must be before 'to'.", field="to")
    return Window(txn, store, tenant.prefix, lo, hi - 1)  # Window bounds are inclusive


def _period(ts: np.ndarray, unit: str) -> tuple[np.ndarray, list[str]]:
    """Bucket index of each timestamp (0 = the earliest bucket) and the label of each bucket
    that holds any timestamp, in order. Counting sort, not np.unique: linear in the rows."""
    if not len(ts):
        return np.zeros(0, np.int64), []
    days = ts // DAY_US
    if unit == "hour":
        keys = ts // HOUR_US
    elif unit == "day":
        keys = days
    else:
        keys = (days + 3) // 7  # ISO weeks start on Monday; day 0 (1970-01-01) was a Thursday
    first = int(keys.min())
    index = keys - first
    present = np.flatnonzero(np.bincount(index))
    starts = {"hour": lambda k: k * HOUR_US, "day": lambda k: k * DAY_US,
              "week": lambda k: (k * 7 - 3) * DAY_US}[unit]  # fmt: skip
    labels = [iso(starts(first + int(k))) for k in present]
    if unit != "hour":
        labels = [label[:10] for label in labels]
    # Renumber to 0..len(present)-1 so callers can bincount over the labels.
    rank = np.zeros(int(index.max()) + 1, np.int64)
    rank[present] = np.arange(len(present))
    return rank[index], labels


def events(
    txn: lmdb.Transaction,
    store: Store,
    tenant: Tenant,
    lo: int,
    hi: int,
    group_by: EventGroup | None,
    verdict: str | None,
) -> EventsAnswer:
    win = _window(txn, store, tenant, lo, hi)
    keep = None
    if verdict is not None:
        if verdict not in VERDICT_CODES:
            raise InvalidInput("'verdict' is allow, challenge or block.", field="verdict")
        keep = win.fixed("verdict") == VERDICT_CODES[verdict]
    total = len(win) if keep is None else int(keep.sum())
    answer = EventsAnswer(from_=iso(lo), to=iso(hi), total=total)
    if group_by is None or not total:
        return answer
    if group_by in ("hour", "day", "week"):
        keys, labels = _period(win.ts if keep is None else win.ts[keep], group_by)
        counts = np.bincount(keys, minlength=len(labels))
        names: list[Any] = labels
    else:
        column = {"verdict": "verdict", "platform": "platform", "country": "country"}[group_by]
        codes = win.fixed(column)
        values, counts = np.unique(codes if keep is None else codes[keep], return_counts=True)
        names = _labels(txn, store, tenant, group_by, values)
    groups = [{group_by: name, "count": int(c), "pct": round(int(c) / total, 4)}
              for name, c in zip(names, counts.tolist(), strict=True)]  # fmt: skip
    if group_by not in ("hour", "day", "week"):
        groups.sort(key=lambda g: (-g["count"], str(g[group_by])))
    answer.groups = groups
    return answer


def _labels(
    txn: lmdb.Transaction, store: Store, tenant: Tenant, group_by: str, codes: np.ndarray
) -> list[Any]:
    if group_by == "verdict":
        return [_VERDICTS.get(int(c)) for c in codes]
    kind = PLATFORM_KIND if group_by == "platform" else COUNTRY_KIND
    names = dictionary.strings(txn, store, tenant.prefix, kind, codes.tolist())
    return [names.get(int(c)) or None for c in codes]  # "" is stored for none


def _trend(count: int, total: int, before: int, before_total: int) -> str:
    if not total or not before_total:
        return "stable"
    p1, p0 = count / total, before / before_total
    pooled = (count + before) / (total + before_total)
    se = math.sqrt(pooled * (1 - pooled) * (1 / total + 1 / before_total))
    if se == 0 or abs(p1 - p0) / se < TREND_Z:
        return "stable"
    if p0 and abs(p1 - p0) / p0 < MIN_RELATIVE:
        return "stable"
    return "up" if p1 > p0 else "down"


def _bit_counts(bits: np.ndarray) -> dict[str, int]:
    """Rows with each signal bit set: one counting pass over the values, not one per signal."""
    per_value = np.bincount(bits.astype(np.int64), minlength=1)
    values = np.arange(len(per_value))
    return {name: int(per_value[(values & bit) != 0].sum()) for name, bit in SIGNAL_BITS.items()}


def signals(
    txn: lmdb.Transaction,
    store: Store,
    tenant: Tenant,
    lo: int,
    hi: int,
    group_by: SignalGroup | None,
    signal: str | None,
) -> SignalsAnswer:
    if signal is not None and signal not in SIGNALS:
        raise InvalidInput(f"'signal' is one of {', '.join(SIGNALS)}.", field="signal")
    names = [signal] if signal else SIGNALS
    win = _window(txn, store, tenant, lo, hi)
    bits = win.fixed("signals")
    answer = SignalsAnswer(from_=iso(lo), to=iso(hi), total=len(win))
    if group_by in ("day", "week"):
        index, labels = _period(win.ts, group_by)
        totals = np.bincount(index, minlength=len(labels))
        rows = []
        for name in names:
            hit = (bits & SIGNAL_BITS[name]) != 0
            counts = np.bincount(index[hit], minlength=len(labels))
            for i, label in enumerate(labels):
                before = (int(counts[i - 1]), int(totals[i - 1])) if i else (0, 0)
                rows.append({group_by: label, "signal": name, "count": int(counts[i]),
                             "rate": round(int(counts[i]) / int(totals[i]), 4),
                             "trend": _trend(int(counts[i]), int(totals[i]), *before)})  # fmt: skip
        answer.signals = rows
        return answer
    # By signal (the default): the window against the previous window of equal length.
    earlier = _window(txn, store, tenant, lo - (hi - lo), lo)
    now_counts, before_counts = _bit_counts(bits), _bit_counts(earlier.fixed("signals"))
    rows = []
    for name in names:
        count, before = now_counts[name], before_counts[name]
        rows.append({"signal": name, "count": count,
                     "rate": round(count / len(win), 4) if len(win) else 0.0,
                     "trend": _trend(count, len(win), before, len(earlier))})  # fmt: skip
    rows.sort(key=lambda r: (-r["count"], r["signal"]))
    answer.signals = rows
    return answer
