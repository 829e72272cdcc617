"""The base of the isolation state machine: what hypothesis draws, the step counter, and the
helpers every group of rules calls (requests as an owner, checked reads, picks over owners).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize

from .client import Answer, Defect
from .model import EVENT_NAMES, OWN_USERS, SHARED_USERS, Owner
from .world import World

LABELS = ("al", "at", "bl", "bt")
OWNER = st.sampled_from(LABELS)
WORKER = st.integers(0, 1)
PICK = st.integers(0, 2**16)
CLIENT_KEY = st.sampled_from(("pk", "plx", "sk"))
SECRET_KEY = st.sampled_from(("plx", "sk"))
USER = st.integers(0, OWN_USERS + SHARED_USERS - 1)
EVENT = st.sampled_from(EVENT_NAMES)
INSERT_ID = st.one_of(st.none(), st.integers(0, 15))
HOURS = st.sampled_from((None, 1, 20, 40))
LIST_TYPES = ("visitor", "ip", "email")
# At most this many of each per owner: a full owner deletes its oldest first. Keeps the listings
# on one page and the sweep at the end of each example bounded however long the run.
CAP = 6
POLL_SECONDS = 60.0


def counted(fn: Callable[..., None]) -> Callable[..., None]:
    """Counts the step for the run's summary."""

    @functools.wraps(fn)
    def step(self: MachineBase, **kwargs: Any) -> None:
        self.w.steps += 1
        self.w.rules[fn.__name__] += 1
        with self.w.timed(fn.__name__), self.w.recorded(fn.__name__, kwargs):
            fn(self, **kwargs)

    return step


class MachineBase(RuleBasedStateMachine):
    world: ClassVar[World]

    def __init__(self) -> None:
        super().__init__()
        self.w = self.world
        # The owners and the model outlive the example, as the server's data does: each example
        # goes on from what the earlier ones left.
        self.owners = self.w.by_label

    # -- helpers -----------------------------------------------------------------------------

    def call(
        self,
        owner: Owner,
        kind: str,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        worker: int = 0,
        fresh: bool = False,
        key: str | None = None,
    ) -> Answer:
        return self.w.http.request(
            method,
            path,
            key=key or owner.keys[kind],
            who=f"{owner.marker}/{kind}",
            body=body,
            params=params,
            worker=worker,
            fresh=fresh,
        )

    def read(self, owner: Owner, path: str, worker: int, **params: Any) -> Any:
        """A secret-key read that must succeed and carry only the owner's data."""
        kind = ("plx", "sk")[self.w.http.requests % 2]
        answer = self.call(owner, kind, "GET", path, params=params, worker=worker)
        body = answer.expect(200)
        self.w.check(owner, answer)
        return body

    def picks(self, attr: str) -> list[tuple[Owner, str]]:
        return [
            (self.owners[label], item)
            for label in LABELS
            for item in sorted(getattr(self.owners[label], attr))
        ]

    def pick(self, attr: str, n: int) -> tuple[Owner, str] | None:
        """Item `n` (modulo) of this kind over all owners; None while there is none. Rules
        have no preconditions on the model: it outlives examples, and hypothesis expects the
        same draws to enable the same rules in every example."""
        choices = self.picks(attr)
        return choices[n % len(choices)] if choices else None

    def foreign(self, reader: Owner, prefix: str) -> list[str]:
        return sorted(i for i, o in self.w.ids.items() if o is not reader and i.startswith(prefix))

    def fail(self, message: str, answer: Answer) -> None:
        raise Defect(f"{message}: {answer.describe()}")

    # -- setup -------------------------------------------------------------------------------

    @initialize()
    def begin(self) -> None:
        self.w.examples += 1
