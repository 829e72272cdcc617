"""The checks of one verification pass after a restart, against the running server."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx

from ._config import ACKED, UNKNOWN, HarnessError
from ._driver import iso_ago
from ._record import NAME_FIELD, Device, Thing

if TYPE_CHECKING:
    from ._harness import Harness


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
