"""The writers of data: events, batches, traits, identifications and visitor deletions."""

from __future__ import annotations

import copy
import hashlib
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from _device_support import COMPONENTS

from ._config import ACKED, EVENT_NAMES, UNKNOWN, USERS
from ._driver import Op, Reply, Writer, iso_ago
from ._record import Device

if TYPE_CHECKING:
    from ._harness import Harness


def _event_body(rng: random.Random, insert_id: str) -> dict[str, Any]:
    return {
        "user_id": f"u{rng.randrange(USERS):03d}",
        "event": rng.choice(EVENT_NAMES),
        "insert_id": insert_id,
        # Spread over three weeks: cohort windows and discovery's first weeks see them.
        "timestamp": iso_ago(rng.uniform(60, 20 * 86400)),
        "properties": {"n": insert_id},
    }


class Events(Writer):
    """Single events; each one whose outcome is unknown is sent once more after the restart,
    with the same insert_id: the retry a careful client makes."""

    def __init__(self, name: str, harness: Harness) -> None:
        super().__init__(name, harness)
        self.retry: list[dict[str, Any]] = []
        self.number = 0

    def next_op(self) -> Op:
        if self.retry:
            body = self.retry.pop(0)
            return self._op(body, lambda reply: None)
        body = _event_body(self.rng, f"s{self.number}")
        self.number += 1
        self.ledger.add_events([body], None)

        def again(reply: Reply) -> None:
            if reply.outcome == UNKNOWN:
                self.retry.append(body)

        return self._op(body, again)

    def _op(self, body: dict[str, Any], then: Callable[[Reply], None]) -> Op:
        def done(reply: Reply) -> None:
            self.ledger.event_reply([body["insert_id"]], reply.outcome)
            then(reply)

        return Op("event", "POST", "/v1/events", body, done)


class Batches(Writer):
    """Batches of 2 to 25 events, never retried: an unknown batch must be whole or absent."""

    def __init__(self, name: str, harness: Harness) -> None:
        super().__init__(name, harness)
        self.number = 0

    def next_op(self) -> Op:
        bodies = [
            _event_body(self.rng, f"b{self.number}-{i}") for i in range(self.rng.randint(2, 25))
        ]
        self.number += 1
        ids = [b["insert_id"] for b in bodies]

        def done(reply: Reply) -> None:
            index = self.ledger.add(self.ledger.batches, (ids, reply.outcome))
            self.ledger.add_events(bodies, index)
            self.ledger.event_reply(ids, reply.outcome)

        return Op("batch", "POST", "/v1/events/batch", {"events": bodies}, done)


class Traits(Writer):
    """`/v1/identify` on new users, and again on earlier ones: the last value must win."""

    def __init__(self, name: str, harness: Harness) -> None:
        super().__init__(name, harness)
        self.users: list[str] = []
        self.seq = 0

    def next_op(self) -> Op:
        if self.users and self.rng.random() < 0.3:
            user = self.rng.choice(self.users)
        else:
            user = f"t{len(self.users):04d}"
            self.users.append(user)
        seq, self.seq = self.seq, self.seq + 1
        body = {"user_id": user, "traits": {"crash_mark": "m", "seq": seq}}

        def done(reply: Reply) -> None:
            self.ledger.trait_reply(user, seq, reply.outcome)

        return Op("trait", "POST", "/v1/identify", body, done)


def device_components(seed: int, number: int) -> dict[str, Any]:
    """Components no other device shares in anything distinctive: no fuzzy match between two."""
    tag = hashlib.blake2b(f"{seed}/{number}".encode(), digest_size=8).hexdigest()
    components = copy.deepcopy(COMPONENTS)
    components["canvas"] = tag
    components["audio"] = f"124.{int(tag[:8], 16)}"
    components["math"] = tag[::-1]
    components["webgl"]["renderer"] = f"Crash GPU {tag}"
    components["fonts"] = [*COMPONENTS["fonts"], f"Font {tag}"]
    return components


class Devices(Writer):
    """Identifies a device a few times, then often deletes its visitor and takes a new device.
    A deletion whose outcome is unknown is sent again until it answers 200 or 404."""

    DELETE_SHARE = 0.4

    def __init__(self, name: str, harness: Harness) -> None:
        super().__init__(name, harness)
        self.device: Device | None = None
        self.unresolved: Device | None = None
        self.number = 0

    def next_op(self) -> Op:
        if self.unresolved is not None:
            return self._delete(self.unresolved)
        device = self._current()
        if len(device.requests) + device.unknown >= device.planned:
            if device.visitor and self.rng.random() < self.DELETE_SHARE:
                return self._delete(device)
            self.device = None
            device = self._current()
        return self._identify(device)

    def _current(self) -> Device:
        if self.device is None:
            number = self.h.next_device()
            components = device_components(self.h.config.seed, number)
            self.device = Device(number, components, self.rng.randint(1, 4))
            self.ledger.add(self.ledger.devices, self.device)
        return self.device

    def _identify(self, device: Device) -> Op:
        self.number += 1
        # As the agent does: the visitor id of an earlier answer is sent back, so a visitor that
        # an acknowledged identification created must still be found after any kill.
        body = {
            "components": device.components,
            "storedVisitorId": device.visitor,
            "linkedId": f"{self.label}-{self.number}",
            "type": "login",
        }

        def done(reply: Reply) -> None:
            if reply.outcome == ACKED:
                self._identified(device, reply.body)
            elif reply.outcome == UNKNOWN:
                device.unknown += 1

        return Op("identification", "POST", "/v1/agent/identify", body, done)

    def _identified(self, device: Device, body: dict[str, Any]) -> None:
        device.requests.append(body["requestId"])
        device.unchecked.append(body["requestId"])
        if device.visitor is None:
            device.visitor = body["visitorId"]
        elif body["visitorId"] != device.visitor:
            detail = {"device": device.number, "was": device.visitor, "now": body["visitorId"]}
            self.h.findings.defect("visitor_split", str(device.number), detail)

    def _delete(self, device: Device) -> Op:
        def done(reply: Reply) -> None:
            if reply.outcome == ACKED or reply.status == 404:
                if reply.status == 404 and device.deletion is None:
                    self.h.findings.defect(
                        "visitor_lost", str(device.visitor), "404 before it was deleted"
                    )
                device.deletion, device.deleted_at = ACKED, time.monotonic()
                self.unresolved = self.device = None
            elif reply.outcome == UNKNOWN:
                device.deletion, self.unresolved = UNKNOWN, device

        path = f"/v1/visitors/{device.visitor}"
        return Op("visitor.delete", "DELETE", path, None, done, expect=(404,))
