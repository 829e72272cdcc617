"""Key rotation while serving (every earlier key gets 401 from both workers at once) and usage,
which counts exactly the owner's own stored events.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from api.process import cli

from .client import Defect
from .endpoints import client_endpoints, secret_endpoints
from .machine import PICK, WORKER, MachineBase, counted
from .model import Owner, env_keys


class KeysUsage(MachineBase):
    # -- keys --------------------------------------------------------------------------------

    @rule(side=st.sampled_from("ab"), which=PICK)
    @counted
    def rotate_keys(self, side: str, which: int) -> None:
        if self.w.budget["rotations"] <= 0:
            self._revoked(which, which // 7, which % 2)
            return
        self.w.budget["rotations"] -= 1
        live, test = self.owners[side + "l"], self.owners[side + "t"]
        old = [(o, kind, o.keys[kind]) for o in (live, test) for kind in ("plx", "sk", "pk")]
        rotated = cli("keys", "rotate", "--workspace", live.workspace, data=self.w.data)
        if rotated["id"] != live.workspace:
            raise Defect(f"rotated {rotated['id']} instead of {live.workspace}")
        live.keys, test.keys = env_keys(rotated["keys"], "live"), env_keys(rotated["keys"], "test")
        for o, kind, key in old:
            self.w.revoked.append((key, o, kind))
            # Every endpoint on each worker's kept-alive connection, then fresh connections
            # whose worker the kernel picks: no worker may still know the key.
            for method, path, body, params in [*secret_endpoints(o), *client_endpoints(o)]:
                for worker in (0, 1):
                    answer = self.call(
                        o, kind, method, path, body=body, params=params, worker=worker, key=key
                    )
                    answer.expect_error(401, "invalid_api_key")
                    self.w.seen["revoked key refused"] += 1
            for _ in range(3):
                answer = self.call(o, kind, "GET", "/v1/usage", fresh=True, key=key)
                answer.expect_error(401, "invalid_api_key")
                self.w.seen["revoked key refused"] += 1
        for o in (live, test):
            for worker in (0, 1):
                for kind in ("plx", "sk"):
                    self._usage(o, kind, worker)
                refused = self.call(o, "pk", "GET", "/v1/usage", worker=worker)
                refused.expect_error(403, "forbidden")
                self._track(o, "pk", worker, self._event_body(o, 0, "signup", None, None))
            fresh = self.call(o, "sk", "GET", "/v1/usage", fresh=True)
            fresh.expect(200)

    @rule(pick=PICK, which=PICK, worker=WORKER)
    @counted
    def revoked_key_refused(self, pick: int, which: int, worker: int) -> None:
        self._revoked(pick, which, worker)

    def _revoked(self, pick: int, which: int, worker: int) -> None:
        if not self.w.revoked:
            return
        key, o, kind = self.w.revoked[pick % len(self.w.revoked)]
        endpoints = [*secret_endpoints(o), *client_endpoints(o)]
        method, path, body, params = endpoints[which % len(endpoints)]
        answer = self.call(o, kind, method, path, body=body, params=params, worker=worker, key=key)
        answer.expect_error(401, "invalid_api_key")
        self.w.seen["revoked key refused"] += 1

    # -- usage -------------------------------------------------------------------------------

    def _usage(self, o: Owner, kind: str, worker: int) -> None:
        answer = self.call(o, kind, "GET", "/v1/usage", worker=worker)
        got = answer.expect(200)
        self.w.check(o, answer)
        side = o.label[0]
        live, test = self.owners[side + "l"].stored, self.owners[side + "t"].stored
        want = (o.workspace, live, test, live, 0)
        counts = (
            got["workspace_id"],
            got["events"]["live"],
            got["events"]["test"],
            got["billable_events"],
            got["rate_limited_requests"],
        )
        if counts != want:
            self.fail(f"expected usage {want}", answer)

    @invariant()
    def usage_is_own(self) -> None:
        with self.w.timed("usage_is_own"), self.w.recorded("usage_is_own", {}):
            self._usage_of_both()

    def _usage_of_both(self) -> None:
        # Usage is per workspace (both environments); read it through each in turn.
        env = "lt"[self.w.steps % 2]
        for side in "ab":
            self._usage(self.owners[side + env], "plx", self.w.steps % 2)
