"""Rules over an owner's device-intelligence configuration: lists, rules (with backtests) and
webhooks with their deliveries.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from .client import Defect
from .machine import CAP, LIST_TYPES, OWNER, PICK, WORKER, MachineBase, counted
from .model import (
    HOOK_HOST,
    IDENTIFY_TYPES,
    SHARED_LIST_NAMES,
    ListModel,
    Owner,
    RuleModel,
    WebhookModel,
)


class DeviceConfig(MachineBase):
    # -- lists -------------------------------------------------------------------------------

    @rule(label=OWNER, worker=WORKER, name=st.integers(0, 4), kind=st.sampled_from(LIST_TYPES))
    @counted
    def create_list(self, label: str, worker: int, name: int, kind: str) -> None:
        o = self.owners[label]
        # Shared names are free in every owner; a second one in the same owner is refused.
        title = SHARED_LIST_NAMES[name] if name < len(SHARED_LIST_NAMES) else f"l_{o.marker}_{name}"
        body = {"name": title, "type": kind, "description": f"list of {o.marker}"}
        answer = self.call(o, "sk", "POST", "/v1/lists", body=body, worker=worker)
        self.w.check(o, answer)
        if o.list_named(title) is not None:
            answer.expect_error(400, "validation_error")
            self.w.seen["list name taken in the owner, refused"] += 1
            return
        if any(x.list_named(title) for x in self.owners.values()):
            self.w.seen["list name of another owner, created"] += 1
        created = answer.expect(201)
        self.w.own(o, created["id"])
        o.lists[created["id"]] = ListModel(title, kind)

    def _entries(self, o: Owner, kind: str, picks: list[int]) -> list[str]:
        if kind == "ip":
            pool = ["127.0.0.1", "10.1.2.3", "192.0.2.7"]
        elif kind == "email":
            pool = [f"e{i}.{o.marker}@example.com" for i in range(3)]
        else:
            # Another owner's visitor ids are just strings to this owner: they may be listed.
            pool = sorted(set(o.visitors) | o.gone_visitors) + self.foreign(o, "pv_")
        return [pool[p % len(pool)] for p in picks] if pool else ["pv_nobody"]

    @rule(
        worker=WORKER, pick=PICK, add=st.lists(PICK, max_size=3), remove=st.lists(PICK, max_size=2)
    )
    @counted
    def patch_list(self, worker: int, pick: int, add: list[int], remove: list[int]) -> None:
        if not (chosen := self.pick("lists", pick)):
            return
        o, lid = chosen
        listed = o.lists[lid]
        adds, removes = self._entries(o, listed.type, add), self._entries(o, listed.type, remove)
        body = {"add": adds, "remove": removes}
        answer = self.call(o, "plx", "PATCH", f"/v1/lists/{lid}/entries", body=body, worker=worker)
        added = len(set(adds) - listed.entries)
        listed.entries |= set(adds)
        removed = len(set(removes) & listed.entries)
        listed.entries -= set(removes)
        # The owner's own input: list_update deliveries echo both sides of the patch.
        o.introduced |= {e for e in adds + removes if self.w.ids.get(e, o) is not o}
        want = {
            "listId": lid,
            "added": added,
            "removed": removed,
            "entryCount": len(listed.entries),
        }
        if answer.expect(200) != want:
            self.fail(f"expected {want}", answer)

    @rule(worker=WORKER, pick=PICK)
    @counted
    def delete_list(self, worker: int, pick: int) -> None:
        if not (chosen := self.pick("lists", pick)):
            return
        o, lid = chosen
        answer = self.call(o, "sk", "DELETE", f"/v1/lists/{lid}", worker=worker)
        if answer.expect(200) != {"deleted": True, "listId": lid}:
            self.fail("deletion answer", answer)
        del o.lists[lid]

    # -- rules -------------------------------------------------------------------------------

    def _condition(self, o: Owner, template: int, param: int) -> tuple[dict, str | None]:
        """A condition and the list type it needs (None: it needs no list)."""
        names = [*SHARED_LIST_NAMES, f"l_{o.marker}_3", f"l_{o.marker}_4"]
        if template == 0:
            value = IDENTIFY_TYPES[param % len(IDENTIFY_TYPES)]
            return {"field": "event.type", "operator": "equals", "value": value}, None
        if template == 1:
            reference = {"list": names[param % len(names)]}
            return {"field": "visitorId", "operator": "in", "value": reference}, "visitor"
        if template == 2:
            reference = {"list": names[param % len(names)]}
            return {"field": "ip.address", "operator": "in", "value": reference}, "ip"
        return {"field": "linkedId", "operator": "exists", "value": True}, None

    @rule(
        label=OWNER,
        worker=WORKER,
        template=st.integers(0, 3),
        param=PICK,
        verdict=st.sampled_from(("allow", "challenge", "block")),
        status=st.sampled_from(("live", "live", "draft")),
    )
    @counted
    def create_rule(
        self, label: str, worker: int, template: int, param: int, verdict: str, status: str
    ) -> None:
        o = self.owners[label]
        if len(o.rules) >= CAP:
            self._delete_rule(o, next(iter(o.rules)), worker)
        condition, needs = self._condition(o, template, param)
        priority = o.next_priority
        o.next_priority += 1
        body = {
            "name": f"rule {o.marker} {o.next()}",
            "priority": priority,
            "status": status,
            "conditions": {"operator": "AND", "rules": [condition]},
            "action": {"verdict": verdict},
        }
        answer = self.call(o, "sk", "POST", "/v1/rules", body=body, worker=worker)
        self.w.check(o, answer)
        if needs is not None:
            # A list is looked up by name in the owner's lists only, never in another owner's.
            listed = o.list_named(condition["value"]["list"])
            if listed is None or listed.type != needs:
                answer.expect_error(400, "validation_error")
                self.w.seen["rule on a list the owner lacks, refused"] += 1
                return
        created = answer.expect(201)
        self.w.own(o, created["id"])
        o.rules[created["id"]] = RuleModel(body["name"], priority, status, verdict, condition)

    @rule(worker=WORKER, pick=PICK, status=st.sampled_from(("live", "draft", "paused")))
    @counted
    def update_rule(self, worker: int, pick: int, status: str) -> None:
        if not (chosen := self.pick("rules", pick)):
            return
        o, rid = chosen
        name = f"rule {o.marker} {o.next()}"
        body = {"status": status, "name": name}
        answer = self.call(o, "plx", "PUT", f"/v1/rules/{rid}", body=body, worker=worker)
        got = answer.expect(200)
        self.w.check(o, answer)
        if got["id"] != rid or got["status"] != status or got["name"] != name:
            self.fail("update answer", answer)
        o.rules[rid].status, o.rules[rid].name = status, name

    @rule(worker=WORKER, pick=PICK)
    @counted
    def delete_rule(self, worker: int, pick: int) -> None:
        if chosen := self.pick("rules", pick):
            self._delete_rule(*chosen, worker)

    def _delete_rule(self, o: Owner, rid: str, worker: int) -> None:
        answer = self.call(o, "sk", "DELETE", f"/v1/rules/{rid}", worker=worker)
        if answer.expect(200) != {"deleted": True, "ruleId": rid}:
            self.fail("deletion answer", answer)
        del o.rules[rid]

    @rule(worker=WORKER, pick=PICK)
    @counted
    def backtest_rule(self, worker: int, pick: int) -> None:
        if not (chosen := self.pick("rules", pick)):
            return
        o, rid = chosen
        body = {"days": 7, "sampleSize": 100}
        answer = self.call(o, "sk", "POST", f"/v1/rules/{rid}/backtest", body=body, worker=worker)
        got = answer.expect(200)
        self.w.check(o, answer)
        live = o.live_idents()
        matching = {r for r, i in live.items() if o.matches(o.rules[rid], i)}
        if got["totalEvents"] != len(live) or got["matchCount"] != len(matching):
            self.fail(f"expected {len(matching)} of {len(live)} identifications", answer)
        if not {s["requestId"] for s in got["sample"]} <= matching:
            self.fail("sample outside the matches", answer)

    # -- webhooks ----------------------------------------------------------------------------

    @rule(label=OWNER, worker=WORKER)
    @counted
    def create_webhook(self, label: str, worker: int) -> None:
        o = self.owners[label]
        if len(o.webhooks) >= CAP:
            self._delete_webhook(o, next(iter(o.webhooks)), worker)
        n = o.next()
        url = f"https://{HOOK_HOST.format(marker=o.marker, n=n)}/{o.marker}_{n}"
        answer = self.call(o, "plx", "POST", "/v1/webhooks", body={"url": url}, worker=worker)
        created = answer.expect(201)
        self.w.check(o, answer)
        self.w.own(o, created["id"])
        o.webhooks[created["id"]] = WebhookModel(url)

    @rule(worker=WORKER, pick=PICK, status=st.sampled_from(("active", "paused")))
    @counted
    def update_webhook(self, worker: int, pick: int, status: str) -> None:
        if not (chosen := self.pick("webhooks", pick)):
            return
        o, wid = chosen
        answer = self.call(
            o, "sk", "PUT", f"/v1/webhooks/{wid}", body={"status": status}, worker=worker
        )
        got = answer.expect(200)
        self.w.check(o, answer)
        if got["id"] != wid or got["status"] != status:
            self.fail("update answer", answer)
        o.webhooks[wid].status = status

    @rule(worker=WORKER, pick=PICK)
    @counted
    def delete_webhook(self, worker: int, pick: int) -> None:
        if chosen := self.pick("webhooks", pick):
            self._delete_webhook(*chosen, worker)

    def _delete_webhook(self, o: Owner, wid: str, worker: int) -> None:
        answer = self.call(o, "sk", "DELETE", f"/v1/webhooks/{wid}", worker=worker)
        if answer.expect(200) != {"deleted": True, "webhookId": wid}:
            self.fail("deletion answer", answer)
        del o.webhooks[wid]

    @rule(worker=WORKER, pick=PICK)
    @counted
    def read_deliveries(self, worker: int, pick: int) -> None:
        if not (chosen := self.pick("webhooks", pick)):
            return
        o, wid = chosen
        self._deliveries(o, wid, worker)

    def _deliveries(self, o: Owner, wid: str, worker: int) -> None:
        page = self.read(o, f"/v1/webhooks/{wid}/deliveries", worker, limit=100)
        for delivery in page["data"]:
            self.w.own(o, delivery["id"])
            o.deliveries.add(delivery["id"])
            # A payload that refers to a deleted visitor's identification reads null.
            rid = ((delivery["payload"] or {}).get("data") or {}).get("requestId")
            if rid is not None and rid not in o.webhooks[wid].requests:
                raise Defect(f"{wid} of {o.marker} carries {rid}: {delivery}")
            self.w.seen["deliveries checked"] += 1
