"""Behavioural cohorts: definitions, and their evaluation into roaring bitmaps of user ids.

A definition is a tree of AND/OR/NOT groups over three kinds of condition: how often a user did
an event (optionally with property conditions) in the last D days or between dates, whether a
user did a sequence of events in order within a window, and the user's traits. Each condition
evaluates to a bitmap of interned user ids (`dictionary.USER`), groups combine bitmaps, and NOT
is the difference from every known user. `evaluate` can be restricted to some users: that is how
ingestion keeps membership current without evaluating everyone again (cohort_store).
docs/cohorts.md has the semantics and the limits.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import lmdb
import msgspec
import numpy as np
from pyroaring import BitMap

from . import dictionary, funnels, profiles
from .errors import InvalidInput
from .events import Name
from .property_filters import Operator, PropertyFilter, PropertyName, holds, validate
from .scan import load
from .store import Store
from .tenant import Tenant
from .timeutil import parse_instant

DAY_US = 86_400_000_000
MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_SEQUENCE_STEPS = 5


class Window(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """`last_days` (a sliding window ending now) or `from`/`to` (fixed dates)."""

    last_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    to: str | None = None


class Count(msgspec.Struct, forbid_unknown_fields=True):
    operator: Literal["gte", "lte", "eq"] = "gte"
    value: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 1


class EventCondition(msgspec.Struct, tag="event", forbid_unknown_fields=True):
    event: Name
    count: Count = msgspec.field(default_factory=Count)
    where: list[PropertyFilter] = []
    window: Window = msgspec.field(default_factory=lambda: Window(last_days=30))


class SequenceCondition(msgspec.Struct, tag="sequence", forbid_unknown_fields=True):
    steps: Annotated[
        list[Name | funnels.Step], msgspec.Meta(min_length=2, max_length=MAX_SEQUENCE_STEPS)
    ]
    within: funnels.Window = msgspec.field(default_factory=lambda: funnels.Window(1, "day"))
    window: Window = msgspec.field(default_factory=lambda: Window(last_days=30))


class PropertyCondition(msgspec.Struct, tag="property", forbid_unknown_fields=True):
    property: PropertyName
    operator: Operator
    value: Any = None


class Group(msgspec.Struct, tag="group", forbid_unknown_fields=True):
    operator: Literal["AND", "OR", "NOT"]
    # NOT takes exactly one; checked in validate_definition.
    conditions: Annotated[
        list[Group | EventCondition | SequenceCondition | PropertyCondition],
        msgspec.Meta(min_length=1),
    ]


Condition = Group | EventCondition | SequenceCondition | PropertyCondition


def validate_definition(node: Condition, field: str = "definition", depth: int = 1) -> int:
    """Check what the decoder cannot; returns the number of conditions (leaves)."""
    if isinstance(node, Group):
        if depth > MAX_DEPTH:
            raise InvalidInput(f"Groups nest at most {MAX_DEPTH} deep.", field=field)
        if node.operator == "NOT" and len(node.conditions) != 1:
            raise InvalidInput("NOT takes one condition.", field=f"{field}.conditions")
        leaves = sum(
            validate_definition(c, f"{field}.conditions[{i}]", depth + 1)
            for i, c in enumerate(node.conditions)
        )
        if leaves > MAX_CONDITIONS:
            raise InvalidInput(f"At most {MAX_CONDITIONS} conditions.", field=field)
        return leaves
    if isinstance(node, PropertyCondition):
        try:
            validate([PropertyFilter(node.property, node.operator, node.value)], "")
        except InvalidInput as exc:  # its field is "[0].<name>": name it from this condition
            raise InvalidInput(exc.message, field=field + (exc.field or "")[3:]) from None
    elif isinstance(node, EventCondition):
        validate(node.where, f"{field}.where")
        _bounds(node.window, f"{field}.window", 0)
    else:
        for i, step in enumerate(node.steps):
            if isinstance(step, funnels.Step):
                validate(step.where, f"{field}.steps[{i}].where")
        _bounds(node.window, f"{field}.window", 0)
    return 1


def _bounds(window: Window, field: str, now: int) -> tuple[int, int]:
    """[from, to) of a window at `now`."""
    if window.last_days is not None:
        if window.from_ is not None or window.to is not None:
            raise InvalidInput("Give `last_days` or `from`/`to`, not both.", field=field)
        return now - window.last_days * DAY_US, now + 1
    if window.from_ is None or window.to is None:
        raise InvalidInput("A window needs `last_days`, or both `from` and `to`.", field=field)
    try:
        low, high = parse_instant(window.from_), parse_instant(window.to)
    except ValueError:
        raise InvalidInput("Window dates must be ISO 8601.", field=field) from None
    if low >= high:
        raise InvalidInput("'from' must be before 'to'.", field=f"{field}.to")
    return low, high


def slides(node: Condition) -> bool:
    """Whether membership can change with time alone (a `last_days` window)."""
    if isinstance(node, Group):
        return any(slides(c) for c in node.conditions)
    if isinstance(node, PropertyCondition):
        return False
    return node.window.last_days is not None


def watched(node: Condition) -> tuple[set[str], bool]:
    """The event names whose ingestion can change membership, and whether traits can."""
    if isinstance(node, Group):
        names: set[str] = set()
        traits = False
        for child in node.conditions:
            n, t = watched(child)
            names |= n
            traits = traits or t
        return names, traits
    if isinstance(node, PropertyCondition):
        return set(), True
    if isinstance(node, EventCondition):
        return {node.event}, False
    return {s if isinstance(s, str) else s.event for s in node.steps}, False


class _Context:
    """One evaluation: a snapshot, the moment `now`, and optionally the users it is limited to."""

    def __init__(
        self, txn: lmdb.Transaction, store: Store, tenant: Tenant, now: int, users: BitMap | None
    ) -> None:
        self.txn, self.store, self.tenant, self.now, self.users = txn, store, tenant, now, users
        self._universe: BitMap | None = None

    @property
    def universe(self) -> BitMap:
        """Every user the tenant knows (an interned user id), within the limit if any."""
        if self._universe is None:
            if self.users is not None:
                self._universe = BitMap(self.users)
            else:
                known = dictionary.size(self.txn, self.store, self.tenant.prefix, dictionary.USER)
                self._universe = BitMap(range(known))
        return self._universe

    def rows(self, window: Window, names: list[str]) -> dict[str, Any]:
        low, high = _bounds(window, "window", self.now)
        cols = load(self.txn, self.store, self.tenant.prefix, "events", names, low, high)
        if self.users is not None and len(cols["ts"]):
            limit = np.fromiter(self.users, np.int64, count=len(self.users))
            keep = np.flatnonzero(np.isin(cols["user"], limit))
            cols = {k: (v[keep] if isinstance(v, np.ndarray) else [v[i] for i in keep.tolist()])
                    for k, v in cols.items()}  # fmt: skip
        return cols


def evaluate(
    txn: lmdb.Transaction,
    store: Store,
    tenant: Tenant,
    definition: Condition,
    now: int,
    users: BitMap | None = None,
) -> BitMap:
    """The members among `users` (default: every known user) at `now`."""
    return _eval(_Context(txn, store, tenant, now, users), definition)


def _eval(ctx: _Context, node: Condition) -> BitMap:
    if isinstance(node, Group):
        parts = [_eval(ctx, c) for c in node.conditions]
        if node.operator == "NOT":
            return ctx.universe - parts[0]
        out = parts[0]
        for part in parts[1:]:
            out = (out & part) if node.operator == "AND" else (out | part)
        return out
    if isinstance(node, PropertyCondition):
        return _by_traits(ctx, node)
    if isinstance(node, EventCondition):
        return _by_count(ctx, node)
    return _by_sequence(ctx, node)


def _by_count(ctx: _Context, node: EventCondition) -> BitMap:
    code = dictionary.lookup(ctx.txn, ctx.store, ctx.tenant.prefix, dictionary.EVENT, node.event)
    counted = BitMap()
    counts = np.zeros(0, np.int64)
    users = np.zeros(0, np.int64)
    if code is not None:
        cols = ctx.rows(node.window, ["user", "event", *(["props"] if node.where else [])])
        rows = np.flatnonzero(np.asarray(cols["event"]) == code)
        if node.where:
            props = cols["props"]
            rows = np.asarray([r for r in rows.tolist()
                               if all(holds(f, funnels.properties(props[r])) for f in node.where)],
                              np.int64)  # fmt: skip
        users, counts = np.unique(np.asarray(cols["user"])[rows], return_counts=True)
        counted = BitMap(users.tolist())
    op, n = node.count.operator, node.count.value
    keep = counts >= n if op == "gte" else counts <= n if op == "lte" else counts == n
    members = BitMap(users[keep].tolist())
    if (op == "lte") or (op == "eq" and n == 0) or (op == "gte" and n == 0):
        members |= ctx.universe - counted  # users with no such event did it 0 times
    return members & ctx.universe


def _by_sequence(ctx: _Context, node: SequenceCondition) -> BitMap:
    low, high = _bounds(node.window, "window", ctx.now)
    steps = [funnels.Step(s) if isinstance(s, str) else s for s in node.steps]
    users, level = funnels.levels(
        ctx.txn, ctx.store, ctx.tenant, steps, low, high, node.within.seconds * 1_000_000,
        "ordered", ctx.users,
    )  # fmt: skip
    return BitMap(users[level == len(steps)].tolist())


def _by_traits(ctx: _Context, node: PropertyCondition) -> BitMap:
    condition = PropertyFilter(node.property, node.operator, node.value)
    out = BitMap()
    prefix = ctx.tenant.prefix
    if ctx.users is not None:
        names = dictionary.strings(ctx.txn, ctx.store, prefix, dictionary.USER, ctx.users)
        for ident, user_id in names.items():
            if holds(condition, profiles.traits_of(ctx.txn, ctx.store, ctx.tenant, user_id)):
                out.add(ident)
        return out
    profiled = BitMap()
    for user_id, traits in profiles.all_traits(ctx.txn, ctx.store, ctx.tenant):
        ident = dictionary.lookup(ctx.txn, ctx.store, prefix, dictionary.USER, user_id)
        if ident is None:
            continue
        profiled.add(ident)
        if holds(condition, traits):
            out.add(ident)
    # Users never identified have no traits: they match what a missing property matches.
    if holds(condition, {}):
        out |= ctx.universe - profiled
    return out
