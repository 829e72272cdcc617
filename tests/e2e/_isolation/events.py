"""Rules that write what clients send: analytics events and traits, device identifications, and the
deletion of visitors. Each write updates the model of its owner.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from .machine import (
    CLIENT_KEY,
    EVENT,
    HOURS,
    INSERT_ID,
    OWNER,
    PICK,
    USER,
    WORKER,
    MachineBase,
    counted,
)
from .model import DEVICES, IDENTIFY_TYPES, PLANS, Ident, Owner, device, hours_ago


class EventWrites(MachineBase):
    # -- analytics writes --------------------------------------------------------------------

    def _event_body(self, o: Owner, user: int, event: str, hours: Any, insert: Any) -> dict:
        body: dict[str, Any] = {
            "user_id": o.user(user),
            "event": event,
            "properties": {"owner": o.marker, "n": user},
        }
        if hours is not None:
            body["timestamp"] = hours_ago(hours)
        if insert is not None:
            body["insert_id"] = f"ins_{insert}"  # the same ids in every owner: dedup is per owner
        return body

    def _stored(self, o: Owner, body: dict[str, Any]) -> int:
        """Apply one event to the model; 1 if it is stored, 0 if deduplicated."""
        insert = body.get("insert_id")
        if insert is not None and insert in o.insert_ids:
            self.w.seen["events deduplicated"] += 1
            return 0
        if insert is not None:
            if any(insert in other.insert_ids for other in self.owners.values()):
                self.w.seen["insert_id another owner used, stored"] += 1
            o.insert_ids.add(insert)
        self.w.seen["events stored"] += 1
        o.stored += 1
        o.users_by_event.setdefault(body["event"], set()).add(body["user_id"])
        return 1

    @rule(
        label=OWNER,
        kind=CLIENT_KEY,
        worker=WORKER,
        user=USER,
        event=EVENT,
        hours=HOURS,
        insert=INSERT_ID,
    )
    @counted
    def track_event(
        self, label: str, kind: str, worker: int, user: int, event: str, hours: Any, insert: Any
    ) -> None:
        o = self.owners[label]
        self._track(o, kind, worker, self._event_body(o, user, event, hours, insert))

    def _track(self, o: Owner, kind: str, worker: int, body: dict[str, Any]) -> None:
        answer = self.call(o, kind, "POST", "/v1/events", body=body, worker=worker)
        stored = self._stored(o, body)
        got = answer.expect(200)
        if got != {"accepted": 1, "stored": stored, "deduplicated": 1 - stored}:
            self.fail(f"expected stored={stored}", answer)

    @rule(
        label=OWNER,
        kind=CLIENT_KEY,
        worker=WORKER,
        items=st.lists(st.tuples(USER, EVENT, HOURS, INSERT_ID), min_size=1, max_size=4),
    )
    @counted
    def track_batch(self, label: str, kind: str, worker: int, items: list[tuple]) -> None:
        o = self.owners[label]
        events = [self._event_body(o, *item) for item in items]
        answer = self.call(
            o, kind, "POST", "/v1/events/batch", body={"events": events}, worker=worker
        )
        stored = sum(self._stored(o, body) for body in events)
        want = {"accepted": len(events), "stored": stored, "deduplicated": len(events) - stored}
        if answer.expect(200) != want:
            self.fail(f"expected {want}", answer)

    @rule(label=OWNER, kind=CLIENT_KEY, worker=WORKER, user=USER, plan=st.sampled_from(PLANS))
    @counted
    def set_traits(self, label: str, kind: str, worker: int, user: int, plan: str) -> None:
        o = self.owners[label]
        body = {"user_id": o.user(user), "traits": {"plan": plan, "owner": o.marker}}
        answer = self.call(o, kind, "POST", "/v1/identify", body=body, worker=worker)
        got = answer.expect(200)
        self.w.check(o, answer)
        if got["user_id"] != o.user(user) or got["traits"].get("plan") != plan:
            self.fail("identify did not answer the merged profile", answer)
        o.plan_of[o.user(user)] = plan
        o.ever_plan.setdefault(plan, set()).add(o.user(user))

    # -- device identification ---------------------------------------------------------------

    @rule(
        label=OWNER,
        kind=CLIENT_KEY,
        worker=WORKER,
        dev=st.integers(0, DEVICES - 1),
        kind_of_event=st.sampled_from(IDENTIFY_TYPES),
        linked=st.booleans(),
        stored=st.sampled_from(("none", "own", "foreign")),
        pick=PICK,
    )
    @counted
    def identify_device(
        self,
        label: str,
        kind: str,
        worker: int,
        dev: int,
        kind_of_event: str,
        linked: bool,
        stored: str,
        pick: int,
    ) -> None:
        o = self.owners[label]
        body: dict[str, Any] = {
            "components": device(dev),
            "type": kind_of_event,
            "tag": {"owner": o.marker, "n": o.next()},
        }
        if linked:
            body["linkedId"] = f"lnk_{o.marker}_{dev}"
        # A stored id that is not the device's, or another owner's, must be ignored.
        candidates = sorted(o.visitors) if stored == "own" else self.foreign(o, "pv_")
        carried = frozenset()
        if stored != "none" and candidates:
            body["storedVisitorId"] = candidates[pick % len(candidates)]
            carried = frozenset({body["storedVisitorId"]})
        answer = self.call(o, kind, "POST", "/v1/agent/identify", body=body, worker=worker)
        doc = answer.expect(200)
        self.w.check(o, answer, allow=carried)
        rid, vid = doc["requestId"], doc["visitorId"]
        known = o.device_visitors.get(dev, set())
        sent = body.get("storedVisitorId")
        if sent in known and (vid != sent or doc["visitorFound"] is not True):
            self.fail(f"device {dev} sent its own visitor id {sent} of {o.marker}", answer)
        if vid not in known and (doc["visitorFound"] is not False or vid in self.w.ids):
            self.fail(f"device {dev} of {o.marker} was answered a visitor not its own", answer)
        self.w.own(o, rid)
        self.w.own(o, vid)
        ident = Ident(vid, dev, kind_of_event, body.get("linkedId"), None, None)
        ident.rule, ident.verdict = o.verdict_for(ident)
        if kind == "pk":
            if set(doc) != {"requestId", "visitorId", "confidence", "visitorFound"}:
                self.fail("a public key gets the short answer", answer)
        else:
            matched = (doc.get("matchedRule") or {}).get("id")
            if doc["verdict"] != ident.verdict or matched != ident.rule:
                self.fail(f"expected verdict {ident.verdict} by {ident.rule}", answer)
        o.idents[rid] = ident
        self.w.seen["identifications"] += 1
        self.w.seen["returning visitor" if vid in known else "new visitor"] += 1
        if ident.rule:
            self.w.seen["verdicts by a rule"] += 1
        if carried and stored == "foreign":
            self.w.seen["another owner's storedVisitorId ignored"] += 1
        o.device_visitors.setdefault(dev, set()).add(vid)
        o.visitors.setdefault(vid, []).append(rid)
        for hook in o.webhooks.values():
            if hook.status == "active":
                hook.requests.add(rid)

    @rule(worker=WORKER, pick=PICK)
    @counted
    def delete_visitor(self, worker: int, pick: int) -> None:
        if not (chosen := self.pick("visitors", pick)):
            return
        o, vid = chosen
        answer = self.call(o, "sk", "DELETE", f"/v1/visitors/{vid}", worker=worker)
        if answer.expect(200) != {"deleted": True, "visitorId": vid}:
            self.fail("deletion answer", answer)
        del o.visitors[vid]
        o.gone_visitors.add(vid)
        for ids in o.device_visitors.values():
            ids.discard(vid)
        for listed in o.lists.values():
            if listed.type == "visitor":
                listed.entries.discard(vid)
        # The deletion holds at once on the other worker too.
        gone = self.call(o, "plx", "GET", f"/v1/visitors/{vid}", worker=1 - worker)
        gone.expect_error(404, "not_found")
