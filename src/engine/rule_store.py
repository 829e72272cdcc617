"""Rules at rest: records, their compiled programs, and the per-process cache of live rules.

Records live in the `lists` database next to the lists they name (`R` rule record, `S` match
statistics, `V` rules version). Every change bumps the version in the same transaction; an
identification reads the version in its own transaction and recompiles its cache when it moved,
so a committed rule change governs the very next identification in every worker process.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

import lmdb
import msgspec

from . import rules, workspaces
from .errors import InvalidInput, NotFound
from .rule_program import Program, compile_condition
from .rule_scalar import RuleSet
from .rules import Verdict
from .store import Store
from .tenant import Tenant
from .timeutil import iso
from .writer import WriteContext

Status = Literal["live", "monitor", "draft", "paused"]
SideEffectType = Literal["addToList", "removeFromList", "webhook", "slack", "log"]
LIST_EFFECTS = ("addToList", "removeFromList")  # these name a visitor list in `list`
URL_EFFECTS = ("webhook", "slack")  # these may name a target in `url`


class SideEffect(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    type: SideEffectType
    list: str | None = None
    url: str | None = None


class Action(msgspec.Struct, forbid_unknown_fields=True):
    verdict: Verdict
    sideEffects: list[SideEffect] = []


class RuleIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    conditions: dict[str, Any]
    action: Action
    priority: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | None = None
    status: Status = "draft"


class RulePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    conditions: dict[str, Any] | None = None
    action: Action | None = None
    priority: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | None = None
    status: Status | None = None
    sideEffects: list[SideEffect] | None = None


class RuleRecord(msgspec.Struct):
    id: str
    name: str
    conditions: dict[str, Any]
    action: Action
    priority: int
    status: Status
    created_us: int
    updated_us: int
    program: Program


class Stats(msgspec.Struct):
    matchCount: int
    lastMatchAt: str | None


class RuleOut(msgspec.Struct):
    id: str
    name: str
    status: Status
    priority: int
    conditions: dict[str, Any]
    action: Action
    sideEffects: list[SideEffect]
    stats: Stats
    createdAt: str
    updatedAt: str


class RuleWritten(msgspec.Struct):
    id: str
    name: str
    priority: int
    status: Status
    createdAt: str
    updatedAt: str
    propagated: bool
    propagationMs: float


class ConditionSummary(msgspec.Struct):
    operator: str
    count: int  # leaves


class RuleSummary(msgspec.Struct):
    """A rule as GET /v1/rules lists it."""

    id: str
    name: str
    status: Status
    priority: int
    conditions: ConditionSummary
    action: Verdict
    createdAt: str


class RulePage(msgspec.Struct):
    data: list[RuleSummary]
    total: int


class RuleDeleted(msgspec.Struct):
    deleted: bool
    ruleId: str


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(RuleRecord)
_stats_dec = msgspec.msgpack.Decoder(tuple[int, int])


def _rule_key(prefix: bytes, rule_id: str) -> bytes:
    return b"R" + prefix + rule_id.encode()


def _stats_key(prefix: bytes, rule_id: str) -> bytes:
    return b"S" + prefix + rule_id.encode()


def _version_key(prefix: bytes) -> bytes:
    return b"V" + prefix


def version(txn: lmdb.Transaction, store: Store, prefix: bytes) -> int:
    raw = txn.get(_version_key(prefix), db=store.lists)
    return int.from_bytes(raw, "little") if raw else 0


def _bump(txn: lmdb.Transaction, store: Store, prefix: bytes) -> None:
    txn.put(
        _version_key(prefix),
        (version(txn, store, prefix) + 1).to_bytes(8, "little"),
        db=store.lists,
    )


def all_rules(txn: lmdb.Transaction, store: Store, prefix: bytes) -> list[RuleRecord]:
    head = b"R" + prefix
    out = []
    with txn.cursor(db=store.lists) as cur:
        if cur.set_range(head):
            for key, value in cur:
                if not key.startswith(head):
                    break
                out.append(_dec.decode(value))
    return sorted(out, key=lambda r: (r.priority, r.created_us))


def get(txn: lmdb.Transaction, store: Store, prefix: bytes, rule_id: str) -> RuleRecord:
    raw = txn.get(_rule_key(prefix, rule_id), db=store.lists)
    if raw is None:
        raise NotFound(f"No rule {rule_id}.", field="ruleId")
    return _dec.decode(raw)


def _list_types(txn: lmdb.Transaction, store: Store, tenant: Tenant) -> dict[str, str]:
    from .lists import all_lists

    return {r.name: r.type for r in all_lists(txn, store, tenant)}


def _check_side_effects(effects: list[SideEffect], names: dict[str, str], where: str) -> None:
    for i, effect in enumerate(effects):
        at = f"{where}[{i}]"
        if effect.type in LIST_EFFECTS:
            if not effect.list:
                raise InvalidInput("'list' is required for this side effect.", field=f"{at}.list")
            if effect.list not in names:
                raise InvalidInput(f"No list named {effect.list!r}.", field=f"{at}.list")
            if names[effect.list] != "visitor":
                raise InvalidInput(
                    "Only visitor lists can take the matched visitor.", field=f"{at}.list"
                )


def out(record: RuleRecord, stats: Stats) -> RuleOut:
    return RuleOut(
        record.id, record.name, record.status, record.priority, record.conditions, record.action,
        record.action.sideEffects, stats, iso(record.created_us), iso(record.updated_us),
    )  # fmt: skip


def stats_of(txn: lmdb.Transaction, store: Store, prefix: bytes, rule_id: str) -> Stats:
    raw = txn.get(_stats_key(prefix, rule_id), db=store.lists)
    if raw is None:
        return Stats(0, None)
    count, last = _stats_dec.decode(raw)
    return Stats(count, iso(last))


def record_match(
    txn: lmdb.Transaction, store: Store, prefix: bytes, rule_id: str, now: int
) -> None:
    key = _stats_key(prefix, rule_id)
    raw = txn.get(key, db=store.lists)
    count = _stats_dec.decode(raw)[0] if raw is not None else 0
    txn.put(key, _enc.encode((count + 1, now)), db=store.lists)


def _written(record: RuleRecord, received_us: int, now: int) -> RuleWritten:
    return RuleWritten(
        record.id, record.name, record.priority, record.status, iso(record.created_us),
        iso(record.updated_us), True, round((now - received_us) / 1000, 3),
    )  # fmt: skip


SCORE_PLANS = ("pro", "scale", "enterprise")  # plans whose identifications carry `scores`


def _check_plan(txn: lmdb.Transaction, store: Store, tenant: Tenant, program: Program) -> None:
    """Rules on scores.* need a plan that computes scores: refused with a clear 400 otherwise."""
    scored = [f for f in program.fields if f.startswith("scores.")]
    if not scored:
        return
    plan = workspaces.get(txn, store, tenant.workspace_id).plan
    if plan not in SCORE_PLANS:
        raise InvalidInput(
            f"'{scored[0]}' needs the pro plan or above (scores are not computed on {plan}).",
            field="conditions",
        )


class CreateRule:
    def __init__(self, tenant: Tenant, request: RuleIn, received_us: int) -> None:
        self.tenant, self.request, self.received_us = tenant, request, received_us

    def apply(self, ctx: WriteContext) -> RuleWritten:
        txn, store, prefix, req = ctx.txn, ctx.store, self.tenant.prefix, self.request
        names = _list_types(txn, store, self.tenant)
        rules.validate(req.conditions, names)
        _check_side_effects(req.action.sideEffects, names, "action.sideEffects")
        existing = all_rules(txn, store, prefix)
        priority = req.priority
        if priority is None:
            priority = max((r.priority for r in existing), default=0) + 1
        program = compile_condition(req.conditions)
        _check_plan(txn, store, self.tenant, program)
        record = RuleRecord(
            f"rul_{secrets.token_hex(6)}", req.name, req.conditions, req.action, priority,
            req.status, ctx.now_us, ctx.now_us, program,
        )  # fmt: skip
        txn.put(_rule_key(prefix, record.id), _enc.encode(record), db=store.lists)
        _bump(txn, store, prefix)
        return _written(record, self.received_us, ctx.now_us)


class UpdateRule:
    def __init__(self, tenant: Tenant, rule_id: str, patch: RulePatch, received_us: int) -> None:
        self.tenant, self.rule_id, self.patch, self.received_us = (
            tenant,
            rule_id,
            patch,
            received_us,
        )

    def apply(self, ctx: WriteContext) -> RuleWritten:
        txn, store, prefix, p = ctx.txn, ctx.store, self.tenant.prefix, self.patch
        raw = txn.get(_rule_key(prefix, self.rule_id), db=store.lists)
        if raw is None:
            raise NotFound(f"No rule {self.rule_id}.", field="ruleId")
        record = _dec.decode(raw)
        names = _list_types(txn, store, self.tenant)
        if p.conditions is not None:
            rules.validate(p.conditions, names)
            record.conditions = p.conditions
            record.program = compile_condition(p.conditions)
            _check_plan(txn, store, self.tenant, record.program)
        if p.action is not None:
            _check_side_effects(p.action.sideEffects, names, "action.sideEffects")
            record.action = p.action
        if p.sideEffects is not None:
            _check_side_effects(p.sideEffects, names, "sideEffects")
            record.action = Action(record.action.verdict, p.sideEffects)
        for name in ("name", "priority", "status"):
            value = getattr(p, name)
            if value is not None:
                setattr(record, name, value)
        record.updated_us = ctx.now_us
        txn.put(_rule_key(prefix, record.id), _enc.encode(record), db=store.lists)
        _bump(txn, store, prefix)
        return _written(record, self.received_us, ctx.now_us)


class DeleteRule:
    def __init__(self, tenant: Tenant, rule_id: str) -> None:
        self.tenant, self.rule_id = tenant, rule_id

    def apply(self, ctx: WriteContext) -> RuleDeleted:
        txn, store, prefix = ctx.txn, ctx.store, self.tenant.prefix
        if txn.get(_rule_key(prefix, self.rule_id), db=store.lists) is None:
            raise NotFound(f"No rule {self.rule_id}.", field="ruleId")
        txn.delete(_rule_key(prefix, self.rule_id), db=store.lists)
        txn.delete(_stats_key(prefix, self.rule_id), db=store.lists)
        _bump(txn, store, prefix)
        return RuleDeleted(True, self.rule_id)


class ActiveRules(msgspec.Struct):
    """The live and monitor rules of a tenant in priority order, compiled together."""

    rules: list[RuleRecord]
    compiled: RuleSet


class RuleCache:
    """The active rules of each tenant, reloaded when its rules version moves."""

    def __init__(self) -> None:
        self._cache: dict[bytes, tuple[int, ActiveRules]] = {}

    def active(self, txn: lmdb.Transaction, store: Store, prefix: bytes) -> ActiveRules:
        current = version(txn, store, prefix)
        cached = self._cache.get(prefix)
        if cached is not None and cached[0] == current:
            return cached[1]
        rules = [r for r in all_rules(txn, store, prefix) if r.status in ("live", "monitor")]
        active = ActiveRules(rules, RuleSet([r.program for r in rules]))
        self._cache[prefix] = (current, active)
        return active
