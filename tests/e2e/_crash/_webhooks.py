"""The webhook receiver's side: what arrived, signed how, and how often."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter, defaultdict
from typing import Any

from _webhook_support import Answer, Received, Receiver

from ._config import PRIMARY


class Sink:
    """Answers the receiver's requests (the first attempt of one delivery in eight fails with
    503, so retries run too) and keeps what arrived with a 2xx answer."""

    def __init__(self, receiver: Receiver) -> None:
        self._lock = threading.Lock()
        self.secret = ""
        self.attempts: Counter[str] = Counter()
        self.ok: Counter[str] = Counter()
        self.requests: dict[str, set[str]] = defaultdict(set)  # requestId -> webhook-ids
        self.arrivals: dict[str, list[float]] = defaultdict(list)  # requestId -> every attempt
        self.markers: set[str] = set()
        self.bad_signatures: list[str] = []
        receiver.script = self.answer

    def answer(self, got: Received, _: int) -> Answer:
        message = got.headers.get("webhook-id", "")
        primary = got.path == PRIMARY
        envelope = json.loads(got.body) if primary else {}
        with self._lock:
            self.attempts[message] += 1
            fail = primary and self.attempts[message] == 1 and _fails_first(message)
            if envelope.get("event") == "identification":
                self.arrivals[envelope["data"]["requestId"]].append(got.at)
            if not fail:
                self.ok[message] += 1
            if primary and not fail:
                self._delivered(got, message, envelope)
        return Answer(503 if fail else 200)

    def _delivered(self, got: Received, message: str, envelope: dict[str, Any]) -> None:
        expected = hmac.new(self.secret.encode(), got.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, got.headers.get("x-prynt-signature", "")):
            self.bad_signatures.append(message)
        data = envelope["data"]
        if envelope["event"] == "identification":
            self.requests[data["requestId"]].add(message)
        elif envelope["event"] == "list_update":
            self.markers.update(data["added"])

    def snapshot(self) -> tuple[set[str], set[str]]:
        with self._lock:
            return set(self.requests), set(self.markers)

    def duplicates(self) -> tuple[int, int]:
        """2xx receipts beyond the first of one webhook-id, and how many ids had them."""
        with self._lock:
            extra = [n - 1 for n in self.ok.values() if n > 1]
        return sum(extra), len(extra)


def _fails_first(message: str) -> bool:
    return int(hashlib.sha256(message.encode()).hexdigest()[:4], 16) % 8 == 0
