"""Support of test_isolation_fuzz.py: an HTTP client that knows which granian worker answered,
the owners (workspace × environment) with the model of what each one wrote, and the scan that
finds another owner's data in an answer.

Everything an owner writes carries its marker (`own1al`: workspace a, live) in its ids, names,
user ids, URLs or properties, and every id the server hands out is recorded with its
owner; an answer to one owner that holds another owner's marker or id is a leak.
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from _device_support import CHROME_UA, COMPONENTS

from api.process import ServerProcess

MARKER = re.compile(r"own\d+[ab][lt]")
SERVER_ID = re.compile(r"\b(?:req|pv|rul|lst|whk|coh|run|msg)_[A-Za-z0-9]+")
EVENT_NAMES = ("signup", "export_created", "dashboard_viewed", "invite_sent")
IDENTIFY_TYPES = ("login", "signup", "checkout")
PLANS = ("free", "pro")
# Names every owner may use: list names are unique per workspace and environment only.
SHARED_LIST_NAMES = ("blocklist", "allowlist", "review")
SHARED_USERS = 3
OWN_USERS = 5
DEVICES = 4
# `.invalid` never resolves (RFC 2606): webhook deliveries stay on this machine.
HOOK_HOST = "hooks-{marker}-{n}.invalid"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def hours_ago(hours: float) -> str:
    return iso(datetime.now(UTC) - timedelta(hours=hours))


def device(index: int) -> dict[str, Any]:
    """Browser components of device `index`: every matching input differs between devices, so
    two devices never fall into one visitor; the same index is the same device everywhere."""
    components = copy.deepcopy(COMPONENTS)
    components.update(
        canvas=f"{index:02d}c4a9f7e1b2d3a5",
        audio=f"{100 + index * 7.31:.4f}",
        fonts=[f"Font{index}", f"Face{index}"],
        screen={"w": 1280 + 160 * index, "h": 720 + 90 * index, "colorDepth": 24},
        math=f"{index:02d}ab{index:02d}cd{index:02d}ef{index:02d}",
        webgl={"vendor": f"V{index}", "renderer": f"Renderer {index}", "extensions": [f"E{index}"]},
    )
    return components


class Defect(AssertionError):
    """An answer the contract forbids (a leak, a 5xx, a revoked key that works)."""


@dataclass
class Answer:
    method: str
    path: str
    who: str  # the owner and kind of key that asked, e.g. "own1al/sk"
    sent: bytes | None
    status: int
    body: bytes
    worker: int | None  # pid of the granian worker, when the connection was looked up

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def describe(self) -> str:
        sent = f" {self.sent.decode()}" if self.sent else ""
        on = f" (worker {self.worker})" if self.worker else ""
        return f"{self.method} {self.path} as {self.who}{sent} -> {self.status}{on} {self.text}"

    def expect(self, status: int) -> Any:
        if self.status != status:
            raise Defect(f"expected {status}: {self.describe()}")
        return self.json() if self.body else None

    def expect_error(self, status: int, code: str) -> dict[str, Any]:
        body = self.expect(status)
        if not isinstance(body, dict) or set(body) != {"error"} or body["error"]["code"] != code:
            raise Defect(f"expected error {code}: {self.describe()}")
        return body["error"]


_RETRYABLE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Http:
    """HTTP/1.1 to one server. Each request goes over a kept-alive connection pinned to one
    worker (so a test chooses which worker answers) or over a fresh connection whose worker is
    looked up in /proc after the answer. Counts every request it sends."""

    def __init__(self, server: ServerProcess, workers: int = 2, timeout: float = 30.0) -> None:
        self.server = server
        self.port = server.port
        # The server answers health checks once one worker is up; wait for all of them.
        deadline = time.monotonic() + timeout
        while len(server.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.05)
        self.workers = sorted(server.worker_pids())
        if len(self.workers) != workers:
            raise RuntimeError(f"expected {workers} granian workers, found {self.workers}")
        self.requests = 0
        self.by_worker: Counter[int] = Counter()
        self._pinned: dict[int, http.client.HTTPConnection] = {}

    def close(self) -> None:
        for conn in self._pinned.values():
            conn.close()
        self._pinned.clear()

    # -- which worker holds a connection ---------------------------------------------------

    def _server_inode(self, client_port: int) -> str | None:
        with open("/proc/net/tcp") as table:
            next(table)
            for line in table:
                cols = line.split()
                local, remote = cols[1], cols[2]
                if (
                    int(local.rsplit(":", 1)[1], 16) == self.port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port
                ):
                    return cols[9]
        return None

    def worker_of(self, conn: http.client.HTTPConnection) -> int:
        """The worker holding the server end of an open, already answered connection."""
        assert conn.sock is not None
        inode = self._server_inode(conn.sock.getsockname()[1])
        target = f"socket:[{inode}]"
        for pid in self.workers:
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except FileNotFoundError:
                now = self.server.worker_pids()
                raise Defect(f"worker {pid} is gone; the workers are now {now}") from None
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
                except OSError:
                    continue
        raise AssertionError(f"no worker holds the connection (inode {inode})")

    def _pin(self, index: int) -> http.client.HTTPConnection:
        """A kept-alive connection that worker `index` accepted: connections are opened until
        the kernel hands one to that worker."""
        want = self.workers[index]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            self.requests += 1
            if self.worker_of(conn) == want:
                self._pinned[index] = conn
                return conn
            conn.close()
        raise AssertionError(f"no connection reached worker {want} in 30 s")

    # -- requests ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None,
        who: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        worker: int = 0,
        fresh: bool = False,
    ) -> Answer:
        if params:
            path = f"{path}?{urlencode(params)}"
        headers = {"User-Agent": CHROME_UA}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        sent = None
        if body is not None:
            sent = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if fresh:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                conn.request(method, path, body=sent, headers=headers)
                response = conn.getresponse()
                data = response.read()
                pid = self.worker_of(conn)
            finally:
                conn.close()
        else:
            response, data, pid = self._on_pinned(worker, method, path, sent, headers)
        self.requests += 1
        self.by_worker[pid] += 1
        answer = Answer(method, path, who, sent, response.status, data, pid)
        if answer.status >= 500:
            raise Defect(f"server error: {answer.describe()}")
        return answer

    def _on_pinned(
        self, index: int, method: str, path: str, sent: bytes | None, headers: dict[str, str]
    ) -> tuple[http.client.HTTPResponse, bytes, int]:
        for attempt in (0, 1):
            reused = index in self._pinned
            conn = self._pinned[index] if reused else self._pin(index)
            try:
                conn.request(method, path, body=sent, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except _RETRYABLE:
                conn.close()
                self._pinned.pop(index, None)
                # A kept-alive connection the worker closed while idle: the request was not
                # read, so it goes again on a new connection. On a new one it is a failure.
                if attempt or not reused:
                    raise
                continue
            if response.will_close:
                conn.close()
                self._pinned.pop(index, None)
            return response, data, self.workers[index]
        raise AssertionError("unreachable")


@dataclass
class Ident:
    visitor: str
    device: int
    type: str
    linked: str | None
    rule: str | None  # the rule whose verdict the identification got
    verdict: str | None


@dataclass
class RuleModel:
    name: str
    priority: int
    status: str
    verdict: str
    condition: dict[str, Any]


@dataclass
class ListModel:
    name: str
    type: str
    entries: set[str] = field(default_factory=set)


@dataclass
class WebhookModel:
    url: str
    status: str = "active"
    # Identifications made while the webhook was active: the only ones its deliveries may carry.
    requests: set[str] = field(default_factory=set)


@dataclass
class CohortModel:
    name: str
    kind: str  # "event" or "property"
    value: str  # the event name or the plan
    at_creation: set[str]


@dataclass
class Owner:
    """One workspace × environment: its keys and the model of everything it wrote."""

    label: str  # "al", "at", "bl", "bt"
    marker: str
    workspace: str
    env: str
    keys: dict[str, str]  # "plx", "sk", "pk" -> the key of this environment
    stored: int = 0
    insert_ids: set[str] = field(default_factory=set)
    users_by_event: dict[str, set[str]] = field(default_factory=dict)
    plan_of: dict[str, str] = field(default_factory=dict)
    ever_plan: dict[str, set[str]] = field(default_factory=dict)
    idents: dict[str, Ident] = field(default_factory=dict)
    device_visitor: dict[int, str] = field(default_factory=dict)
    visitors: dict[str, list[str]] = field(default_factory=dict)  # live visitor -> requests
    gone_visitors: set[str] = field(default_factory=set)
    rules: dict[str, RuleModel] = field(default_factory=dict)
    lists: dict[str, ListModel] = field(default_factory=dict)
    webhooks: dict[str, WebhookModel] = field(default_factory=dict)
    cohorts: dict[str, CohortModel] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)  # completed discovery runs, oldest first
    deliveries: set[str] = field(default_factory=set)
    # Other owners' ids this owner wrote into its own data (list entries): they may come back.
    introduced: set[str] = field(default_factory=set)
    next_priority: int = 1
    serial: int = 0

    def user(self, n: int) -> str:
        return f"u_{self.marker}_{n}" if n < OWN_USERS else f"u_shared_{n - OWN_USERS}"

    def next(self) -> int:
        self.serial += 1
        return self.serial

    def list_named(self, name: str) -> ListModel | None:
        return next((lst for lst in self.lists.values() if lst.name == name), None)

    def matches(self, rule: RuleModel, ident: Ident) -> bool:
        field_, value = rule.condition["field"], rule.condition["value"]
        if field_ == "event.type":
            return ident.type == value
        if field_ == "linkedId":
            return ident.linked is not None
        listed = self.list_named(value["list"])
        if listed is None:  # deleted since: rules see a missing list as empty
            return False
        # All requests come from loopback: an IP list matches when it holds 127.0.0.1.
        subject = ident.visitor if field_ == "visitorId" else "127.0.0.1"
        return subject in listed.entries

    def verdict_for(self, ident: Ident) -> tuple[str | None, str | None]:
        live = sorted(
            (r.priority, rid) for rid, r in self.rules.items() if r.status == "live"
        )  # unique priorities: no ties to break
        for _, rid in live:
            if self.matches(self.rules[rid], ident):
                return rid, self.rules[rid].verdict
        # Rules configured but none matched: allowed. No live rule at all: no verdict.
        return None, "allow" if live else None

    def live_idents(self) -> dict[str, Ident]:
        return {rid: i for rid, i in self.idents.items() if i.visitor in self.visitors}


@dataclass
class World:
    """What lives as long as the server: every owner ever made and every id handed out."""

    server: ServerProcess
    http: Http
    data: str
    by_label: dict[str, Owner]
    ids: dict[str, Owner] = field(default_factory=dict)
    markers: dict[str, Owner] = field(init=False)
    revoked: list[tuple[str, Owner, str]] = field(default_factory=list)  # key, owner, kind
    examples: int = 0
    steps: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)  # outcomes worth counting
    budget: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, Exception]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.markers = {o.marker: o for o in self.by_label.values()}

    def own(self, owner: Owner, server_id: str) -> None:
        known = self.ids.setdefault(server_id, owner)
        if known is not owner:
            raise Defect(f"{server_id} handed to {owner.marker} was {known.marker}'s already")

    def check(
        self,
        reader: Owner,
        answer: Answer,
        *,
        ids: bool = True,
        allow: frozenset[str] = frozenset(),
    ) -> None:
        """No marker and no id of another owner in the answer; `allow` are ids the request
        itself carried."""
        text = answer.text
        for found in set(MARKER.findall(text)):
            if self.markers.get(found) is not reader:
                raise Defect(f"{reader.marker} was shown {found}'s data: {answer.describe()}")
        if not ids:
            return
        for found in set(SERVER_ID.findall(text)):
            owner = self.ids.get(found)
            if owner is None or owner is reader or found in allow or found in reader.introduced:
                continue
            raise Defect(
                f"{reader.marker} was shown {found} of {owner.marker}: {answer.describe()}"
            )

    @contextlib.contextmanager
    def timed(self, what: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds[what] += time.monotonic() - start

    @contextlib.contextmanager
    def recorded(self, step: str, args: dict[str, Any]) -> Iterator[None]:
        """Keeps the first failure of the run with the step that raised it."""
        try:
            yield
        except Exception as exc:
            if not self.failures:
                self.failures.append((f"example {self.examples}, {step}({args})", exc))
            raise

    def summary(self) -> str:
        split = ", ".join(f"{pid}: {n}" for pid, n in sorted(self.http.by_worker.items()))
        top = ", ".join(f"{name} {n}" for name, n in self.rules.most_common())
        slow = ", ".join(f"{name} {t:.1f}" for name, t in self.seconds.most_common(6))
        seen = ", ".join(f"{what} {n}" for what, n in sorted(self.seen.items()))
        return (
            f"isolation machine: {self.examples} examples, {self.steps} steps, "
            f"{self.http.requests} HTTP requests (by worker {split}), "
            f"{len(self.revoked)} revoked keys, "
            f"{time.monotonic() - self.started:.1f} s\n  rules: {top}\n  seconds: {slow}\n"
            f"  seen: {seen}"
        )


def secret_endpoints(owner: Owner) -> Iterator[tuple[str, str, Any, dict[str, Any] | None]]:
    """Every secret-only endpoint, with a valid body and, in paths, ids of `owner` where it has
    them: a refusal must not be explained by a bad request, and must leave the data alone."""
    rid = next(iter(owner.idents), "req_0")
    vid = next(iter(owner.visitors), "pv_0")
    rule = next(iter(owner.rules), "rul_0")
    lst = next(iter(owner.lists), "lst_0")
    hook = next(iter(owner.webhooks), "whk_0")
    cohort = next(iter(owner.cohorts), "coh_0")
    run = owner.runs[-1] if owner.runs else "run_0"
    delivery = next(iter(owner.deliveries), "msg_0")
    span = {"from": hours_ago(48), "to": hours_ago(-24)}
    condition = {"field": "event.type", "operator": "equals", "value": "login"}
    yield "GET", "/v1/usage", None, None
    yield "GET", "/v1/export", None, None
    yield "GET", "/v1/events", None, None
    yield "GET", f"/v1/events/{rid}", None, None
    yield "GET", f"/v1/visitors/{vid}", None, None
    yield "GET", f"/v1/visitors/{vid}/events", None, None
    yield "DELETE", f"/v1/visitors/{vid}", None, None
    yield "POST", "/v1/rules", {
        "name": "refused", "status": "live", "action": {"verdict": "block"},
        "conditions": {"operator": "AND", "rules": [condition]},
    }, None  # fmt: skip
    yield "GET", "/v1/rules", None, None
    yield "GET", f"/v1/rules/{rule}", None, None
    yield "PUT", f"/v1/rules/{rule}", {"status": "paused"}, None
    yield "DELETE", f"/v1/rules/{rule}", None, None
    yield "POST", f"/v1/rules/{rule}/backtest", {"days": 1}, None
    yield "POST", "/v1/lists", {"name": "refused", "type": "ip"}, None
    yield "GET", "/v1/lists", None, None
    yield "PATCH", f"/v1/lists/{lst}/entries", {"add": ["10.9.9.9"]}, None
    yield "DELETE", f"/v1/lists/{lst}", None, None
    yield "POST", "/v1/funnels/query", {"steps": ["signup", "invite_sent"], **span}, None
    plan_is_pro = {"type": "property", "property": "plan", "operator": "equals", "value": "pro"}
    yield "POST", "/v1/cohorts", {"name": "refused", "definition": plan_is_pro}, None
    yield "GET", "/v1/cohorts", None, None
    yield "GET", f"/v1/cohorts/{cohort}", None, None
    yield "DELETE", f"/v1/cohorts/{cohort}", None, None
    yield "GET", f"/v1/cohorts/{cohort}/members", None, None
    yield "POST", "/v1/auto-discovery/trigger", None, None
    yield "GET", "/v1/auto-discovery/results", None, None
    yield "GET", f"/v1/auto-discovery/runs/{run}", None, None
    yield "GET", "/v1/analytics/events", None, {**span, "groupBy": "verdict"}
    yield "GET", "/v1/analytics/signals", None, span
    yield "POST", "/v1/webhooks", {"url": "https://refused.invalid/h"}, None
    yield "GET", "/v1/webhooks", None, None
    yield "GET", f"/v1/webhooks/{hook}", None, None
    yield "PUT", f"/v1/webhooks/{hook}", {"status": "paused"}, None
    yield "DELETE", f"/v1/webhooks/{hook}", None, None
    yield "GET", f"/v1/webhooks/{hook}/deliveries", None, None
    yield "POST", f"/v1/webhooks/{hook}/deliveries/{delivery}/replay", None, None


def client_endpoints(owner: Owner) -> Iterator[tuple[str, str, Any, dict[str, Any] | None]]:
    """The write endpoints a public key may call, with valid bodies."""
    user = owner.user(0)
    yield "POST", "/v1/events", {"user_id": user, "event": "signup"}, None
    yield "POST", "/v1/events/batch", {"events": [{"user_id": user, "event": "signup"}]}, None
    yield "POST", "/v1/identify", {"user_id": user, "traits": {"plan": "pro"}}, None
    yield "POST", "/v1/agent/identify", {"components": device(0)}, None
