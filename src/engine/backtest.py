"""Backtests: how often a rule would have matched the identifications of the last days.

One read transaction (an MVCC snapshot: ingestion goes on) reads the window's rows from the
stored segments (`backtest_columns`), codes the columns the rule uses and evaluates its compiled
program over every row with the numba kernel. The same pass yields the sample and the estimated
false positive rate. docs/rules.md ("Backtests") states the definitions and their limits.
"""

from __future__ import annotations

import time
from typing import Annotated

import lmdb
import msgspec
import numpy as np
from pyroaring import BitMap

from . import dictionary, lists, rule_store
from .backtest_columns import Window, code_program
from .errors import InvalidInput
from .identification import SIGNAL_BITS, VISITOR_KIND
from .rule_program import Program, run_coded
from .store import Store
from .tenant import Tenant
from .timeutil import iso, now_us
from .velocity import DAY_US

MAX_DAYS = 30
MAX_SAMPLE = 100
# A visitor looks legitimate when it was seen in at least CLEAN_DAYS distinct 24-hour periods
# of the window and none of its events there was flagged (FLAGGED signals, or a suspect score
# at or above SUSPECT_LIMIT), or when it is on an allow list.
CLEAN_DAYS = 3
SUSPECT_LIMIT = 50
FLAGGED = SIGNAL_BITS["bot"] | SIGNAL_BITS["tampered"] | SIGNAL_BITS["tor"]
ALLOW_WORDS = ("allow", "trust")


class BacktestIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    days: Annotated[int, msgspec.Meta(ge=1, le=MAX_DAYS)] = 7
    sampleSize: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAMPLE)] = 10


class SampleEvent(msgspec.Struct):
    requestId: str
    visitorId: str
    timestamp: str


class BacktestResult(msgspec.Struct):
    ruleId: str
    matchCount: int
    totalEvents: int
    matchRate: float
    estimatedFpr: float
    days: int
    durationMs: int
    sample: list[SampleEvent]


class Matches(msgspec.Struct):
    """A program evaluated over a window: which of the window's rows it matched."""

    window: Window
    matched: np.ndarray  # bool per row of the window
    start_us: int


def check(request: BacktestIn) -> None:
    """The decoder checks these for HTTP; a BacktestIn built in code is checked here."""
    for name, high in (("days", MAX_DAYS), ("sampleSize", MAX_SAMPLE)):
        value, low = getattr(request, name), 1 if name == "days" else 0
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(f"'{name}' must be an integer from {low} to {high}.", field=name)


def backtest(
    store: Store,
    tenant: Tenant,
    rule_id: str,
    request: BacktestIn,
    now: int | None = None,
) -> BacktestResult:
    """Backtest a stored rule (any status) over the `days` before `now` (default: the clock)."""
    started = time.perf_counter()
    check(request)
    now = now_us() if now is None else now
    with store.read() as txn:
        rule = rule_store.get(txn, store, tenant.prefix, rule_id)
        found = evaluate(txn, store, tenant, rule.program, request.days, now)
        fpr = estimated_fpr(found, _allowed_visitors(txn, store, tenant, now))
        sample = _sample(txn, store, tenant.prefix, found, request.sampleSize)
    total, count = len(found.window), int(found.matched.sum())
    return BacktestResult(
        ruleId=rule.id,
        matchCount=count,
        totalEvents=total,
        matchRate=round(count / total, 6) if total else 0.0,
        estimatedFpr=round(fpr, 6),
        days=request.days,
        durationMs=round((time.perf_counter() - started) * 1000),
        sample=sample,
    )


def evaluate(
    txn: lmdb.Transaction, store: Store, tenant: Tenant, program: Program, days: int, now: int
) -> Matches:
    """Rows with now - days x 24 h <= ts <= now, tombstoned rows left out, and the program's
    verdict on each. Lists are taken as they are at `now`."""
    start = now - days * DAY_US
    window = Window(txn, store, tenant.prefix, start, now)
    if not len(window):
        return Matches(window, np.zeros(0, np.bool_), start)
    coded = code_program(program, window, txn, store, tenant, now)
    matched = run_coded(program, coded.values, coded.slots, coded.leaves)
    return Matches(window, matched, start)


def estimated_fpr(found: Matches, allowed: np.ndarray) -> float:
    """The share of matched events whose visitor looks legitimate (see CLEAN_DAYS) or whose
    code is in `allowed`."""
    if not found.matched.any():
        return 0.0
    from .backtest_kernels import visitor_history  # numba, like the rule kernel

    w = found.window
    visitors = w.fixed("visitor")
    flagged = ((w.fixed("signals") & FLAGGED) != 0) | (w.fixed("suspect") >= SUSPECT_LIMIT)
    size = int(visitors.max()) + 1
    seen, dirty = visitor_history(visitors, w.ts, found.start_us, DAY_US, flagged, size)
    legit = (np.bitwise_count(seen) >= CLEAN_DAYS) & ~dirty
    legit[allowed[allowed < size]] = True
    return float(legit[visitors[found.matched]].mean())


def _allowed_visitors(txn: lmdb.Transaction, store: Store, tenant: Tenant, now: int) -> np.ndarray:
    """Codes of the visitors on an allow list: a visitor list that an `allow` rule tests with
    `in`, or whose name says allow or trust."""
    names = {
        lf.value["list"]
        for rule in rule_store.all_rules(txn, store, tenant.prefix)
        if rule.action.verdict == "allow"
        for lf in rule.program.leaves
        if lf.op == "in" and isinstance(lf.value, dict)
    }
    names.update(
        r.name
        for r in lists.all_lists(txn, store, tenant)
        if any(word in r.name.lower() for word in ALLOW_WORDS)
    )
    codes = BitMap()
    for name in names:
        held = lists.live_entries(txn, store, tenant, name, now)
        if held is None or held[0] != "visitor":
            continue
        for entry in held[1]:
            found = dictionary.lookup(txn, store, tenant.prefix, VISITOR_KIND, entry)
            if found is not None:
                codes.add(found)
    return np.fromiter(codes, dtype=np.int64, count=len(codes))


def _sample(
    txn: lmdb.Transaction, store: Store, prefix: bytes, found: Matches, size: int
) -> list[SampleEvent]:
    """`size` matches spread evenly over the matches in time order, newest first: the most
    recent match, then one every len/size matches back through the window."""
    hits = np.flatnonzero(found.matched)
    if not size or not len(hits):
        return []
    w = found.window
    ordered = hits[np.argsort(w.ts[hits], kind="stable")]
    n = len(ordered)
    picked = ordered[n - 1 - (np.arange(min(size, n)) * n) // min(size, n)]
    requests = w.var_items("request", picked.tolist())
    visitors = w.fixed("visitor")[picked]
    names = dictionary.strings(txn, store, prefix, VISITOR_KIND, set(visitors.tolist()))
    return [
        SampleEvent(requests[p].decode(), names.get(int(v), ""), iso(int(w.ts[p])))
        for p, v in zip(picked.tolist(), visitors.tolist(), strict=True)
    ]
