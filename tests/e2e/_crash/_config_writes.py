"""The writer of configuration: rules, lists and their entries, webhooks, cohorts, and
auto-discovery triggers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._config import ACKED, EVENT_NAMES, UNKNOWN
from ._driver import Op, Reply, Writer
from ._record import NAME_FIELD, Patch, Thing, presence

if TYPE_CHECKING:
    from ._harness import Harness

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
        present = [e for e, ops in thing.entries.items() if presence(ops) == {True}]
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
