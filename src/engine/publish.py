"""What happens in the store becomes webhook deliveries, in the transaction that stores it.

`on_identification` runs at the end of the identification write operation: `identification`
and `rule_match` events for subscribed endpoints whose filters pass, plus the `webhook` and
`slack` side effects of the rule that decided. `on_list_update` runs where list entries change.
Payload bodies are encoded once per event and shared by every endpoint that receives them.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

import msgspec

from . import outbox, rule_store
from .tenant import Tenant
from .timeutil import iso
from .webhooks import EndpointCache, Filters, WebhookRecord
from .writer import WriteContext

if TYPE_CHECKING:
    from .identification import IdentificationEvent
    from .lists import ListRecord

log = logging.getLogger("signalpost.webhooks")


class Envelope(msgspec.Struct):
    """The payload every endpoint receives, as the device API document shows it."""

    event: str
    timestamp: str
    data: Any


class RuleMatchData(msgspec.Struct):
    requestId: str
    visitorId: str
    verdict: str | None
    rule: dict[str, Any]
    signals: Any
    ip: Any
    event: Any
    linkedId: str | None
    timestamp: str


class ListUpdateData(msgspec.Struct):
    listId: str
    listName: str
    listType: str
    added: list[str]
    removed: list[str]
    entryCount: int
    source: str  # "api" (PATCH /v1/lists/{id}) or "rule" (a rule side effect)


class SlackMessage(msgspec.Struct):
    text: str


_json = msgspec.json.Encoder()


def _endpoints(ctx: WriteContext, prefix: bytes) -> list[WebhookRecord]:
    cache = ctx.caches.get("webhooks")
    if cache is None:
        cache = ctx.caches["webhooks"] = EndpointCache()
    return cache.get(ctx.txn, ctx.store, prefix)


def passes(filters: Filters, verdict: str | None, rule_id: str | None, bot: bool) -> bool:
    """Whether an event with these fields passes an endpoint's filters."""
    if filters.verdict is not None and verdict not in filters.verdict:
        return False
    if filters.ruleId is not None and rule_id not in filters.ruleId:
        return False
    return filters.botDetected is None or filters.botDetected == bot


def slack_endpoint_id(url: str | None) -> str:
    """Slack targets are not registered endpoints; their id is derived from the URL."""
    return "slk_" + hashlib.sha256((url or "").encode()).hexdigest()[:12]


def _rule_effects(ctx: WriteContext, prefix: bytes, rule_id: str) -> list[rule_store.SideEffect]:
    cache = ctx.caches.get("rules")
    if cache is None:
        return []
    for rule in cache.active(ctx.txn, ctx.store, prefix).rules:
        if rule.id == rule_id:
            return [e for e in rule.action.sideEffects if e.type in ("webhook", "slack")]
    return []


def _esc(text: object) -> str:
    """Slack's escaping: the event type comes from the browser, so from anyone; unescaped it
    could ping a channel (`<!channel>`) or plant a link in the message."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_text(event: IdentificationEvent, rule: dict[str, Any]) -> str:
    s, ip, device = event.signals, event.ip, event.device
    where = ", ".join(x for x in (ip.city, ip.country) if x) or "unknown location"
    on = " on ".join(x for x in (device.browser, device.platform) if x) or "unknown device"
    flags = [name for name, on_ in (("bot", s.bot.detected), ("VPN", s.vpn.detected)) if on_]
    lines = [
        f":rotating_light: Rule *{_esc(rule['name'])}* matched: verdict *{event.verdict}*",
        f"Visitor `{event.visitorId}` · request `{event.requestId}`",
        f"IP {ip.address} ({_esc(where)}) · {_esc(on)}",
    ]
    if event.event.type:
        lines.append(f"Event type: {_esc(event.event.type)}")
    if flags:
        lines.append("Signals: " + ", ".join(flags))
    return "\n".join(lines)


def on_identification(ctx: WriteContext, tenant: Tenant, event: IdentificationEvent) -> None:
    prefix = tenant.prefix
    endpoints = _endpoints(ctx, prefix)
    matched = event.matchedRule
    if not endpoints and matched is None:
        return  # the common case with no webhook configured: one key read in all
    effects = _rule_effects(ctx, prefix, matched["id"]) if matched else []
    if not endpoints and not effects:
        return
    txn, store, now = ctx.txn, ctx.store, ctx.now_us
    stamp = iso(now)
    rule_id = matched["id"] if matched else None
    bot = event.signals.bot.detected
    rid = event.requestId
    bodies: dict[str, bytes] = {}

    def body(kind: str) -> bytes:
        if kind not in bodies:
            data = RuleMatchData(
                rid, event.visitorId, event.verdict, matched or {}, event.signals, event.ip,
                event.event, event.linkedId, event.timestamp,
            )  # fmt: skip
            bodies[kind] = _json.encode(Envelope(kind, stamp, data))
        return bodies[kind]

    told: set[str] = set()  # endpoints that already get this rule_match
    for record in endpoints:
        if record.status != "active" or not passes(record.filters, event.verdict, rule_id, bot):
            continue
        ek = outbox.endpoint_key(prefix, record.id)
        if "identification" in record.events:
            # The payload's data is the identification document stored beside it.
            outbox.enqueue(txn, store, ek, "webhook", "identification", b"", now, ref=rid)
        if matched is not None and "rule_match" in record.events:
            outbox.enqueue(txn, store, ek, "webhook", "rule_match", body("rule_match"), now)
            told.add(record.id)
    for effect in effects:
        if effect.type == "slack":
            ek = outbox.endpoint_key(prefix, slack_endpoint_id(effect.url))
            text = _json.encode(SlackMessage(_slack_text(event, matched or {})))
            outbox.enqueue(txn, store, ek, "slack", "rule_match", text, now, effect.url)
            continue
        targets = [
            r
            for r in endpoints
            if r.status == "active" and (effect.url is None or r.url == effect.url)
        ]
        if effect.url is not None and not targets:
            log.warning("webhook side effect names no active webhook: %s", effect.url)
        for record in targets:
            if record.id not in told:
                told.add(record.id)
                ek = outbox.endpoint_key(prefix, record.id)
                outbox.enqueue(txn, store, ek, "webhook", "rule_match", body("rule_match"), now)


def on_list_update(
    ctx: WriteContext,
    tenant: Tenant,
    record: ListRecord,
    added: list[str],
    removed: list[str],
    source: str,
) -> None:
    endpoints = _endpoints(ctx, tenant.prefix)
    if not endpoints or not (added or removed):
        return
    body = b""
    for endpoint in endpoints:
        if endpoint.status != "active" or "list_update" not in endpoint.events:
            continue
        if not body:
            data = ListUpdateData(
                record.id, record.name, record.type, added, removed, record.entry_count, source
            )
            body = _json.encode(Envelope("list_update", iso(ctx.now_us), data))
        ek = outbox.endpoint_key(tenant.prefix, endpoint.id)
        outbox.enqueue(ctx.txn, ctx.store, ek, "webhook", "list_update", body, ctx.now_us)
