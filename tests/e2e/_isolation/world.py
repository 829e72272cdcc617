"""What lives as long as the server, and the leak scan: every id the server hands out is recorded
with its owner; an answer to one owner that holds another owner's marker or id is a leak.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from api.process import ServerProcess

from .client import Answer, Defect, Http
from .model import Owner

MARKER = re.compile(r"own\d+[ab][lt]")
SERVER_ID = re.compile(r"\b(?:req|pv|rul|lst|whk|coh|run|msg)_[A-Za-z0-9]+")


@dataclass
class World:
    """What lives as long as the server: every owner ever made and every id handed out."""

    server: ServerProcess
    http: Http
    data: str
    by_label: dict[str, Owner]
    ids: dict[str, Owner] = field(default_factory=dict)
    markers: dict[str, Owner] = field(init=False)
    revoked: list[tuple[str, Owner, str]] = field(default_factory=list)  # key, owner, kind
    examples: int = 0
    steps: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)  # outcomes worth counting
    budget: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, Exception]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.markers = {o.marker: o for o in self.by_label.values()}

    def own(self, owner: Owner, server_id: str) -> None:
        known = self.ids.setdefault(server_id, owner)
        if known is not owner:
            raise Defect(f"{server_id} handed to {owner.marker} was {known.marker}'s already")

    def check(
        self,
        reader: Owner,
        answer: Answer,
        *,
        ids: bool = True,
        allow: frozenset[str] = frozenset(),
    ) -> None:
        """No marker and no id of another owner in the answer; `allow` are ids the request
        itself carried."""
        text = answer.text
        for found in set(MARKER.findall(text)):
            if self.markers.get(found) is not reader:
                raise Defect(f"{reader.marker} was shown {found}'s data: {answer.describe()}")
        if not ids:
            return
        for found in set(SERVER_ID.findall(text)):
            owner = self.ids.get(found)
            if owner is None or owner is reader or found in allow or found in reader.introduced:
                continue
            raise Defect(
                f"{reader.marker} was shown {found} of {owner.marker}: {answer.describe()}"
            )

    @contextlib.contextmanager
    def timed(self, what: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds[what] += time.monotonic() - start

    @contextlib.contextmanager
    def recorded(self, step: str, args: dict[str, Any]) -> Iterator[None]:
        """Keeps the first failure of the run with the step that raised it."""
        try:
            yield
        except Exception as exc:
            if not self.failures:
                self.failures.append((f"example {self.examples}, {step}({args})", exc))
            raise

    def summary(self) -> str:
        split = ", ".join(f"{pid}: {n}" for pid, n in sorted(self.http.by_worker.items()))
        top = ", ".join(f"{name} {n}" for name, n in self.rules.most_common())
        slow = ", ".join(f"{name} {t:.1f}" for name, t in self.seconds.most_common(6))
        seen = ", ".join(f"{what} {n}" for what, n in sorted(self.seen.items()))
        return (
            f"isolation machine: {self.examples} examples, {self.steps} steps, "
            f"{self.http.requests} HTTP requests (by worker {split}), "
            f"{len(self.revoked)} revoked keys, "
            f"{time.monotonic() - self.started:.1f} s\n  rules: {top}\n  seconds: {slow}\n"
            f"  seen: {seen}"
        )
