"""Funnels: how many users go through a sequence of steps, and how fast.

A query loads the tenant's events in [from, to) from the segments, marks each row with the steps
it matches (a bit per step), sorts the matching rows by user and time, and runs one numba kernel
(`funnel_kernel`) that finds the furthest step every user reached. Aggregation, breakdowns and
times to convert are numpy over the per-user results. docs/funnels.md has the semantics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import lmdb
import msgspec
import numpy as np
from pyroaring import BitMap

from . import _kernels, codec, dictionary, profiles
from .errors import InvalidInput
from .events import Name
from .property_filters import PropertyFilter, all_hold, validate
from .scan import load
from .store import Store
from .tenant import Tenant
from .timeutil import iso, parse_instant

MAX_STEPS = 20
TOP_BREAKDOWN_VALUES = 25
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


class Step(msgspec.Struct, forbid_unknown_fields=True):
    event: Name
    where: list[PropertyFilter] = []


class Window(msgspec.Struct, forbid_unknown_fields=True):
    value: Annotated[int, msgspec.Meta(ge=1, le=10_000)]
    unit: Literal["second", "minute", "hour", "day", "week"] = "day"

    @property
    def seconds(self) -> int:
        return self.value * _UNIT_SECONDS[self.unit]


class Breakdown(msgspec.Struct, forbid_unknown_fields=True):
    property: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    source: Literal["event", "user"] = "event"


class FunnelQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    steps: Annotated[list[Name | Step], msgspec.Meta(min_length=2, max_length=MAX_STEPS)]
    from_: str = msgspec.field(name="from")
    to: str
    conversion_window: Window = msgspec.field(default_factory=lambda: Window(14, "day"))
    order: Literal["ordered", "strict", "any"] = "ordered"
    cohort_id: str | None = None
    breakdown: Breakdown | None = None


class StepResult(msgspec.Struct):
    step: int
    event: str
    users: int
    conversion_from_first: float
    conversion_from_previous: float
    median_seconds_to_convert: float | None
    p90_seconds_to_convert: float | None


class BreakdownGroup(msgspec.Struct):
    value: Any
    other: bool
    steps: list[StepResult]
    overall_conversion: float


class FunnelResult(msgspec.Struct):
    order: str
    from_: str = msgspec.field(name="from")
    to: str = ""
    conversion_window_seconds: int = 0
    cohort_id: str | None = None
    steps: list[StepResult] = []
    overall_conversion: float = 0.0
    breakdown: list[BreakdownGroup] | None = None


_decoder = msgspec.json.Decoder(FunnelQuery)
_props_decoder = msgspec.json.Decoder(dict[str, Any])


def decode_query(body: bytes) -> FunnelQuery:
    query = codec.decode(_decoder, body)
    _validate(query)
    return query


def _steps(query: FunnelQuery) -> list[Step]:
    return [Step(s) if isinstance(s, str) else s for s in query.steps]


def _validate(query: FunnelQuery) -> None:
    for i, step in enumerate(_steps(query)):
        validate(step.where, f"steps[{i}].where")
    bounds = []
    for name, text in (("from", query.from_), ("to", query.to)):
        try:
            bounds.append(parse_instant(text))
        except ValueError:
            raise InvalidInput(
                f"'{name}' must be an ISO 8601 date or date-time.", field=name
            ) from None
    if bounds[0] >= bounds[1]:
        raise InvalidInput("'from' must be before 'to'.", field="to")


class _Rows(msgspec.Struct):
    """The rows matching a funnel's steps, grouped by user and in time order per user."""

    cols: dict[str, Any]  # the loaded columns, all rows of the range
    chosen: np.ndarray  # indexes into cols, grouped
    starts: np.ndarray  # each user's first position in `chosen`, plus the end
    users: np.ndarray  # the user of each group
    ts: np.ndarray
    bits: np.ndarray


def _rows(
    txn: lmdb.Transaction,
    store: Store,
    tenant: Tenant,
    steps: Sequence[Step],
    from_us: int,
    to_us: int,
    members: BitMap | None,
    with_props: bool,
) -> _Rows:
    need = ["user", "event", *(["props"] if with_props or any(s.where for s in steps) else [])]
    cols = load(txn, store, tenant.prefix, "events", need, from_us, to_us)
    event, user = np.asarray(cols["event"]), np.asarray(cols["user"])
    table, row_bits = _step_bits(txn, store, tenant.prefix, steps, event, cols.get("props"))
    allowed = np.zeros(0, np.bool_)
    if members is not None:
        ids = np.fromiter(members, np.int64, count=len(members))
        allowed = np.zeros(int(ids.max()) + 1 if len(ids) else 1, np.bool_)
        allowed[ids] = True
    starts, users, ts, bits, chosen = _kernels.funnels().group(
        event, table, row_bits, user, np.asarray(cols["ts"]), allowed
    )
    return _Rows(cols, chosen, starts, users, ts, bits)


def levels(
    txn: lmdb.Transaction,
    store: Store,
    tenant: Tenant,
    steps: Sequence[Step],
    from_us: int,
    to_us: int,
    window_us: int,
    order: str,
    members: BitMap | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(user ids, furthest step reached) of the users with a step-1 event in the range."""
    rows = _rows(txn, store, tenant, steps, from_us, to_us, members, False)
    level, _ = _kernels.funnels().run(order, rows.starts, rows.ts, rows.bits, len(steps), window_us)
    return rows.users, level


def run(
    txn: lmdb.Transaction,
    store: Store,
    tenant: Tenant,
    query: FunnelQuery,
    members: BitMap | None = None,
) -> FunnelResult:
    """Answer a validated query; `members` (interned user ids) restricts it to a cohort."""
    steps = _steps(query)
    from_us, to_us = parse_instant(query.from_), parse_instant(query.to)
    by_event = query.breakdown is not None and query.breakdown.source == "event"
    rows = _rows(txn, store, tenant, steps, from_us, to_us, members, by_event)
    window_us = query.conversion_window.seconds * 1_000_000
    level, delta = _kernels.funnels().run(query.order, rows.starts, rows.ts, rows.bits, len(steps),
                                     window_us)  # fmt: skip
    result = FunnelResult(
        order=query.order, from_=iso(from_us), to=iso(to_us),
        conversion_window_seconds=query.conversion_window.seconds, cohort_id=query.cohort_id,
    )  # fmt: skip
    result.steps, result.overall_conversion = _summarise(steps, level, delta)
    if query.breakdown is not None:
        first_rows = rows.chosen[rows.starts[:-1]]
        result.breakdown = _breakdown(
            txn, store, tenant, query.breakdown, steps, level, delta, rows.users,
            _first_step_rows(rows.starts, rows.bits, rows.chosen, first_rows), rows.cols,
        )  # fmt: skip
    return result


def _step_bits(
    txn: lmdb.Transaction,
    store: Store,
    prefix: bytes,
    steps: Sequence[Step],
    event: np.ndarray,
    props: list[bytes] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The steps each row matches, bit s for step s: (`table`, `row_bits`). Without property
    conditions a row's bits are `table[its event code]` and `row_bits` is empty (no array of
    one entry per row); with conditions, `row_bits` holds every row's bits."""
    codes = [dictionary.lookup(txn, store, prefix, dictionary.EVENT, s.event) for s in steps]
    known = [c for c in codes if c is not None]
    table = np.zeros(max(known, default=0) + 1, np.uint32)
    for s, (step, code) in enumerate(zip(steps, codes, strict=True)):
        if code is not None and not step.where:
            table[code] |= 1 << s
    conditioned = [
        (s, step, code) for s, (step, code) in enumerate(zip(steps, codes, strict=True))
        if code is not None and step.where
    ]  # fmt: skip
    if not conditioned:
        return table, np.zeros(0, np.uint32)
    bits = table[np.minimum(event, len(table) - 1)]
    bits[event >= len(table)] = 0
    assert props is not None
    for s, step, code in conditioned:
        rows = np.flatnonzero(event == code).tolist()
        keep = [r for r in rows if all_hold(step.where, properties(props[r]))]
        bits[np.asarray(keep, np.int64)] |= 1 << s
    return table, bits


def properties(raw: bytes) -> dict[str, Any]:
    return _props_decoder.decode(raw) if raw else {}


def _summarise(
    steps: Sequence[Step], level: np.ndarray, delta: np.ndarray
) -> tuple[list[StepResult], float]:
    out: list[StepResult] = []
    counts = [int((level >= s + 1).sum()) for s in range(len(steps))]
    for s, step in enumerate(steps):
        median = p90 = None
        if s > 0 and counts[s]:
            seconds = delta[level >= s + 1, s] / 1_000_000
            median, p90 = (round(float(q), 3) for q in np.quantile(seconds, [0.5, 0.9]))
        out.append(
            StepResult(
                step=s + 1,
                event=step.event,
                users=counts[s],
                conversion_from_first=_ratio(counts[s], counts[0]),
                conversion_from_previous=_ratio(counts[s], counts[s - 1] if s else counts[0]),
                median_seconds_to_convert=median,
                p90_seconds_to_convert=p90,
            )
        )
    return out, _ratio(counts[-1], counts[0])


def _ratio(a: int, b: int) -> float:
    return round(a / b, 6) if b else 0.0


def _first_step_rows(
    starts: np.ndarray, bits: np.ndarray, chosen: np.ndarray, fallback: np.ndarray
) -> np.ndarray:
    """Per user, the stored row of their first event matching step 1 (first touch)."""
    first = fallback.copy()
    is_first_step = (bits & 1).astype(bool)
    candidates = np.flatnonzero(is_first_step)
    owner = np.searchsorted(starts, candidates, side="right") - 1
    _, at = np.unique(owner, return_index=True)
    first[owner[at]] = chosen[candidates[at]]
    return first


def _breakdown(
    txn: lmdb.Transaction,
    store: Store,
    tenant: Tenant,
    breakdown: Breakdown,
    steps: Sequence[Step],
    level: np.ndarray,
    delta: np.ndarray,
    users: np.ndarray,
    first_rows: np.ndarray,
    cols: dict[str, Any],
) -> list[BreakdownGroup]:
    reached = np.flatnonzero(level >= 1)
    values: dict[bytes, Any] = {}
    keys = np.empty(len(level), object)
    if breakdown.source == "user":
        names = dictionary.strings(txn, store, tenant.prefix, dictionary.USER, users[reached])
        for i in reached.tolist():
            traits = profiles.traits_of(txn, store, tenant, names.get(int(users[i]), ""))
            keys[i] = _key(values, traits.get(breakdown.property))
    else:
        props = cols["props"]
        for i in reached.tolist():
            keys[i] = _key(values, properties(props[first_rows[i]]).get(breakdown.property))
    sizes: dict[bytes, int] = {}
    for i in reached.tolist():
        sizes[keys[i]] = sizes.get(keys[i], 0) + 1
    ranked = sorted(sizes, key=lambda key: (-sizes[key], key))
    top, rest = ranked[:TOP_BREAKDOWN_VALUES], set(ranked[TOP_BREAKDOWN_VALUES:])
    groups = []
    for key in top:
        mask = np.zeros(len(level), bool)
        mask[[i for i in reached.tolist() if keys[i] == key]] = True
        summary, overall = _summarise(steps, level[mask], delta[mask])
        groups.append(BreakdownGroup(values[key], False, summary, overall))
    if rest:
        mask = np.zeros(len(level), bool)
        mask[[i for i in reached.tolist() if keys[i] in rest]] = True
        summary, overall = _summarise(steps, level[mask], delta[mask])
        groups.append(BreakdownGroup("other", True, summary, overall))
    return groups


def _key(values: dict[bytes, Any], value: Any) -> bytes:
    key = codec.encode(value)
    values.setdefault(key, value)
    return key
