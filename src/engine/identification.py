"""Device identification: one call of the agent becomes one stored identification event.

Work is split in two. `prepare` runs in the request's thread: it parses the user agent, looks up
the IP, computes the signals that need no history and the features used for matching. The
`IdentifyDevice` operation runs in the writer's transaction, because matching must see every
earlier identification (two workers must not create two visitors for one device): it matches the
visitor, updates its record and indexes, computes velocity and scores, and stores the event.
"""

from __future__ import annotations

import os
import random
import secrets
import string
from typing import Any

import msgspec

from . import (
    calibration,
    linkage,
    lists,
    matching,
    pending_rows,
    publish,
    rule_store,
    storages,
    visitor_index,
    workspaces,
)
from .device import AgentRequest
from .ipintel import IpInfo, IpIntelligence
from .matching import Features
from .population import Population
from .scores import Scores, Velocity, compute
from .segments import NO_VALUE, SCHEMAS
from .signals import Signals, UserAgentInfo, evaluate
from .tenant import Tenant
from .timeutil import iso
from .velocity import IpCache, address_visitors, velocity_of
from .visitor_index import holders
from .visitor_records import (
    MAX_LINKED,
    DeviceProfile,
    EventSummary,
    VisitorRecord,
    band_index_key,
    decode_record,
    decode_view,
    doc_key,
    encode_record,
    exact_index_key,
    time_key,
    visitor_events_prefix,
    visitor_key,
)
from .writer import WriteContext

VISITOR_KIND = b"v"
COUNTRY_KIND = b"c"
PLATFORM_KIND = b"p"
BROWSER_KIND = b"b"
EVENT_TYPE_KIND = b"t"
CITY_KIND = b"y"
DEVICE_TYPE_KIND = b"d"
OS_KIND = b"o"
_ALPHABET = string.ascii_letters + string.digits
# A stored id the device still agrees with: the agent kept it, so it is this browser's own.
STORED_ID_CONFIDENCE = 0.995
_MAX_DEVICES = 20

# The `verdict` column: 0 when no rule was configured.
VERDICT_CODES = {None: 0, "allow": 1, "challenge": 2, "block": 3}
SIGNAL_BITS = {
    "bot": 1,
    "vpn": 2,
    "incognito": 4,
    "tampered": 8,
    "emulator": 16,
    "proxy": 32,
    "tor": 64,
    "rootedDevice": 128,
    "clonedApp": 256,
    "blocklisted": 512,
}


def signal_bits(s: Signals, blocklisted: bool) -> int:
    """The `signals` column: one bit per signal, as in SIGNAL_BITS."""
    return (
        s.bot.detected
        | s.vpn.detected << 1
        | s.incognito << 2
        | s.tampered << 3
        | s.emulator << 4
        | s.proxy << 5
        | s.tor << 6
        | s.rootedDevice << 7
        | s.clonedApp << 8
        | blocklisted << 9
    )


_json = msgspec.json.Encoder()


class ScreenSize(msgspec.Struct):
    w: int
    h: int


class Device(msgspec.Struct, omit_defaults=True):
    platform: str | None = None
    browser: str | None = None
    gpu: str | None = None
    type: str | None = None
    os: str | None = None
    screen: ScreenSize | None = None
    model: str | None = None
    manufacturer: str | None = None
    osVersion: str | None = None


class IpDocument(msgspec.Struct):
    address: str
    city: str | None
    country: str | None
    lat: float | None
    lng: float | None
    asn: int | None
    blocklisted: bool


class EventInfo(msgspec.Struct):
    type: str | None
    tag: dict[str, Any] | None


class IdentificationEvent(msgspec.Struct):
    """The document of GET /v1/events/{requestId}; field names as in the device API document."""

    requestId: str
    visitorId: str
    confidence: float
    visitorFound: bool
    firstSeenAt: str
    timestamp: str
    device: Device
    signals: Signals
    scores: Scores | None
    ip: IpDocument
    verdict: str | None
    matchedRule: dict[str, Any] | None
    event: EventInfo
    linkedId: str | None
    velocity: Velocity


class AgentAnswer(msgspec.Struct, forbid_unknown_fields=True):
    """What a public key gets; no other field, so it never reads as a full event document."""

    requestId: str
    visitorId: str
    confidence: float
    visitorFound: bool


def new_visitor_id() -> str:
    return "pv_" + "".join(secrets.choice(_ALPHABET) for _ in range(13))


def new_request_id(ts_us: int) -> str:
    # The microsecond timestamp first: ids sort by time, so stored documents append (see
    # visitor_records) instead of landing on random pages. The suffix only separates requests
    # of the same microsecond, so it comes from a pseudo-random generator, reseeded in every
    # forked worker, not from the system's: a system call inside the writer's transaction hands
    # the GIL to another thread while the store's write lock waits.
    return f"req_{ts_us:016d}{_suffixes.getrandbits(32):08x}"


_suffixes = random.Random()
os.register_at_fork(after_in_child=_suffixes.seed)  # two workers never share a sequence


class Prepared(msgspec.Struct):
    """Everything computed outside the writer."""

    request: AgentRequest
    features: Features
    keys: matching.Keys
    signals: Signals
    ua: UserAgentInfo
    ip: IpInfo
    device: Device
    received_us: int


def prepare(
    request: AgentRequest,
    ipintel: IpIntelligence,
    *,
    client_ip: str,
    header_ua: str | None,
    forwarded: bool,
    trusted_mobile: bool,
    received_us: int,
) -> Prepared:
    if not trusted_mobile:
        request.mobile = None  # a browser must not claim native-SDK facts
    c = request.components
    ip = ipintel.lookup(client_ip)
    signals, ua = evaluate(
        c,
        request.mobile,
        ip,
        header_ua=header_ua,
        forwarded=forwarded,
        vpn_provider=ipintel.vpn_provider(ip),
    )
    feats = matching.features(c, private=signals.incognito)
    mobile = request.mobile
    hints_mobile = c.clientHints.mobile if c.clientHints else None
    kind = "mobile" if (mobile or hints_mobile or ua.os in ("iOS", "Android")) else "desktop"
    if ua.device in ("iPad",) or "tablet" in ua.device.lower():
        kind = "tablet"
    device = Device(
        platform=(mobile.os if mobile and mobile.os else None) or _platform_name(ua, c.platform),
        browser=f"{ua.browser} {ua.major}".strip() if c.userAgent else None,
        gpu=(c.webgl.renderer or None) if c.webgl else None,
        type=kind,
        os=ua.os if c.userAgent else None,
        screen=ScreenSize(c.screen.w, c.screen.h) if c.screen else None,
        model=mobile.model or None if mobile else None,
        manufacturer=mobile.manufacturer or None if mobile else None,
        osVersion=mobile.osVersion or None if mobile else None,
    )
    return Prepared(
        request=request,
        features=feats,
        keys=matching.keys(feats),
        signals=signals,
        ua=ua,
        ip=ip,
        device=device,
        received_us=received_us,
    )


def _platform_name(ua: UserAgentInfo, platform: str) -> str | None:
    names = {"Mac OS X": "macOS", "Windows": "Windows", "iOS": "iOS", "Android": "Android",
             "Linux": "Linux", "Chrome OS": "ChromeOS", "Ubuntu": "Linux"}  # fmt: skip
    return names.get(ua.os) or (platform or None)


def _addresses(ctx: WriteContext) -> IpCache:
    """The writer's decoded address entries, shared by matching and velocity."""
    return ctx.caches.setdefault("addresses", {})


class IdentifyDevice:
    def __init__(self, tenant: Tenant, prepared: Prepared, scores_enabled: bool = True) -> None:
        self.tenant = tenant
        self.p = prepared
        self.scores_enabled = scores_enabled

    def apply(self, ctx: WriteContext) -> IdentificationEvent:
        p, prefix, txn, db = self.p, self.tenant.prefix, ctx.txn, ctx.store.visitors
        now = p.received_us
        record, raw, path = self._match(ctx)
        found = record is not None
        phone = linkage.is_phone(p.features)
        confidence = round(calibration.calibrated(path, phone, raw), 4)
        if record is None:
            record = VisitorRecord(
                id=new_visitor_id(), first_seen_us=now, last_seen_us=now, total=0,
                features=p.features, exact=None, bands=[], devices=[], linked=[], ips=[],
            )  # fmt: skip
        self._reindex(ctx, record, new_visitor=not found)
        record.screens = linkage.remember_screen(record.screens, record.features, p.features)
        record.features = p.features
        record.last_seen_us = now
        record.total += 1
        storages.remember(record, p.request.storageId, now)
        req = p.request
        if req.linkedId and req.linkedId not in record.linked and len(record.linked) < MAX_LINKED:
            record.linked.append(req.linkedId)
        self._remember_device(record, now)
        velocity = velocity_of(txn, db, prefix, record, p.ip.address, now, _addresses(ctx))
        txn.put(visitor_key(prefix, record.id), encode_record(record), db=db)

        blocklisted = p.ip.blocklisted
        scores = compute(
            p.signals, velocity, blocklisted=blocklisted, new_visitor=not found,
            linked=bool(req.linkedId),
        )  # fmt: skip
        request_id = new_request_id(now)
        event = IdentificationEvent(
            requestId=request_id,
            visitorId=record.id,
            confidence=confidence,
            visitorFound=found,
            firstSeenAt=iso(record.first_seen_us),
            timestamp=iso(now),
            device=p.device,
            signals=p.signals,
            scores=scores if self.scores_enabled and self._scored_plan(ctx) else None,
            ip=IpDocument(
                p.ip.address, p.ip.city, p.ip.country, p.ip.lat, p.ip.lng, p.ip.asn, blocklisted
            ),
            verdict=None,
            matchedRule=None,
            event=EventInfo(req.type, req.tag),
            linkedId=req.linkedId,
            velocity=velocity,
        )
        self._decide(ctx, event, now)
        self._store_event(ctx, event, scores, now)
        publish.on_identification(ctx, self.tenant, event)
        return event

    def _scored_plan(self, ctx: WriteContext) -> bool:
        """Scores are a pro-and-above feature; the plan is read in the transaction, so a plan
        change applies to the next identification."""
        return workspaces.plan_of(ctx, self.tenant.workspace_id) in rule_store.SCORE_PLANS

    def _decide(self, ctx: WriteContext, event: IdentificationEvent, now: int) -> None:
        """Rules in priority order: the first matching live rule sets the verdict and runs its
        side effects; monitor rules only count their matches."""
        prefix, txn, store = self.tenant.prefix, ctx.txn, ctx.store
        active = ctx.caches.setdefault("rules", rule_store.RuleCache()).active(txn, store, prefix)
        if not active.rules:
            return
        values = active.compiled.values(msgspec.to_builtins(event))
        members = lists.Membership(txn, store, self.tenant, now)
        event.verdict = "allow"
        decided = False
        for i in active.compiled.matching(values, members):
            rule = active.rules[i]
            if decided and rule.status == "live":
                continue
            rule_store.record_match(txn, store, prefix, rule.id, now)
            if rule.status == "monitor":
                continue
            decided = True
            event.verdict = rule.action.verdict
            event.matchedRule = {"id": rule.id, "name": rule.name, "priority": rule.priority}
            lists.apply_side_effects(ctx, self.tenant, rule.action.sideEffects, event.visitorId)

    def _match(self, ctx: WriteContext) -> tuple[VisitorRecord | None, float, calibration.Path]:
        """The visitor this device is (None: a new one), the matcher's probability that the
        answer is right, and how it was reached."""
        p, prefix, txn, db = self.p, self.tenant.prefix, ctx.txn, ctx.store.visitors
        stored_id, other_device = p.request.storedVisitorId, None
        if stored_id and stored_id.startswith("pv_"):
            raw = txn.get(visitor_key(prefix, stored_id), db=db)
            if raw is not None:
                record = decode_record(raw)
                if storages.contested(record, p.request.storageId):
                    other_device = record.id  # a look-alike answered its id: not this device
                elif linkage.same_device(p.features, record.features):
                    return record, STORED_ID_CONFIDENCE, "stored"
        keys = p.keys
        if keys.exact is None:  # too little reported to tell this device from others
            return None, matching.new_visitor_confidence(p.features), "new"
        # Visitors under the exact key, and those sharing enough bands to be this device
        # drifted (linkage.MIN_SHARED_BANDS).
        shared: dict[str, int] = dict.fromkeys(
            holders(txn, db, exact_index_key(prefix, keys.exact)), len(keys.bands)
        )
        for band in keys.bands:
            for vid in holders(txn, db, band_index_key(prefix, band)):
                shared[vid] = shared.get(vid, 0) + 1
        candidates = [
            vid
            for vid, bands in shared.items()
            if bands >= linkage.MIN_SHARED_BANDS and vid != other_device
        ]
        address = p.ip.address
        request = linkage.Request(
            p.features, keys, address,
            address_visitors(txn, db, prefix, address, p.received_us, _addresses(ctx)),
            Population(txn, db, prefix),
        )  # fmt: skip
        stored = {
            vid: raw
            for vid in candidates
            if (raw := txn.get(visitor_key(prefix, vid), db=db)) is not None
        }
        view, chance = linkage.decide(request, map(decode_view, stored.values()))
        if view is None:
            return None, chance, "new"
        return decode_record(stored[view.id]), chance, "linked"

    def _reindex(self, ctx: WriteContext, record: VisitorRecord, new_visitor: bool) -> None:
        p = self.p
        visitor_index.move(
            ctx.txn, ctx.store.visitors, self.tenant.prefix, record, p.features, p.keys,
            new_visitor=new_visitor,
        )  # fmt: skip

    def _remember_device(self, record: VisitorRecord, now: int) -> None:
        d, stamp = self.p.device, iso(now)
        for profile in record.devices:
            if (profile.platform, profile.browser, profile.gpu) == (d.platform, d.browser, d.gpu):
                profile.lastSeenAt = stamp
                return
        record.devices.append(DeviceProfile(d.platform, d.browser, d.gpu, stamp, stamp))
        del record.devices[:-_MAX_DEVICES]

    def _store_event(
        self, ctx: WriteContext, event: IdentificationEvent, scores: Scores, now: int
    ) -> None:
        prefix, txn, db = self.tenant.prefix, ctx.txn, ctx.store.idents
        rid = event.requestId
        txn.put(doc_key(prefix, rid), _json.encode(event), db=db)
        summary = EventSummary(
            event.visitorId, event.verdict, event.signals.bot.detected,
            event.signals.vpn.detected, event.confidence,
        )  # fmt: skip
        txn.put(time_key(prefix, now, rid), encode_record(summary), db=db)
        txn.put(
            visitor_events_prefix(prefix, event.visitorId) + now.to_bytes(8, "big") + rid.encode(),
            b"",
            db=ctx.store.visitors,
        )
        bits = signal_bits(event.signals, event.ip.blocklisted)
        intern = ctx.interner.intern

        def optional(kind: bytes, value: str | None) -> int:
            return NO_VALUE if value is None else intern(txn, prefix, kind, value)

        row = {
            "ts": now,
            "visitor": intern(txn, prefix, VISITOR_KIND, event.visitorId),
            "request": rid.encode(),
            "confidence": event.confidence,
            "signals": bits,
            "abuse": scores.abuse,
            "ato": scores.ato,
            "bot": scores.bot,
            "suspect": scores.suspect,
            "country": intern(txn, prefix, COUNTRY_KIND, event.ip.country or ""),
            "asn": event.ip.asn or 0,
            "platform": intern(txn, prefix, PLATFORM_KIND, event.device.platform or ""),
            "browser": intern(txn, prefix, BROWSER_KIND, event.device.browser or ""),
            "event_type": intern(txn, prefix, EVENT_TYPE_KIND, event.event.type or ""),
            "ip": event.ip.address.encode(),
            "linked": (event.linkedId or "").encode(),
            "verdict": VERDICT_CODES[event.verdict],
            "ips_1h": event.velocity.distinctIps1h,
            "ips_24h": event.velocity.distinctIps24h,
            "visitors_ip_1h": event.velocity.visitorsPerIp1h,
            "visitors_ip_24h": event.velocity.visitorsPerIp24h,
            "accounts": event.velocity.accountsPerVisitor,
            "found": int(event.visitorFound),
            "city": optional(CITY_KIND, event.ip.city),
            "device_type": optional(DEVICE_TYPE_KIND, event.device.type),
            "os": optional(OS_KIND, event.device.os),
        }
        # A pending row, not a segment per group: see pending_rows.
        values = [row[name] for name in SCHEMAS["identifications"]]
        pending_rows.append(txn, db, prefix, "identifications", now, rid.encode(), values)
        ctx.written.add((prefix, "identifications"))
