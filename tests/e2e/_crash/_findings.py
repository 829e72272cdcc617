"""What a run found: defects and observations."""

from __future__ import annotations

import threading
from typing import Any


class Findings:
    """Product defects (something acknowledged lost, duplicated, half-written or come back;
    a 5xx) and observations (a documented behaviour not met, nothing lost), each reported once
    with the kill after which it was first seen and how often it was seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
            "defects": {},
            "observations": {},
        }
        self.kills = 0

    def defect(self, kind: str, key: str, detail: Any) -> None:
        self._note("defects", kind, key, detail)

    def observe(self, kind: str, key: str, detail: Any) -> None:
        self._note("observations", kind, key, detail)

    def _note(self, table: str, kind: str, key: str, detail: Any) -> None:
        with self._lock:
            found = self._found[table].get((kind, key))
            if found is None:
                entry = {"kind": kind, "key": key, "detail": detail, "after_kill": self.kills}
                self._found[table][(kind, key)] = entry | {"seen": 1}
            else:
                found["seen"] += 1

    def defects(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._found["defects"].values())

    def observations(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._found["observations"].values())
