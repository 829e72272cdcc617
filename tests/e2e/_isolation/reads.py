"""Rules that read through every read endpoint and compare the answer with the model of what the
reader itself wrote: identifications, events, visitors, collections, export, analytics, funnels.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from .client import Defect
from .machine import EVENT, OWNER, PICK, WORKER, MachineBase, counted
from .model import EVENT_NAMES, OWN_USERS, SHARED_USERS, Owner, hours_ago


class Reads(MachineBase):
    # -- reads -------------------------------------------------------------------------------

    def _identifications(self, o: Owner, worker: int, **params: Any) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        cursor = None
        for _ in range(100):
            query = {"limit": 100, **params, **({"cursor": cursor} if cursor else {})}
            page = self.read(o, "/v1/events", worker, **query)
            seen.update({e["requestId"]: e["verdict"] for e in page["data"]})
            if not page["hasMore"]:
                return seen
            cursor = page["nextCursor"]
        raise AssertionError("more than 100 pages")

    @rule(
        label=OWNER,
        worker=WORKER,
        by=st.sampled_from(("all", "verdict", "own", "foreign")),
        pick=PICK,
    )
    @counted
    def read_identifications(self, label: str, worker: int, by: str, pick: int) -> None:
        self._listing(self.owners[label], worker, by, pick)

    def _listing(self, o: Owner, worker: int, by: str, pick: int) -> None:
        live = o.live_idents()
        params: dict[str, Any] = {}
        if by == "verdict":
            params["verdict"] = ("allow", "challenge", "block")[pick % 3]
            live = {r: i for r, i in live.items() if i.verdict == params["verdict"]}
        elif by in ("own", "foreign"):
            pool = sorted(o.visitors) if by == "own" else self.foreign(o, "pv_")
            if not pool:
                return
            params["visitorId"] = pool[pick % len(pool)]
            live = {r: i for r, i in live.items() if i.visitor == params["visitorId"]}
        seen = self._identifications(o, worker, **params)
        want = {r: i.verdict for r, i in live.items()}
        if seen != want:
            raise Defect(f"GET /v1/events {params} as {o.marker}: {seen} != {want}")

    @rule(worker=WORKER, pick=PICK)
    @counted
    def read_event(self, worker: int, pick: int) -> None:
        if not (chosen := self.pick("idents", pick)):
            return
        o, rid = chosen
        self._event(o, rid, worker)

    def _event(self, o: Owner, rid: str, worker: int) -> None:
        ident = o.idents[rid]
        if ident.visitor not in o.visitors:
            answer = self.call(o, "sk", "GET", f"/v1/events/{rid}", worker=worker)
            answer.expect_error(404, "not_found")
            return
        doc = self.read(o, f"/v1/events/{rid}", worker)
        matched = (doc.get("matchedRule") or {}).get("id")
        if (doc["requestId"], doc["visitorId"], doc["verdict"], matched, doc.get("linkedId")) != (
            rid,
            ident.visitor,
            ident.verdict,
            ident.rule,
            ident.linked,
        ):
            raise Defect(f"event {rid} of {o.marker}: {doc} against {ident}")

    @rule(worker=WORKER, pick=PICK)
    @counted
    def read_visitor(self, worker: int, pick: int) -> None:
        if not (chosen := self.pick("visitors", pick)):
            return
        o, vid = chosen
        self._visitor(o, vid, worker)

    def _visitor(self, o: Owner, vid: str, worker: int) -> None:
        doc = self.read(o, f"/v1/visitors/{vid}", worker)
        requests = o.visitors[vid]
        lists = {lst.name for lst in o.lists.values() if vid in lst.entries}
        linked = {o.idents[r].linked for r in requests} - {None}
        want = (vid, len(requests), lists, len(linked))
        got = (doc["visitorId"], doc["totalVisits"], set(doc["lists"]), doc["linkedAccounts"])
        if got != want:
            raise Defect(f"visitor {vid} of {o.marker}: {got} != {want}")
        page = self.read(o, f"/v1/visitors/{vid}/events", 1 - worker, limit=100)
        if {e["requestId"] for e in page["data"]} != set(requests):
            raise Defect(f"events of {vid} of {o.marker}: {page} != {requests}")

    @rule(label=OWNER, worker=WORKER)
    @counted
    def read_collections(self, label: str, worker: int) -> None:
        self._collections(self.owners[label], worker)

    def _collections(self, o: Owner, worker: int) -> None:
        rules = self.read(o, "/v1/rules", worker, limit=100)
        got = {r["id"]: (r["name"], r["status"]) for r in rules["data"]}
        if got != {rid: (r.name, r.status) for rid, r in o.rules.items()}:
            raise Defect(f"rules of {o.marker}: {rules}")
        lists = self.read(o, "/v1/lists", worker, limit=100)
        got = {x["id"]: (x["name"], x["type"], x["entryCount"]) for x in lists["data"]}
        if got != {lid: (x.name, x.type, len(x.entries)) for lid, x in o.lists.items()}:
            raise Defect(f"lists of {o.marker}: {lists}")
        hooks = self.read(o, "/v1/webhooks", worker, limit=100)
        got = {h["id"]: (h["url"], h["status"]) for h in hooks["data"]}
        if got != {wid: (h.url, h.status) for wid, h in o.webhooks.items()}:
            raise Defect(f"webhooks of {o.marker}: {hooks}")
        for wid in o.webhooks:
            if self.read(o, f"/v1/webhooks/{wid}", worker)["id"] != wid:
                raise Defect(f"webhook {wid} of {o.marker}")
        cohorts = self.read(o, "/v1/cohorts", worker, limit=100)
        if {c["id"] for c in cohorts["data"]} != set(o.cohorts):
            raise Defect(f"cohorts of {o.marker}: {cohorts}")
        for rid in o.rules:
            if self.read(o, f"/v1/rules/{rid}", worker)["id"] != rid:
                raise Defect(f"rule {rid} of {o.marker}")

    @rule(label=OWNER, worker=WORKER)
    @counted
    def read_export(self, label: str, worker: int) -> None:
        self._export(self.owners[label], worker)

    def _export(self, o: Owner, worker: int) -> None:
        answer = self.call(o, ("plx", "sk")[worker], "GET", "/v1/export", worker=worker)
        if answer.status != 200:  # NDJSON: not one JSON document
            self.fail("export", answer)
        self.w.check(o, answer)
        rows = [json.loads(line) for line in answer.text.split("\n") if line]
        users = {o.user(n) for n in range(OWN_USERS + SHARED_USERS)}
        strays = [
            r for r in rows if r["user_id"] not in users or r["properties"]["owner"] != o.marker
        ]
        if len(rows) != o.stored or strays:
            self.fail(f"expected {o.stored} rows of {o.marker}, strays {strays}", answer)

    @rule(label=OWNER, worker=WORKER, group=st.sampled_from(("verdict", "platform", "day")))
    @counted
    def read_analytics(self, label: str, worker: int, group: str) -> None:
        self._analytics(self.owners[label], worker, group)

    def _analytics(self, o: Owner, worker: int, group: str) -> None:
        span = {"from": hours_ago(24), "to": hours_ago(-24)}
        live = o.live_idents()
        got = self.read(o, "/v1/analytics/events", worker, groupBy=group, **span)
        counts = Counter(i.verdict for i in live.values())
        if got["total"] != len(live):
            raise Defect(f"analytics of {o.marker}: {got} against {len(live)} identifications")
        if group == "verdict" and {g["verdict"]: g["count"] for g in got["groups"]} != counts:
            raise Defect(f"analytics of {o.marker}: {got} against {counts}")
        signals = self.read(o, "/v1/analytics/signals", 1 - worker, **span)
        if signals["total"] != len(live):
            raise Defect(f"signals of {o.marker}: {signals} against {len(live)}")

    @rule(
        label=OWNER,
        worker=WORKER,
        first=EVENT,
        gap=st.integers(1, 3),
        breakdown=st.sampled_from((None, "event", "user")),
        where=st.sampled_from((None, "own", "other")),
    )
    @counted
    def query_funnel(
        self, label: str, worker: int, first: str, gap: int, breakdown: Any, where: Any
    ) -> None:
        self._funnel(self.owners[label], worker, first, gap, breakdown, where)

    def _funnel(
        self, o: Owner, worker: int, first: str, gap: int, breakdown: Any = None, where: Any = None
    ) -> None:
        second = EVENT_NAMES[(EVENT_NAMES.index(first) + gap) % len(EVENT_NAMES)]
        step: Any = first
        did_first = o.users_by_event.get(first, set())
        if where is not None:
            # Every event carries its owner's marker in `owner`: filtering on another owner's
            # marker must find no one here, whatever other workspaces stored.
            others = sorted(m for m in self.w.markers if m != o.marker)
            marker = o.marker if where == "own" else others[(len(o.idents) + gap) % len(others)]
            only = {"property": "owner", "operator": "equals", "value": marker}
            step = {"event": first, "where": [only]}
            did_first = did_first if where == "own" else set()
        body: dict[str, Any] = {
            "steps": [step, second],
            "from": hours_ago(24 * 7),
            "to": hours_ago(-24),
        }
        if breakdown is not None:
            body["breakdown"] = {"property": "owner", "source": breakdown}
        answer = self.call(o, "sk", "POST", "/v1/funnels/query", body=body, worker=worker)
        got = answer.expect(200)
        # The query itself may carry another owner's marker; the answer is checked by counts.
        if where != "other":
            self.w.check(o, answer)
        both = did_first & o.users_by_event.get(second, set())
        steps = [s["users"] for s in got["steps"]]
        if steps[0] != len(did_first) or steps[1] > len(both):
            self.fail(f"expected {len(did_first)} then at most {len(both)} users", answer)
        for group in got["breakdown"] or []:
            if group["value"] not in (o.marker, None) or group["steps"][0]["users"] > steps[0]:
                self.fail(f"breakdown by owner in {o.marker}", answer)
