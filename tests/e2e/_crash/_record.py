"""What was written, and with which outcome: the record every check compares against."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ._config import ACKED, UNKNOWN

# The name field of each kind finds a thing whose creation is unknown (no id) in a listing.
NAME_FIELD = {"rule": "name", "list": "name", "webhook": "url", "cohort": "name"}


@dataclass
class Event:
    user: str
    name: str
    batch: int | None = None
    acked: bool = False
    unknown: int = 0


@dataclass
class Device:
    number: int
    components: dict[str, Any]
    planned: int
    visitor: str | None = None
    requests: list[str] = field(default_factory=list)  # acknowledged identifications
    unknown: int = 0
    deletion: str | None = None  # None, UNKNOWN or ACKED
    deleted_at: float = 0.0
    unchecked: list[str] = field(default_factory=list)  # documents not read back yet


@dataclass
class Thing:
    """A rule, list, webhook or cohort: each field's history of (value, outcome)."""

    kind: str
    name: str
    created: str
    id: str | None = None
    fields: dict[str, list[tuple[Any, str]]] = field(default_factory=dict)
    deletion: str | None = None
    entries: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # lists only
    fixed: bool = False  # set up by the harness, never changed by the writers

    def allowed(self, name: str) -> list[Any]:
        """The last acknowledged value and every unknown one written after it."""
        history = self.fields[name]
        start = max((i for i, (_, o) in enumerate(history) if o == ACKED), default=0)
        return [value for value, _ in history[start:]]

    def entry_bounds(self) -> tuple[int, int]:
        """How many entries a list must and may hold."""
        must = may = 0
        for ops in self.entries.values():
            states = presence(ops)
            must += states == {True}
            may += True in states
        return must, may


def presence(ops: list[tuple[str, str]]) -> set[bool]:
    """Whether an entry may be present after its add (and maybe its remove)."""
    states = {False}
    for verb, outcome in ops:
        after = verb == "add"
        states = {after} if outcome == ACKED else states | {after}
    return states


@dataclass
class Patch:
    list_id: str
    marker: str  # the first added entry, unique: finds the delivery of this change
    outcome: str


class Ledger:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.acks = 0
        self.counts: Counter[tuple[str, str]] = Counter()
        self.events: dict[str, Event] = {}
        self.batches: list[tuple[list[str], str]] = []
        self.traits: dict[str, list[tuple[int, str]]] = {}
        self.devices: list[Device] = []
        self.things: list[Thing] = []
        self.patches: list[Patch] = []
        self.runs: set[str] = set()

    def count(self, label: str, outcome: str) -> None:
        with self._cond:
            self.counts[(label, outcome)] += 1
            if outcome == ACKED:
                self.acks += 1
                self._cond.notify_all()

    def wait_acks(self, target: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.acks < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def add(self, container: list[Any], item: Any) -> int:
        with self._cond:
            container.append(item)
            return len(container) - 1

    def add_events(self, bodies: list[dict[str, Any]], batch: int | None) -> None:
        with self._cond:
            for body in bodies:
                self.events[body["insert_id"]] = Event(body["user_id"], body["event"], batch)

    def event_reply(self, insert_ids: list[str], outcome: str) -> None:
        with self._cond:
            for insert_id in insert_ids:
                event = self.events[insert_id]
                event.acked |= outcome == ACKED
                event.unknown += outcome == UNKNOWN

    def trait_reply(self, user: str, seq: int, outcome: str) -> None:
        with self._cond:
            self.traits.setdefault(user, []).append((seq, outcome))
