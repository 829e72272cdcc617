"""Rules over an owner's user analyses: cohorts and their members, auto-discovery runs."""

from __future__ import annotations

import time

from hypothesis import strategies as st
from hypothesis.stateful import rule

from .client import Defect
from .machine import CAP, OWNER, PICK, POLL_SECONDS, WORKER, MachineBase, counted
from .model import EVENT_NAMES, PLANS, CohortModel, Owner


class CohortsDiscovery(MachineBase):
    # -- cohorts -----------------------------------------------------------------------------

    def _members(self, o: Owner, cid: str, worker: int) -> set[str]:
        page = self.read(o, f"/v1/cohorts/{cid}/members", worker)
        if page["hasMore"] or page["cohortId"] != cid:
            raise Defect(f"one page expected for {cid} of {o.marker}: {page}")
        return set(page["userIds"])

    @rule(label=OWNER, worker=WORKER, kind=st.sampled_from(("event", "property")), value=PICK)
    @counted
    def create_cohort(self, label: str, worker: int, kind: str, value: int) -> None:
        o = self.owners[label]
        if len(o.cohorts) >= CAP:
            self._delete_cohort(o, next(iter(o.cohorts)), worker)
        if kind == "event":
            name = EVENT_NAMES[value % len(EVENT_NAMES)]
            definition = {
                "type": "event",
                "event": name,
                "count": {"operator": "gte", "value": 1},
                "window": {"last_days": 30},
            }
            expected = set(o.users_by_event.get(name, ()))
        else:
            name = PLANS[value % len(PLANS)]
            definition = {
                "type": "property",
                "property": "plan",
                "operator": "equals",
                "value": name,
            }
            expected = {u for u, plan in o.plan_of.items() if plan == name}
        body = {"name": f"cohort {o.marker} {o.next()}", "definition": definition}
        answer = self.call(o, "plx", "POST", "/v1/cohorts", body=body, worker=worker)
        created = answer.expect(201)
        self.w.check(o, answer)
        self.w.own(o, created["id"])
        if created["size"] != len(expected):
            self.fail(f"expected {len(expected)} members", answer)
        o.cohorts[created["id"]] = CohortModel(body["name"], kind, name, expected)
        members = self._members(o, created["id"], 1 - worker)
        if members != expected:
            raise Defect(f"cohort {created['id']} of {o.marker}: {members} != {expected}")

    @rule(worker=WORKER, pick=PICK)
    @counted
    def read_cohort(self, worker: int, pick: int) -> None:
        if not (chosen := self.pick("cohorts", pick)):
            return
        o, cid = chosen
        self._cohort(o, cid, worker)

    def _cohort(self, o: Owner, cid: str, worker: int) -> None:
        got = self.read(o, f"/v1/cohorts/{cid}", worker)
        cohort = o.cohorts[cid]
        if got["id"] != cid or got["name"] != cohort.name:
            raise Defect(f"cohort {cid} of {o.marker} reads {got}")
        members = self._members(o, cid, worker)
        # Refreshes run in the background: members lie between what qualified at creation and
        # what qualifies (or ever did) now, never outside the owner's own users.
        if cohort.kind == "event":
            low, high = cohort.at_creation, o.users_by_event.get(cohort.value, set())
        else:
            low, high = set(), o.ever_plan.get(cohort.value, set())
        if not low <= members <= high:
            raise Defect(f"cohort {cid} of {o.marker}: {members} not within {low}..{high}")

    @rule(worker=WORKER, pick=PICK)
    @counted
    def delete_cohort(self, worker: int, pick: int) -> None:
        if chosen := self.pick("cohorts", pick):
            self._delete_cohort(*chosen, worker)

    def _delete_cohort(self, o: Owner, cid: str, worker: int) -> None:
        answer = self.call(o, "sk", "DELETE", f"/v1/cohorts/{cid}", worker=worker)
        answer.expect(200)
        self.w.check(o, answer)
        del o.cohorts[cid]
        self.call(o, "sk", "GET", f"/v1/cohorts/{cid}", worker=1 - worker).expect_error(
            404, "not_found"
        )

    # -- auto-discovery ----------------------------------------------------------------------

    @rule(label=OWNER, worker=WORKER)
    @counted
    def trigger_discovery(self, label: str, worker: int) -> None:
        o = self.owners[label]
        if self.w.budget["discoveries"] <= 0:
            self._discovery(o, worker)
            return
        self.w.budget["discoveries"] -= 1
        answer = self.call(o, "sk", "POST", "/v1/auto-discovery/trigger", worker=worker)
        run = answer.expect(202)
        self.w.check(o, answer)
        self.w.own(o, run["runId"])
        # The run executes in the background; poll it (it takes milliseconds on this data).
        deadline = time.monotonic() + POLL_SECONDS
        while run["status"] not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
            run = self.read(o, f"/v1/auto-discovery/runs/{run['runId']}", worker)
        if run["status"] != "completed":
            raise Defect(f"discovery run of {o.marker} did not complete: {run}")
        o.runs.append(run["runId"])
        users = set().union(*o.users_by_event.values()) if o.users_by_event else set()
        if run["usersAnalysed"] > len(users):
            raise Defect(f"run of {o.marker} analysed {run['usersAnalysed']} > {len(users)}")
        self._discovery(o, 1 - worker)

    def _discovery(self, o: Owner, worker: int) -> None:
        answer = self.call(o, "plx", "GET", "/v1/auto-discovery/results", worker=worker)
        self.w.check(o, answer)
        if not o.runs:
            answer.expect_error(404, "not_found")
        elif answer.expect(200)["runId"] != o.runs[-1]:
            self.fail(f"expected run {o.runs[-1]}", answer)

    @rule(label=OWNER, worker=WORKER)
    @counted
    def read_discovery(self, label: str, worker: int) -> None:
        self._discovery(self.owners[label], worker)
