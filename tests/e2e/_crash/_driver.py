"""The client threads: one request at a time, each outcome recorded, and the gate that holds
them while the server is down or being checked."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from ._config import ACKED, REFUSED, UNKNOWN, UNSENT, HarnessError
from ._findings import Findings

if TYPE_CHECKING:
    from ._harness import Harness

# -- HTTP ------------------------------------------------------------------------------------


@dataclass
class Reply:
    outcome: str
    status: int | None = None
    body: Any = None
    # The connection failed: the server is gone, the writer waits for the next one.
    transport: bool = False


@dataclass
class Op:
    label: str
    method: str
    path: str
    body: Any
    done: Callable[[Reply], None]
    expect: tuple[int, ...] = ()


def send(client: httpx.Client, op: Op, findings: Findings) -> Reply:
    try:
        answer = client.request(op.method, op.path, json=op.body)
    except (httpx.ConnectError, httpx.ConnectTimeout):
        return Reply(UNSENT, transport=True)
    except httpx.TransportError:
        return Reply(UNKNOWN, transport=True)
    if 200 <= answer.status_code < 300:
        return Reply(ACKED, answer.status_code, answer.json())
    if answer.status_code in op.expect:
        return Reply(REFUSED, answer.status_code)
    findings.defect(
        "http_status", f"{op.label} {answer.status_code}", f"{op.path}: {answer.text[:300]}"
    )
    return Reply(UNKNOWN if answer.status_code >= 500 else REFUSED, answer.status_code)


def iso_ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


# -- the gate that holds writers while the server is down or being checked -------------------


class Gate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = False
        self._stopping = False
        self.generation = 0
        self.parked = 0

    def enter(self, stale: int | None) -> int | None:
        """Wait until the gate is open on a server other than `stale`; None when stopping."""
        with self._cond:
            self.parked += 1
            self._cond.notify_all()
            while not self._stopping and (not self._open or self.generation == stale):
                self._cond.wait()
            self.parked -= 1
            return None if self._stopping else self.generation

    def open(self) -> None:
        with self._cond:
            self.generation += 1
            self._open = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._open = False

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def wait_parked(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.parked < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HarnessError(f"only {self.parked} of {count} writers stopped")
                self._cond.wait(left)


class Writer:
    """One client thread: one request at a time, its own seeded choices."""

    def __init__(self, name: str, harness: Harness) -> None:
        self.thread = threading.Thread(target=self.run, name=f"crash-{name}", daemon=True)
        self.label = name
        self.h = harness
        self.ledger = harness.ledger
        self.rng = random.Random(f"{harness.config.seed}/{name}")
        self.pending: Op | None = None
        self._client: httpx.Client | None = None
        self._generation = -1

    def run(self) -> None:
        stale: int | None = None
        while (generation := self.h.gate.enter(stale)) is not None:
            try:
                stale = generation if self.step(self._client_for(generation)) else None
            except Exception as exc:  # a harness bug must not hang the run: report it
                self.h.findings.defect("harness_error", self.label, repr(exc))
                stale = generation
        if self._client is not None:
            self._client.close()

    def _client_for(self, generation: int) -> httpx.Client:
        # A fresh pool per server: a kept-alive connection to a killed server would fail a
        # request that was never sent, and make it look unknown.
        if generation != self._generation or self._client is None:
            if self._client is not None:
                self._client.close()
            self._client = self.h.client(timeout=30.0)
            self._generation = generation
        return self._client

    def step(self, client: httpx.Client) -> bool:
        op = self.pending or self.next_op()
        reply = send(client, op, self.h.findings)
        if reply.outcome == UNSENT:
            self.pending = op
            return True
        self.pending = None
        self.ledger.count(op.label, reply.outcome)
        op.done(reply)
        return reply.transport

    def next_op(self) -> Op:
        raise NotImplementedError
