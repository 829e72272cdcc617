"""Isolation probes: another owner's id by path is a 404 that changes nothing, and a public key
gets 403 on every secret-only endpoint.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from .client import Defect
from .endpoints import secret_endpoints
from .machine import OWNER, PICK, SECRET_KEY, WORKER, MachineBase, counted
from .model import Owner, hours_ago


class Probes(MachineBase):
    # -- isolation probes --------------------------------------------------------------------

    def _probes(self, reader: Owner, target: str) -> list[tuple[str, str, Any]]:
        prefix = target.split("_", 1)[0]
        own_hook = next(iter(sorted(reader.webhooks)), None)
        return {
            "req": [("GET", f"/v1/events/{target}", None)],
            "pv": [
                ("GET", f"/v1/visitors/{target}", None),
                ("GET", f"/v1/visitors/{target}/events", None),
                ("DELETE", f"/v1/visitors/{target}", None),
            ],
            "rul": [
                ("GET", f"/v1/rules/{target}", None),
                ("PUT", f"/v1/rules/{target}", {"name": f"taken by {reader.marker}"}),
                ("DELETE", f"/v1/rules/{target}", None),
                ("POST", f"/v1/rules/{target}/backtest", {"days": 7}),
            ],
            "lst": [
                ("PATCH", f"/v1/lists/{target}/entries", {"add": ["10.7.7.7"]}),
                ("DELETE", f"/v1/lists/{target}", None),
            ],
            "whk": [
                ("GET", f"/v1/webhooks/{target}", None),
                ("PUT", f"/v1/webhooks/{target}", {"status": "paused"}),
                ("DELETE", f"/v1/webhooks/{target}", None),
                ("GET", f"/v1/webhooks/{target}/deliveries", None),
            ],
            "coh": [
                ("GET", f"/v1/cohorts/{target}", None),
                ("GET", f"/v1/cohorts/{target}/members", None),
                ("DELETE", f"/v1/cohorts/{target}", None),
                (
                    "POST",
                    "/v1/funnels/query",
                    {
                        "steps": ["signup", "invite_sent"],
                        "from": hours_ago(48),
                        "to": hours_ago(-24),
                        "cohort_id": target,
                    },
                ),
            ],
            "run": [("GET", f"/v1/auto-discovery/runs/{target}", None)],
            "msg": [
                ("POST", f"/v1/webhooks/{own_hook or 'whk_0'}/deliveries/{target}/replay", None)
            ],
        }[prefix]

    @rule(label=OWNER, worker=WORKER, pick=PICK, which=PICK, kind=SECRET_KEY)
    @counted
    def foreign_id(self, label: str, worker: int, pick: int, which: int, kind: str) -> None:
        reader = self.owners[label]
        targets = self.foreign(reader, "")
        if targets:
            self._probe(reader, targets[pick % len(targets)], which, worker, kind)

    def _probe(self, reader: Owner, target: str, which: int, worker: int, kind: str) -> None:
        victim = self.w.ids[target]
        probes = self._probes(reader, target)
        method, path, body = probes[which % len(probes)]
        answer = self.call(reader, kind, method, path, body=body, worker=worker)
        answer.expect_error(404, "not_found")
        self.w.seen[f"another owner's id refused: {method} {target.split('_')[0]}_"] += 1
        # The error names the id the reader sent, nothing of its owner.
        self.w.check(reader, answer, allow=frozenset({target}))
        # A visitor id as a filter finds nothing either.
        if target.startswith("pv_") and self._identifications(reader, 1 - worker, visitorId=target):
            raise Defect(f"{reader.marker} lists events of {target} of {victim.marker}")
        self._intact(victim, target, 1 - worker)

    def _intact(self, victim: Owner, target: str, worker: int) -> None:
        """What a refused request named is still its owner's, unchanged."""
        prefix = target.split("_", 1)[0]
        if prefix == "pv" and target in victim.visitors:
            self._visitor(victim, target, worker)
        elif prefix == "rul" and target in victim.rules:
            got = self.read(victim, f"/v1/rules/{target}", worker)
            if (got["name"], got["status"]) != (
                victim.rules[target].name,
                victim.rules[target].status,
            ):
                raise Defect(f"rule {target} of {victim.marker} changed: {got}")
        elif prefix == "lst" and target in victim.lists:
            lists = self.read(victim, "/v1/lists", worker, limit=100)["data"]
            count = next((x["entryCount"] for x in lists if x["id"] == target), None)
            if count != len(victim.lists[target].entries):
                raise Defect(f"list {target} of {victim.marker} changed: {lists}")
        elif prefix == "whk" and target in victim.webhooks:
            got = self.read(victim, f"/v1/webhooks/{target}", worker)
            if got["status"] != victim.webhooks[target].status:
                raise Defect(f"webhook {target} of {victim.marker} changed: {got}")
        elif prefix == "coh" and target in victim.cohorts:
            self._cohort(victim, target, worker)

    @rule(label=OWNER, worker=WORKER, which=PICK, fresh=st.booleans())
    @counted
    def public_key_refused(self, label: str, worker: int, which: int, fresh: bool) -> None:
        o = self.owners[label]
        endpoints = list(secret_endpoints(o))
        method, path, body, params = endpoints[which % len(endpoints)]
        answer = self.call(
            o, "pk", method, path, body=body, params=params, worker=worker, fresh=fresh
        )
        answer.expect_error(403, "forbidden")
        self.w.seen["public key refused"] += 1
