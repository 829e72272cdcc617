"""A kill -9 harness for the real server, in the manner of Jepsen.

Client threads drive every kind of write at once (events, batches, traits, identifications,
visitor deletions, rules, lists, webhooks, cohorts, auto-discovery triggers) while compaction,
cohort refreshes, discovery runs and webhook deliveries are in progress. At seeded moments,
counted in acknowledged writes, the whole server (granian workers and the delivery process) is
killed with SIGKILL and started again on the same data directory.

Every write is recorded as acknowledged (a 2xx answer arrived) or unknown (the connection
dropped). Between a kill and the restart the profiles are read from the store at rest; after
each restart, with the writers held, the server is checked against the record: acknowledged
writes present exactly once, acknowledged deletions staying deleted, unacknowledged writes
whole or absent. At the end, every acknowledged identification and list change must have
reached the HTTPS receiver at least once.

The server runs from a copy of `src/` taken when the run starts: the checkout may be edited
while a run goes on, and every restart must start the same code.

`run_crash` returns a JSON-ready summary whose `defects` list is empty when nothing was wrong.
Used by tests/e2e/test_crash_kills.py and benchmarks/crash.py.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from _device_support import CHROME_UA, COMPONENTS
from _webhook_support import Answer, Received, Receiver

import api
from api.process import ServerProcess, cli
from engine import CompactionConfig, Engine, EngineConfig, WebhookConfig
from engine.config import DiscoveryConfig
from engine.errors import NotFound
from engine.tenant import Tenant

ACKED, UNKNOWN, UNSENT, REFUSED = "acked", "unknown", "unsent", "refused"
EVENT_NAMES = ("signup", "view", "export", "share", "invite")
USERS = 150
PRIMARY = "/hook"
RETRY_SCHEDULE = (0, 0.3, 1, 2, 4, 8, 15, 30)
DELIVERY_TIMEOUT = 5.0
# How the writers are spread: one thread per kind, two for identifications.
WRITERS = ("events", "batches", "traits", "devices-a", "devices-b", "config")
REST_CONFIG = EngineConfig(
    webhooks=WebhookConfig(deliver=False),
    compaction=CompactionConfig(enabled=False),
    discovery=DiscoveryConfig(enabled=False),
)


@dataclass(frozen=True)
class CrashConfig:
    kills: int = 20
    seed: int = 0
    workers: int = 2
    # A kill comes after a seeded number of acknowledged writes in this range...
    min_acks: int = 60
    max_acks: int = 400
    # ...or, this often, within the first few: while the restarted server catches up.
    early_share: float = 0.15
    # Cohorts follow writes "within about a second" (docs/cohorts.md): after this long a pass
    # notes the refresh as late; the last pass waits `converge_seconds` before calling the
    # membership lost (past the compactor's 30 s tick).
    refresh_seconds: float = 3.0
    converge_seconds: float = 45.0
    settle_seconds: float = 90.0
    verbose: bool = False  # progress lines on stderr


class HarnessError(RuntimeError):
    pass


# -- findings --------------------------------------------------------------------------------


class Findings:
    """Product defects (something acknowledged lost, duplicated, half-written or come back;
    a 5xx) and observations (a documented behaviour not met, nothing lost), each reported once
    with the kill after which it was first seen and how often it was seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
            "defects": {},
            "observations": {},
        }
        self.kills = 0

    def defect(self, kind: str, key: str, detail: Any) -> None:
        self._note("defects", kind, key, detail)

    def observe(self, kind: str, key: str, detail: Any) -> None:
        self._note("observations", kind, key, detail)

    def _note(self, table: str, kind: str, key: str, detail: Any) -> None:
        with self._lock:
            found = self._found[table].get((kind, key))
            if found is None:
                entry = {"kind": kind, "key": key, "detail": detail, "after_kill": self.kills}
                self._found[table][(kind, key)] = entry | {"seen": 1}
            else:
                found["seen"] += 1

    def defects(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._found["defects"].values())

    def observations(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._found["observations"].values())


# -- HTTP ------------------------------------------------------------------------------------


@dataclass
class Reply:
    outcome: str
    status: int | None = None
    body: Any = None
    # The connection failed: the server is gone, the writer waits for the next one.
    transport: bool = False


@dataclass
class Op:
    label: str
    method: str
    path: str
    body: Any
    done: Callable[[Reply], None]
    expect: tuple[int, ...] = ()


def send(client: httpx.Client, op: Op, findings: Findings) -> Reply:
    try:
        answer = client.request(op.method, op.path, json=op.body)
    except (httpx.ConnectError, httpx.ConnectTimeout):
        return Reply(UNSENT, transport=True)
    except httpx.TransportError:
        return Reply(UNKNOWN, transport=True)
    if 200 <= answer.status_code < 300:
        return Reply(ACKED, answer.status_code, answer.json())
    if answer.status_code in op.expect:
        return Reply(REFUSED, answer.status_code)
    findings.defect(
        "http_status", f"{op.label} {answer.status_code}", f"{op.path}: {answer.text[:300]}"
    )
    return Reply(UNKNOWN if answer.status_code >= 500 else REFUSED, answer.status_code)


def iso_ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


# -- the gate that holds writers while the server is down or being checked -------------------


class Gate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = False
        self._stopping = False
        self.generation = 0
        self.parked = 0

    def enter(self, stale: int | None) -> int | None:
        """Wait until the gate is open on a server other than `stale`; None when stopping."""
        with self._cond:
            self.parked += 1
            self._cond.notify_all()
            while not self._stopping and (not self._open or self.generation == stale):
                self._cond.wait()
            self.parked -= 1
            return None if self._stopping else self.generation

    def open(self) -> None:
        with self._cond:
            self.generation += 1
            self._open = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._open = False

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def wait_parked(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.parked < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HarnessError(f"only {self.parked} of {count} writers stopped")
                self._cond.wait(left)


# -- what was written ------------------------------------------------------------------------


@dataclass
class Event:
    user: str
    name: str
    batch: int | None = None
    acked: bool = False
    unknown: int = 0


@dataclass
class Device:
    number: int
    components: dict[str, Any]
    planned: int
    visitor: str | None = None
    requests: list[str] = field(default_factory=list)  # acknowledged identifications
    unknown: int = 0
    deletion: str | None = None  # None, UNKNOWN or ACKED
    deleted_at: float = 0.0
    unchecked: list[str] = field(default_factory=list)  # documents not read back yet


@dataclass
class Thing:
    """A rule, list, webhook or cohort: each field's history of (value, outcome)."""

    kind: str
    name: str
    created: str
    id: str | None = None
    fields: dict[str, list[tuple[Any, str]]] = field(default_factory=dict)
    deletion: str | None = None
    entries: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # lists only
    fixed: bool = False  # set up by the harness, never changed by the writers

    def allowed(self, name: str) -> list[Any]:
        """The last acknowledged value and every unknown one written after it."""
        history = self.fields[name]
        start = max((i for i, (_, o) in enumerate(history) if o == ACKED), default=0)
        return [value for value, _ in history[start:]]

    def entry_bounds(self) -> tuple[int, int]:
        """How many entries a list must and may hold."""
        must = may = 0
        for ops in self.entries.values():
            states = _presence(ops)
            must += states == {True}
            may += True in states
        return must, may


def _presence(ops: list[tuple[str, str]]) -> set[bool]:
    """Whether an entry may be present after its add (and maybe its remove)."""
    states = {False}
    for verb, outcome in ops:
        after = verb == "add"
        states = {after} if outcome == ACKED else states | {after}
    return states


@dataclass
class Patch:
    list_id: str
    marker: str  # the first added entry, unique: finds the delivery of this change
    outcome: str


class Ledger:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.acks = 0
        self.counts: Counter[tuple[str, str]] = Counter()
        self.events: dict[str, Event] = {}
        self.batches: list[tuple[list[str], str]] = []
        self.traits: dict[str, list[tuple[int, str]]] = {}
        self.devices: list[Device] = []
        self.things: list[Thing] = []
        self.patches: list[Patch] = []
        self.runs: set[str] = set()

    def count(self, label: str, outcome: str) -> None:
        with self._cond:
            self.counts[(label, outcome)] += 1
            if outcome == ACKED:
                self.acks += 1
                self._cond.notify_all()

    def wait_acks(self, target: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.acks < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def add(self, container: list[Any], item: Any) -> int:
        with self._cond:
            container.append(item)
            return len(container) - 1

    def add_events(self, bodies: list[dict[str, Any]], batch: int | None) -> None:
        with self._cond:
            for body in bodies:
                self.events[body["insert_id"]] = Event(body["user_id"], body["event"], batch)

    def event_reply(self, insert_ids: list[str], outcome: str) -> None:
        with self._cond:
            for insert_id in insert_ids:
                event = self.events[insert_id]
                event.acked |= outcome == ACKED
                event.unknown += outcome == UNKNOWN

    def trait_reply(self, user: str, seq: int, outcome: str) -> None:
        with self._cond:
            self.traits.setdefault(user, []).append((seq, outcome))


# -- writers ---------------------------------------------------------------------------------


class Writer:
    """One client thread: one request at a time, its own seeded choices."""

    def __init__(self, name: str, harness: Harness) -> None:
        self.thread = threading.Thread(target=self.run, name=f"crash-{name}", daemon=True)
        self.label = name
        self.h = harness
        self.ledger = harness.ledger
        self.rng = random.Random(f"{harness.config.seed}/{name}")
        self.pending: Op | None = None
        self._client: httpx.Client | None = None
        self._generation = -1

    def run(self) -> None:
        stale: int | None = None
        while (generation := self.h.gate.enter(stale)) is not None:
            try:
                stale = generation if self.step(self._client_for(generation)) else None
            except Exception as exc:  # a harness bug must not hang the run: report it
                self.h.findings.defect("harness_error", self.label, repr(exc))
                stale = generation
        if self._client is not None:
            self._client.close()

    def _client_for(self, generation: int) -> httpx.Client:
        # A fresh pool per server: a kept-alive connection to a killed server would fail a
        # request that was never sent, and make it look unknown.
        if generation != self._generation or self._client is None:
            if self._client is not None:
                self._client.close()
            self._client = self.h.client(timeout=30.0)
            self._generation = generation
        return self._client

    def step(self, client: httpx.Client) -> bool:
        op = self.pending or self.next_op()
        reply = send(client, op, self.h.findings)
        if reply.outcome == UNSENT:
            self.pending = op
            return True
        self.pending = None
        self.ledger.count(op.label, reply.outcome)
        op.done(reply)
        return reply.transport

    def next_op(self) -> Op:
        raise NotImplementedError


def _event_body(rng: random.Random, insert_id: str) -> dict[str, Any]:
    return {
        "user_id": f"u{rng.randrange(USERS):03d}",
        "event": rng.choice(EVENT_NAMES),
        "insert_id": insert_id,
        # Spread over three weeks: cohort windows and discovery's first weeks see them.
        "timestamp": iso_ago(rng.uniform(60, 20 * 86400)),
        "properties": {"n": insert_id},
    }


class Events(Writer):
    """Single events; each one whose outcome is unknown is sent once more after the restart,
    with the same insert_id: the retry a careful client makes."""

    def __init__(self, name: str, harness: Harness) -> None:
        super().__init__(name, harness)
        self.retry: list[dict[str, Any]] = []
        self.number = 0

    def next_op(self) -> Op:
        if self.retry:
            body = self.retry.pop(0)
            return self._op(body, lambda reply: None)
        body = _event_body(self.rng, f"s{self.number}")
        self.number += 1
        self.ledger.add_events([body], None)

        def again(reply: Reply) -> None:
            if reply.outcome == UNKNOWN:
                self.retry.append(body)

        return self._op(body, again)

    def _op(self, body: dict[str, Any], then: Callable[[Reply], None]) -> Op:
        def done(reply: Reply) -> None:
            self.ledger.event_reply([body["insert_id"]], reply.outcome)
            then(reply)

        return Op("event", "POST", "/v1/events", body, done)


class Batches(Writer):
    """Batches of 2 to 25 events, never retried: an unknown batch must be whole or absent."""

    def __init__(self, name: str, harness: Harness) -> None:
        super().__init__(name, harness)
        self.number = 0

    def next_op(self) -> Op:
        bodies = [
            _event_body(self.rng, f"b{self.number}-{i}") for i in range(self.rng.randint(2, 25))
        ]
        self.number += 1
        ids = [b["insert_id"] for b in bodies]

        def done(reply: Reply) -> None:
            index = self.ledger.add(self.ledger.batches, (ids, reply.outcome))
            self.ledger.add_events(bodies, index)
            self.ledger.event_reply(ids, reply.outcome)

        return Op("batch", "POST", "/v1/events/batch", {"events": bodies}, done)


class Traits(Writer):
    """`/v1/identify` on new users, and again on earlier ones: the last value must win."""

    def __init__(self, name: str, harness: Harness) -> None:
        super().__init__(name, harness)
        self.users: list[str] = []
        self.seq = 0

    def next_op(self) -> Op:
        if self.users and self.rng.random() < 0.3:
            user = self.rng.choice(self.users)
        else:
            user = f"t{len(self.users):04d}"
            self.users.append(user)
        seq, self.seq = self.seq, self.seq + 1
        body = {"user_id": user, "traits": {"crash_mark": "m", "seq": seq}}

        def done(reply: Reply) -> None:
            self.ledger.trait_reply(user, seq, reply.outcome)

        return Op("trait", "POST", "/v1/identify", body, done)


def device_components(seed: int, number: int) -> dict[str, Any]:
    """Components no other device shares in anything distinctive: no fuzzy match between two."""
    tag = hashlib.blake2b(f"{seed}/{number}".encode(), digest_size=8).hexdigest()
    components = copy.deepcopy(COMPONENTS)
    components["canvas"] = tag
    components["audio"] = f"124.{int(tag[:8], 16)}"
    components["math"] = tag[::-1]
    components["webgl"]["renderer"] = f"Crash GPU {tag}"
    components["fonts"] = [*COMPONENTS["fonts"], f"Font {tag}"]
    return components


class Devices(Writer):
    """Identifies a device a few times, then often deletes its visitor and takes a new device.
    A deletion whose outcome is unknown is sent again until it answers 200 or 404."""

    DELETE_SHARE = 0.4

    def __init__(self, name: str, harness: Harness) -> None:
        super().__init__(name, harness)
        self.device: Device | None = None
        self.unresolved: Device | None = None
        self.number = 0

    def next_op(self) -> Op:
        if self.unresolved is not None:
            return self._delete(self.unresolved)
        device = self._current()
        if len(device.requests) + device.unknown >= device.planned:
            if device.visitor and self.rng.random() < self.DELETE_SHARE:
                return self._delete(device)
            self.device = None
            device = self._current()
        return self._identify(device)

    def _current(self) -> Device:
        if self.device is None:
            number = self.h.next_device()
            components = device_components(self.h.config.seed, number)
            self.device = Device(number, components, self.rng.randint(1, 4))
            self.ledger.add(self.ledger.devices, self.device)
        return self.device

    def _identify(self, device: Device) -> Op:
        self.number += 1
        body = {
            "components": device.components,
            "linkedId": f"{self.label}-{self.number}",
            "type": "login",
        }

        def done(reply: Reply) -> None:
            if reply.outcome == ACKED:
                self._identified(device, reply.body)
            elif reply.outcome == UNKNOWN:
                device.unknown += 1

        return Op("identification", "POST", "/v1/agent/identify", body, done)

    def _identified(self, device: Device, body: dict[str, Any]) -> None:
        device.requests.append(body["requestId"])
        device.unchecked.append(body["requestId"])
        if device.visitor is None:
            device.visitor = body["visitorId"]
        elif body["visitorId"] != device.visitor:
            detail = {"device": device.number, "was": device.visitor, "now": body["visitorId"]}
            self.h.findings.defect("visitor_split", str(device.number), detail)

    def _delete(self, device: Device) -> Op:
        def done(reply: Reply) -> None:
            if reply.outcome == ACKED or reply.status == 404:
                if reply.status == 404 and device.deletion is None:
                    self.h.findings.defect(
                        "visitor_lost", str(device.visitor), "404 before it was deleted"
                    )
                device.deletion, device.deleted_at = ACKED, time.monotonic()
                self.unresolved = self.device = None
            elif reply.outcome == UNKNOWN:
                device.deletion, self.unresolved = UNKNOWN, device

        path = f"/v1/visitors/{device.visitor}"
        return Op("visitor.delete", "DELETE", path, None, done, expect=(404,))


# The name field of each kind finds a thing whose creation is unknown (no id) in a listing.
NAME_FIELD = {"rule": "name", "list": "name", "webhook": "url", "cohort": "name"}
CAPS = {"rule": 40, "list": 30, "webhook": 6, "cohort": 6}
ACTIONS = {
    "rule.create": 3, "rule.update": 3, "rule.delete": 1,
    "list.create": 2, "list.update": 6, "list.delete": 1,
    "webhook.create": 2, "webhook.update": 3, "webhook.delete": 1,
    "cohort.create": 1, "cohort.delete": 1,
    "discovery.trigger": 1,
}  # fmt: skip
RULE_STATUSES = ("live", "monitor", "draft", "paused")


class Config(Writer):
    """Creates, changes and deletes rules, lists (entries), webhooks and cohorts, and triggers
    auto-discovery runs."""

    def __init__(self, name: str, harness: Harness) -> None:
        super().__init__(name, harness)
        self.unresolved: Thing | None = None
        self.number = 0

    def next_op(self) -> Op:
        if self.unresolved is not None:
            return self._delete(self.unresolved)
        action = self.rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
        if action == "discovery.trigger":
            return self._trigger()
        kind, verb = action.split(".")
        alive = [t for t in self.ledger.things if t.kind == kind and t.id and t.deletion is None]
        open_count = sum(1 for t in self.ledger.things if t.kind == kind and t.deletion != ACKED)
        movable = [t for t in alive if not t.fixed]
        if verb == "create" and open_count >= CAPS[kind] and movable:
            verb = "delete"
        if verb != "create" and not movable:
            verb = "create"
        if verb == "create":
            return self._create(kind)
        thing = self.rng.choice(movable)
        if verb == "delete" or kind == "cohort":
            return self._delete(thing)
        return self._update(thing)

    def _name(self, kind: str) -> str:
        self.number += 1
        return f"{kind}{self.number}"

    def _create(self, kind: str) -> Op:
        checked, body = self._creation(kind, self._name(kind))

        def done(reply: Reply) -> None:
            if reply.outcome not in (ACKED, UNKNOWN):
                return
            thing = Thing(kind, checked[NAME_FIELD[kind]], reply.outcome)
            thing.fields = {k: [(v, reply.outcome)] for k, v in checked.items()}
            if reply.outcome == ACKED:
                thing.id = reply.body["id"]
            self.ledger.add(self.ledger.things, thing)

        return Op(f"{kind}.create", "POST", f"/v1/{kind}s", body, done)

    def _creation(self, kind: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The fields the listings are checked on, and the creation body."""
        if kind == "rule":
            checked = {"name": name, "status": self.rng.choice(RULE_STATUSES[:3])}
            # Never true: live rules are evaluated on every identification and match nothing.
            condition = {"field": "confidence", "operator": "lt", "value": -1}
            return checked, checked | {"conditions": condition, "action": {"verdict": "block"}}
        if kind == "list":
            return {"name": name}, {"name": name, "type": "email"}
        if kind == "webhook":
            url = self.h.receiver.url(f"/churn/{name}")
            return {"url": url, "status": "active"}, {"url": url, "events": ["list_update"]}
        definition = {
            "type": "event",
            "event": self.rng.choice(EVENT_NAMES),
            "count": {"operator": "gte", "value": self.rng.randint(1, 3)},
            "window": {"last_days": 30},
        }
        return {"name": name}, {"name": name, "definition": definition}

    def _update(self, thing: Thing) -> Op:
        if thing.kind == "list":
            return self._patch(thing)
        if thing.kind == "rule":
            change = {"name": f"{thing.name}~{self.number}", "status": self._status(thing)}
            self.number += 1
        elif self.rng.random() < 0.5:
            change = {"status": "paused" if "active" in thing.allowed("status") else "active"}
        else:
            change = {"url": self.h.receiver.url(f"/churn/{self._name('url')}")}

        def done(reply: Reply) -> None:
            if reply.outcome in (ACKED, UNKNOWN):
                for key, value in change.items():
                    thing.fields[key].append((value, reply.outcome))

        return Op(f"{thing.kind}.update", "PUT", f"/v1/{thing.kind}s/{thing.id}", change, done)

    def _status(self, thing: Thing) -> str:
        fresh = [s for s in RULE_STATUSES if s not in thing.allowed("status")]
        return self.rng.choice(fresh or RULE_STATUSES)

    def _patch(self, thing: Thing) -> Op:
        added = [f"{self._name('e')}@crash.example" for _ in range(self.rng.randint(1, 3))]
        present = [e for e, ops in thing.entries.items() if _presence(ops) == {True}]
        removed = [self.rng.choice(present)] if present and self.rng.random() < 0.3 else []

        def done(reply: Reply) -> None:
            if reply.outcome not in (ACKED, UNKNOWN):
                return
            for entry in added:
                thing.entries[entry] = [("add", reply.outcome)]
            for entry in removed:
                thing.entries[entry].append(("remove", reply.outcome))
            self.ledger.add(self.ledger.patches, Patch(str(thing.id), added[0], reply.outcome))

        body = {"add": added, "remove": removed}
        return Op("list.update", "PATCH", f"/v1/lists/{thing.id}/entries", body, done)

    def _delete(self, thing: Thing) -> Op:
        def done(reply: Reply) -> None:
            if reply.outcome == ACKED or reply.status == 404:
                if reply.status == 404 and thing.deletion is None:
                    self.h.findings.defect(
                        f"{thing.kind}_lost", str(thing.id), "404 before it was deleted"
                    )
                thing.deletion, self.unresolved = ACKED, None
            elif reply.outcome == UNKNOWN:
                thing.deletion, self.unresolved = UNKNOWN, thing

        path = f"/v1/{thing.kind}s/{thing.id}"
        return Op(f"{thing.kind}.delete", "DELETE", path, None, done, expect=(404,))

    def _trigger(self) -> Op:
        def done(reply: Reply) -> None:
            if reply.outcome == ACKED:
                self.ledger.runs.add(reply.body["runId"])

        return Op("discovery.trigger", "POST", "/v1/auto-discovery/trigger", None, done)


# -- the webhook receiver's side -------------------------------------------------------------


class Sink:
    """Answers the receiver's requests (the first attempt of one delivery in eight fails with
    503, so retries run too) and keeps what arrived with a 2xx answer."""

    def __init__(self, receiver: Receiver) -> None:
        self._lock = threading.Lock()
        self.secret = ""
        self.attempts: Counter[str] = Counter()
        self.ok: Counter[str] = Counter()
        self.requests: dict[str, set[str]] = defaultdict(set)  # requestId -> webhook-ids
        self.arrivals: dict[str, list[float]] = defaultdict(list)  # requestId -> every attempt
        self.markers: set[str] = set()
        self.bad_signatures: list[str] = []
        receiver.script = self.answer

    def answer(self, got: Received, _: int) -> Answer:
        message = got.headers.get("webhook-id", "")
        primary = got.path == PRIMARY
        envelope = json.loads(got.body) if primary else {}
        with self._lock:
            self.attempts[message] += 1
            fail = primary and self.attempts[message] == 1 and _fails_first(message)
            if envelope.get("event") == "identification":
                self.arrivals[envelope["data"]["requestId"]].append(got.at)
            if not fail:
                self.ok[message] += 1
            if primary and not fail:
                self._delivered(got, message, envelope)
        return Answer(503 if fail else 200)

    def _delivered(self, got: Received, message: str, envelope: dict[str, Any]) -> None:
        expected = hmac.new(self.secret.encode(), got.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, got.headers.get("x-prynt-signature", "")):
            self.bad_signatures.append(message)
        data = envelope["data"]
        if envelope["event"] == "identification":
            self.requests[data["requestId"]].add(message)
        elif envelope["event"] == "list_update":
            self.markers.update(data["added"])

    def snapshot(self) -> tuple[set[str], set[str]]:
        with self._lock:
            return set(self.requests), set(self.markers)

    def duplicates(self) -> tuple[int, int]:
        """2xx receipts beyond the first of one webhook-id, and how many ids had them."""
        with self._lock:
            extra = [n - 1 for n in self.ok.values() if n > 1]
        return sum(extra), len(extra)


def _fails_first(message: str) -> bool:
    return int(hashlib.sha256(message.encode()).hexdigest()[:4], 16) % 8 == 0


# -- checks ----------------------------------------------------------------------------------


class Checks:
    """One verification pass against a running server, with the writers held."""

    def __init__(self, harness: Harness, client: httpx.Client, final: bool = False) -> None:
        self.h = harness
        self.final = final
        self.ledger = harness.ledger
        self.client = client
        self.verified: Counter[str] = Counter()

    def defect(self, kind: str, key: str, detail: Any) -> None:
        self.h.findings.defect(kind, key, detail)

    def get(self, path: str, **params: Any) -> httpx.Response:
        answer = self.client.get(path, params=params)
        if answer.status_code >= 500:
            self.defect("http_status", f"GET {answer.status_code}", f"{path}: {answer.text[:300]}")
        return answer

    def run(self) -> Counter[str]:
        for check in (self.events, self.identifications, self.deletions, self.things,
                      self.runs, self.cohorts):  # fmt: skip
            began = time.monotonic()
            check()
            self.h.say(f"  {check.__name__}: {time.monotonic() - began:.2f} s")
        return self.verified

    # events and batches

    def events(self) -> None:
        counts, rows = self._export()
        for insert_id, event in self.ledger.events.items():
            found = counts.pop(insert_id, 0)
            if event.acked and found == 0:
                self.defect("event_lost", insert_id, {"user": event.user, "event": event.name})
            elif found > 1:
                self.defect("event_duplicated", insert_id, {"copies": found})
            elif found and rows[insert_id] != (event.user, event.name):
                self.defect("event_corrupted", insert_id, rows[insert_id])
            self.verified["events"] += event.acked and found == 1
        for insert_id in counts:
            self.defect("event_phantom", str(insert_id), rows.get(insert_id))
        self._batches(rows)

    def _export(self) -> tuple[Counter[str | None], dict[str | None, tuple[str, str]]]:
        counts: Counter[str | None] = Counter()
        rows: dict[str | None, tuple[str, str]] = {}
        with self.client.stream("GET", "/v1/export", params={"format": "ndjson"}) as answer:
            if answer.status_code != 200:
                raise HarnessError(f"export answered {answer.status_code}")
            for line in answer.iter_lines():
                if line:
                    row = json.loads(line)
                    counts[row.get("insert_id")] += 1
                    rows[row.get("insert_id")] = (row["user_id"], row["event"])
        return counts, rows

    def _batches(self, rows: dict[str | None, tuple[str, str]]) -> None:
        for number, (ids, outcome) in enumerate(self.ledger.batches):
            present = sum(1 for i in ids if i in rows)
            if outcome != ACKED and 0 < present < len(ids):
                detail = {"present": present, "events": len(ids), "outcome": outcome}
                self.defect("half_batch", f"b{number}", detail)
            self.verified["batches"] += outcome == ACKED and present == len(ids)

    # identifications and visitor deletions

    def identifications(self) -> None:
        listed = self._listed()
        unknown = sum(d.unknown for d in self.ledger.devices)
        known = {r for d in self.ledger.devices for r in d.requests}
        extra = [r for r in listed if r not in known]
        if len(extra) > unknown:
            detail = {"extra": len(extra), "unknown": unknown}
            self.defect("identification_phantom", "listing", detail)
        for r, n in listed.items():
            if n > 1:
                self.defect("identification_duplicated", r, {"copies": n})
        for device in self.ledger.devices:
            self._device(device, listed)
        self._analytics_total()

    def _listed(self) -> Counter[str]:
        listed: Counter[str] = Counter()
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100} | ({"cursor": cursor} if cursor else {})
            page = self.get("/v1/events", **params).json()
            listed.update(item["requestId"] for item in page["data"])
            if not page["hasMore"]:
                return listed
            cursor = page["nextCursor"]

    def _device(self, device: Device, listed: Counter[str]) -> None:
        present = [r for r in device.requests if listed[r]]
        if device.deletion == ACKED:
            for r in present:
                self.defect("identification_resurrected", r, {"visitor": device.visitor})
            self.verified["identifications_deleted"] += len(device.requests) - len(present)
        elif device.deletion == UNKNOWN:
            if 0 < len(present) < len(device.requests):
                detail = {"visitor": device.visitor, "present": len(present)}
                self.defect("half_deletion", str(device.visitor), detail)
        else:
            for r in set(device.requests) - set(present):
                self.defect("identification_lost", r, {"visitor": device.visitor})
            self.verified["identifications"] += len(present)
            self._documents(device)

    def _documents(self, device: Device) -> None:
        """Read back the documents acknowledged since the last pass."""
        for r in device.unchecked:
            answer = self.get(f"/v1/events/{r}")
            if answer.status_code != 200:
                self.defect("identification_lost", r, f"GET answered {answer.status_code}")
            elif answer.json()["visitorId"] != device.visitor:
                self.defect("identification_corrupted", r, answer.json()["visitorId"])
        device.unchecked.clear()

    def _analytics_total(self) -> None:
        devices = self.ledger.devices
        live = sum(len(d.requests) for d in devices if d.deletion is None)
        maybe = sum(len(d.requests) for d in devices if d.deletion == UNKNOWN)
        unknown = sum(d.unknown for d in devices)
        window = {"from": iso_ago(self.h.age() + 86400), "to": iso_ago(-86400)}
        answer = self.get("/v1/analytics/events", **window)
        total = answer.json()["total"]
        if not live <= total <= live + maybe + unknown:
            detail = {"total": total, "must": live, "may": live + maybe + unknown}
            self.defect("identification_count", f"after kill {self.h.findings.kills}", detail)

    def deletions(self) -> None:
        """Deleted visitors stay deleted: the visitor, and a seeded sample of its documents."""
        deleted = [d for d in self.ledger.devices if d.deletion == ACKED]
        for device in deleted:
            if self.get(f"/v1/visitors/{device.visitor}").status_code != 404:
                self.defect("visitor_resurrected", str(device.visitor), device.requests)
            self.verified["visitor_deletions"] += 1
        documents = [r for d in deleted for r in d.requests]
        sample = random.Random(f"{self.h.config.seed}/sample/{self.h.findings.kills}")
        for r in sample.sample(documents, min(len(documents), 100)):
            if self.get(f"/v1/events/{r}").status_code != 404:
                self.defect("identification_resurrected", r, "GET /v1/events/{requestId}")

    # rules, lists, webhooks, cohorts

    def things(self) -> None:
        for kind in NAME_FIELD:
            listed = self._listing(kind)
            things = [t for t in self.ledger.things if t.kind == kind]
            self._compare(kind, things, listed)

    def _listing(self, kind: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.get(f"/v1/{kind}s", limit=100, offset=len(items)).json()
            items += page["data"]
            if not page["data"] or len(items) >= page["total"]:
                return items

    def _compare(self, kind: str, things: list[Thing], listed: list[dict[str, Any]]) -> None:
        by_id = Counter(item["id"] for item in listed)
        items = {item["id"]: item for item in listed}
        names = Counter(item[NAME_FIELD[kind]] for item in listed)
        accounted = set()
        for thing in things:
            if thing.id is None:
                if names[thing.name] > 1:
                    self.defect(f"{kind}_duplicated", thing.name, {"copies": names[thing.name]})
                accounted |= {i for i, it in items.items() if it[NAME_FIELD[kind]] == thing.name}
                continue
            accounted.add(thing.id)
            self._one(thing, by_id[thing.id], items.get(thing.id))
        for item in listed:
            if item["id"] not in accounted:
                self.defect(f"{kind}_phantom", item["id"], item)

    def _one(self, thing: Thing, copies: int, item: dict[str, Any] | None) -> None:
        if thing.deletion == UNKNOWN:
            return
        # Lists have no GET of their own: their listing entry stands for it.
        own = item if thing.kind == "list" else self._read_back(thing)
        if thing.deletion == ACKED:
            if copies or own is not None:
                self.defect(f"{thing.kind}_resurrected", str(thing.id), item or own)
            self.verified[f"{thing.kind}s"] += not copies
            return
        if copies != 1 or item is None or own is None:
            self.defect(f"{thing.kind}_lost", str(thing.id), {"listed": copies, "read": own})
            return
        for name in thing.fields:
            for got in (item[name], own[name]):
                if got not in thing.allowed(name):
                    detail = {"field": name, "got": got, "allowed": thing.allowed(name)}
                    self.defect(f"{thing.kind}_state", f"{thing.id}.{name}", detail)
        if thing.kind == "list":
            must, may = thing.entry_bounds()
            if not must <= item["entryCount"] <= may:
                detail = {"entryCount": item["entryCount"], "must": must, "may": may}
                self.defect("list_entries", str(thing.id), detail)
        self.verified[f"{thing.kind}s"] += 1

    def _read_back(self, thing: Thing) -> dict[str, Any] | None:
        """The thing as its own GET answers it; None for a 404."""
        answer = self.get(f"/v1/{thing.kind}s/{thing.id}")
        if answer.status_code not in (200, 404):
            self.defect("http_status", f"GET {thing.kind} {answer.status_code}", answer.text[:300])
        return answer.json() if answer.status_code == 200 else None

    # discovery runs and cohort membership

    def runs(self) -> dict[str, dict[str, Any]]:
        found = {}
        for run in sorted(self.ledger.runs):
            answer = self.get(f"/v1/auto-discovery/runs/{run}")
            if answer.status_code != 200:
                self.defect("discovery_run_lost", run, answer.status_code)
                continue
            found[run] = answer.json()
            self.verified["discovery_runs"] += 1
        return found

    def cohorts(self) -> None:
        """Membership follows the acknowledged traits and events: what each cohort must and
        may hold."""
        traits = self.ledger.traits
        events = [e for e in self.ledger.events.values() if e.name == "export"]
        bounds = {
            "traits": (
                {u for u, w in traits.items() if any(o == ACKED for _, o in w)},
                set(traits),
            ),
            "exporters": ({e.user for e in events if e.acked}, {e.user for e in events}),
        }
        missing, waited = self._converge(bounds)
        for name, lost in missing.items():
            if lost and self.final:
                self.defect("cohort_members_lost", name, sorted(lost)[:20])
            elif lost or waited[name] > self.h.config.refresh_seconds:
                detail = {"seconds": round(waited[name], 1), "missing": sorted(lost)[:20]}
                self.h.findings.observe("cohort_refresh_late", name, detail)
                self.h.late = True
            self.verified[f"cohort_{name}"] += len(bounds[name][0] - lost)

    def _converge(
        self, bounds: dict[str, tuple[set[str], set[str]]]
    ) -> tuple[dict[str, set[str]], dict[str, float]]:
        """Poll until every cohort holds what it must, or the deadline: what each still
        misses, and how long each took. Extra members are reported at once: no write ever
        put them there."""
        config = self.h.config
        # Once a refresh was seen late, later passes read once instead of waiting again: the
        # lateness is on record, and the last pass decides whether anything is lost.
        limit = config.converge_seconds if self.final else config.refresh_seconds
        if self.h.late and not self.final:
            limit = 0.0
        began = time.monotonic()
        missing: dict[str, set[str]] = {}
        waited = dict.fromkeys(bounds, 0.0)
        while True:
            for name, (must, may) in bounds.items():
                if name in missing and not missing[name]:
                    continue  # settled
                members = self._members(self.h.cohorts[name])
                missing[name] = must - members
                waited[name] = time.monotonic() - began
                if members - may:
                    self.defect("cohort_phantom_members", name, sorted(members - may)[:20])
            if not any(missing.values()) or time.monotonic() - began > limit:
                return missing, waited
            time.sleep(0.1)

    def _members(self, cohort: str) -> set[str]:
        members: set[str] = set()
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"cursor": cursor} if cursor else {}
            page = self.get(f"/v1/cohorts/{cohort}/members", **params).json()
            members.update(page["userIds"])
            if not page["hasMore"]:
                return members
            cursor = page["nextCursor"]


def check_profiles_at_rest(data: Path, tenant: Tenant, ledger: Ledger, findings: Findings) -> int:
    """Read each written user's profile from the store with no server running: the last
    acknowledged `seq` (or an unknown one written after it) must be there."""
    verified = 0
    with Engine.open(data, REST_CONFIG) as engine:
        for user, writes in ledger.traits.items():
            try:
                got = engine.profile(tenant, user).traits.get("seq")
            except NotFound:
                got = None
            allowed = _allowed_seqs(writes)
            if got not in allowed:
                detail = {"got": got, "allowed": sorted(allowed, key=str)}
                findings.defect("trait_lost", user, detail)
            verified += any(o == ACKED for _, o in writes) and got in allowed
    return verified


def _allowed_seqs(writes: list[tuple[int, str]]) -> set[int | None]:
    acked = [i for i, (_, o) in enumerate(writes) if o == ACKED]
    if not acked:
        return {None} | {seq for seq, _ in writes}
    return {seq for seq, _ in writes[acked[-1] :]}


# -- the run ---------------------------------------------------------------------------------


class Harness:
    def __init__(self, config: CrashConfig, directory: Path) -> None:
        self.config = config
        self.directory = directory
        self.data = directory / "data"
        self.rng = random.Random(f"{config.seed}/kills")
        self.findings = Findings()
        self.ledger = Ledger()
        self.gate = Gate()
        self.cohorts: dict[str, str] = {}
        self.late = False  # a cohort refresh was seen late
        self.kill_after: list[int] = []
        self.verified: Counter[str] = Counter()
        self.checked: Counter[str] = Counter()
        self.passes = 0
        self.traits_at_rest = 0
        self._began = time.monotonic()
        self._devices = 0
        self._device_lock = threading.Lock()
        self.code = directory / "code"
        # Ahead of the editable install's path entry: the copy of src/ is what runs.
        self.env = {"PYTHONPATH": str(self.code)}
        self.server = ServerProcess(
            self.data,
            workers=config.workers,
            env={**self.env, "SIGNALPOST_CONFIG": str(directory / "crash.toml")},
            log=directory / "server.log",
        )

    def say(self, text: str) -> None:
        if self.config.verbose:
            print(f"[crash {self.age():7.1f}s] {text}", file=sys.stderr, flush=True)

    def age(self) -> float:
        return time.monotonic() - self._began

    def next_device(self) -> int:
        with self._device_lock:
            self._devices += 1
            return self._devices

    def client(self, timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}", "User-Agent": CHROME_UA}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=timeout)

    def run(self) -> dict[str, Any]:
        began = time.monotonic()
        with Receiver(self.directory) as receiver:
            self.receiver = receiver
            self.sink = Sink(receiver)
            writers: list[Writer] = []
            try:
                self._setup()
                writers = self._writers()
                self._cycles(len(writers))
                self._settle()
            except Exception:  # the summary says what happened, with what was seen so far
                self.findings.defect("run_aborted", "run", traceback.format_exc()[-2000:])
            finally:
                self.gate.stop()
                for writer in writers:
                    writer.thread.join(timeout=30)
                self.server.kill(hard=True)
            return self._summary(time.monotonic() - began)

    def _setup(self) -> None:
        source = Path(api.__file__).resolve().parents[1]
        shutil.copytree(source, self.code, ignore=shutil.ignore_patterns("*.egg-info"))
        workspace = cli("workspace", "create", "--name", "crash", "--plan", "enterprise",
                        data=self.data, env=self.env)  # fmt: skip
        self.key = workspace["keys"]["sk_live"]
        self.tenant = Tenant(workspace["id"], "live")
        (self.directory / "crash.toml").write_text(self._config_toml())
        self.server.start(timeout=60)
        with self.client() as client:
            self._primary_webhook(client)
            self._fixed_cohort(client, "traits", {"type": "property", "property": "crash_mark",
                                                  "operator": "exists", "value": True})  # fmt: skip
            self._fixed_cohort(client, "exporters", {"type": "event", "event": "export",
                                                     "window": {"last_days": 30}})  # fmt: skip

    def _config_toml(self) -> str:
        # Every background task runs often: compaction merges every 4 segments, pending rows
        # move 5 times a second, sliding cohorts are evaluated in full every second.
        schedule = ", ".join(str(s) for s in RETRY_SCHEDULE)
        return "\n".join(
            [
                "pin_workers = false",  # the machine is shared: do not hold cores
                "[engine]",
                "cohort_refresh_seconds = 1",
                "[engine.compaction]",
                "fanout = 4",
                "drain_interval_seconds = 0.2",
                "[engine.webhooks]",
                "allow_private = true",
                f"ca_bundle = {json.dumps(str(self.receiver.ca_path))}",
                f"retry_schedule = [{schedule}]",
                "retry_jitter = 0.0",
                f"timeout_seconds = {DELIVERY_TIMEOUT}",
                "",
            ]
        )

    def _primary_webhook(self, client: httpx.Client) -> None:
        body = {"url": self.receiver.url(PRIMARY), "events": ["identification", "list_update"]}
        answer = client.post("/v1/webhooks", json=body)
        if answer.status_code != 201:
            raise HarnessError(f"webhook creation answered {answer.status_code}: {answer.text}")
        created = answer.json()
        self.sink.secret = created["secret"]
        thing = Thing("webhook", created["url"], ACKED, created["id"], fixed=True)
        thing.fields = {"url": [(created["url"], ACKED)], "status": [("active", ACKED)]}
        self.ledger.things.append(thing)

    def _fixed_cohort(self, client: httpx.Client, name: str, definition: dict[str, Any]) -> None:
        body = {"name": f"crash-{name}", "definition": definition}
        answer = client.post("/v1/cohorts", json=body)
        if answer.status_code != 201:
            raise HarnessError(f"cohort creation answered {answer.status_code}: {answer.text}")
        self.cohorts[name] = answer.json()["id"]
        thing = Thing("cohort", body["name"], ACKED, self.cohorts[name], fixed=True)
        thing.fields = {"name": [(body["name"], ACKED)]}
        self.ledger.things.append(thing)

    def _writers(self) -> list[Writer]:
        kinds: dict[str, type[Writer]] = {
            "events": Events, "batches": Batches, "traits": Traits, "config": Config,
        }  # fmt: skip
        writers = [kinds.get(name, Devices)(name, self) for name in WRITERS]
        for writer in writers:
            writer.thread.start()
        return writers

    def _cycles(self, writers: int) -> None:
        for _ in range(self.config.kills):
            self._load(self._kill_after())
            self.server.kill(hard=True)
            self.gate.close()
            self.findings.kills += 1
            self.say(f"kill {self.findings.kills} after {self.ledger.acks} acknowledged writes")
            self.gate.wait_parked(writers, timeout=60)
            self.traits_at_rest = check_profiles_at_rest(
                self.data, self.tenant, self.ledger, self.findings
            )
            self._restart()
            self._verify()
            self.say("restarted and verified")
        # The last server keeps running a while: its writes also wake the refreshes that a
        # restart leaves waiting for the next write.
        self._load(self.config.min_acks)
        self.gate.close()
        self.gate.wait_parked(writers, timeout=60)

    def _load(self, acks: int) -> None:
        """Let the writers run until `acks` more writes were acknowledged."""
        target = self.ledger.acks + acks
        self.gate.open()
        if not self.ledger.wait_acks(target, timeout=60):
            detail = {"acknowledged": self.ledger.acks, "target": target}
            self.findings.defect("stalled", f"before kill {self.findings.kills + 1}", detail)

    def _kill_after(self) -> int:
        """How many acknowledged writes the next kill comes after."""
        if self.rng.random() < self.config.early_share:
            acks = self.rng.randint(0, 5)
        else:
            acks = self.rng.randint(self.config.min_acks, self.config.max_acks)
        self.kill_after.append(acks)
        return acks

    def _restart(self) -> None:
        try:
            self.server.start(timeout=60)
        except RuntimeError as exc:
            raise HarnessError(f"restart after kill {self.findings.kills}: {exc}") from exc

    def _verify(self, final: bool = False) -> None:
        with self.client() as client:
            verified = Checks(self, client, final).run()
        self.passes += 1
        self.checked.update(verified)
        self.verified = verified

    def _settle(self) -> None:
        """After the last restart: deliveries arrive and discovery runs finish, within the
        deadline; then one more pass, a clean stop and a last read of the store at rest."""
        deadline = time.monotonic() + self.config.settle_seconds
        self._await_deliveries(deadline)
        self._await_runs(deadline)
        self._check_late_deliveries()
        self._verify(final=True)
        self.server.stop()
        self.traits_at_rest = check_profiles_at_rest(
            self.data, self.tenant, self.ledger, self.findings
        )

    def expected_deliveries(self) -> tuple[set[str], set[str]]:
        requests = {r for d in self.ledger.devices if d.deletion is None for r in d.requests}
        markers = {p.marker for p in self.ledger.patches if p.outcome == ACKED}
        return requests, markers

    def _await_deliveries(self, deadline: float) -> None:
        requests, markers = self.expected_deliveries()
        while True:
            got_requests, got_markers = self.sink.snapshot()
            lost_requests, lost_markers = requests - got_requests, markers - got_markers
            if not lost_requests and not lost_markers:
                break
            if time.monotonic() > deadline:
                for r in sorted(lost_requests):
                    self.findings.defect("delivery_lost", r, "identification")
                for m in sorted(lost_markers):
                    self.findings.defect("delivery_lost", m, "list_update")
                break
            time.sleep(0.1)
        for request, messages in self.sink.requests.items():
            if len(messages) > 1:
                self.findings.defect("delivery_enqueued_twice", request, sorted(messages))
        for message in self.sink.bad_signatures:
            self.findings.defect("delivery_bad_signature", message, "X-Prynt-Signature")

    def _check_late_deliveries(self) -> None:
        """A deleted visitor's identification may still finish an attempt that was on the wire;
        one sent later than an attempt can last carries data that should be gone."""
        grace = DELIVERY_TIMEOUT + 2
        for device in self.ledger.devices:
            if device.deletion != ACKED:
                continue
            for r in device.requests:
                late = [t - device.deleted_at for t in self.sink.arrivals.get(r, [])]
                if any(delay > grace for delay in late):
                    detail = {"visitor": device.visitor, "seconds_after": round(max(late), 2)}
                    self.findings.defect("delivered_after_deletion", r, detail)

    def _await_runs(self, deadline: float) -> None:
        with self.client() as client:
            checks = Checks(self, client)
            while True:
                runs = checks.runs()
                busy = [r for r, run in runs.items() if run["status"] in ("queued", "running")]
                if not busy or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        self.run_states = Counter(run["status"] for run in runs.values())
        for run_id in busy:
            self.findings.defect("discovery_run_stuck", run_id, runs[run_id]["status"])
        for run_id, run in runs.items():
            if run["status"] == "failed" and not str(run["error"]).startswith("Interrupted"):
                self.findings.defect("discovery_run_failed", run_id, run["error"])

    def _summary(self, seconds: float) -> dict[str, Any]:
        acked = {k: n for (k, o), n in sorted(self.ledger.counts.items()) if o == ACKED}
        unknown = {k: n for (k, o), n in sorted(self.ledger.counts.items()) if o == UNKNOWN}
        requests, markers = self.expected_deliveries()
        got_requests, got_markers = self.sink.snapshot()
        duplicates, redelivered = self.sink.duplicates()
        deleted = {r for d in self.ledger.devices if d.deletion is not None for r in d.requests}
        return {
            "seed": self.config.seed,
            "kills": self.findings.kills,
            "workers": self.config.workers,
            "seconds": round(seconds, 1),
            "kill_after_acknowledged_writes": self.kill_after,
            "acknowledged": acked,
            "acknowledged_total": sum(acked.values()),
            "acknowledged_batch_events": sum(
                len(ids) for ids, o in self.ledger.batches if o == ACKED
            ),
            "unknown": unknown,
            "unknown_total": sum(unknown.values()),
            "verified_final": {**self.verified, "traits_at_rest": self.traits_at_rest},
            "checks_all_passes": dict(sorted(self.checked.items())),
            "verification_passes": self.passes,
            "deliveries": {
                "identifications_expected": len(requests),
                "identifications_received": len(requests & got_requests),
                "list_updates_expected": len(markers),
                "list_updates_received": len(markers & got_markers),
                "deleted_visitor_identifications_received": len(deleted & got_requests),
                "unacknowledged_identifications_received": len(
                    got_requests - {r for d in self.ledger.devices for r in d.requests}
                ),
                "messages": len(self.sink.attempts),
                "attempts": sum(self.sink.attempts.values()),
                "duplicates": duplicates,
                "messages_redelivered": redelivered,
            },
            "discovery_runs": dict(getattr(self, "run_states", Counter())),
            "server_log": server_log_errors(self.directory / "server.log"),
            "observations": self.findings.observations(),
            "defects": self.findings.defects(),
        }


_EXCEPTION_LINE = re.compile(r"^\w[\w.]*(Error|Exception|Exit)\b.*$", re.MULTILINE)


def server_log_errors(path: Path) -> dict[str, Any]:
    """Tracebacks the server wrote, by their exception line: the run's side channel."""
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = Counter(match.group(0)[:200] for match in _EXCEPTION_LINE.finditer(text))
    return {"tracebacks": text.count("Traceback"), "exceptions": dict(lines.most_common(10))}


def run_crash(config: CrashConfig, directory: Path | None = None) -> dict[str, Any]:
    """Run the harness in `directory` (a temporary one if None); return the summary."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        return Harness(config, directory).run()
    with tempfile.TemporaryDirectory(prefix="signalpost-crash-") as tmp:
        return Harness(config, Path(tmp)).run()


def iter_defects(summary: dict[str, Any]) -> Iterator[str]:
    for defect in summary["defects"]:
        where = f"{defect['kind']} {defect['key']} (after kill {defect['after_kill']})"
        yield f"{where}: {json.dumps(defect['detail'])[:400]}"
