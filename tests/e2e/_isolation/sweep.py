"""The sweep at the end of every example: every check, on every owner of one environment."""

from __future__ import annotations

from .endpoints import secret_endpoints
from .machine import CAP, MachineBase


class Sweep(MachineBase):
    # -- the sweep at the end of every example -----------------------------------------------

    def teardown(self) -> None:
        with self.w.timed("teardown"), self.w.recorded("teardown", {}):
            self._sweep()

    def _sweep(self) -> None:
        # One environment of each workspace per example, live and test in turn: every owner is
        # swept every other example at half the cost.
        env = "lt"[self.w.examples % 2]
        for o in (self.owners["a" + env], self.owners["b" + env]):
            for i, endpoint in enumerate(secret_endpoints(o)):
                method, path, body, params = endpoint
                answer = self.call(o, "pk", method, path, body=body, params=params, worker=i % 2)
                answer.expect_error(403, "forbidden")
                self.w.seen["public key refused"] += 1
            self._collections(o, 0)
            self._export(o, 1)
            self._analytics(o, 0, "verdict")
            self._listing(o, 1, "all", 0)
            turn = self.w.examples % 2
            self._funnel(o, 0, "signup", 1, ("event", "user")[turn], ("other", "own")[turn])
            self._discovery(o, 1)
            for vid in sorted(o.visitors):
                self._visitor(o, vid, 0)
            for rid in list(o.idents)[-CAP:]:
                self._event(o, rid, 1)
            for cid in sorted(o.cohorts):
                self._cohort(o, cid, 0)
            for wid in sorted(o.webhooks):
                self._deliveries(o, wid, 1)
            # Every kind of request by path on the newest id of each kind of another owner.
            newest: dict[str, str] = {}
            for server_id, owner in self.w.ids.items():
                if owner is not o:
                    newest[server_id.split("_", 1)[0]] = server_id
            for target in newest.values():
                for which in range(len(self._probes(o, target))):
                    self._probe(o, target, which, which % 2, ("plx", "sk")[which % 2])
