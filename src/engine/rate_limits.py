"""Rate limits per workspace, shared by every process that serves one store.

Counters are fixed windows (per second or per minute, as the plans are written) kept in a small
memory-mapped file in the data directory, so all granian workers count together. A check takes
an advisory lock on the file, reads and updates the window's counter (and the burst window's,
when the limit has one), and releases it: no store transaction. High limits are counted in
leases and refusals are remembered until their window ends, so most checks take no lock.
A rejected request touches nothing else; each process counts its rejections in memory and a
background flush adds them to the month's usage in the store. docs/plans.md: table, choices.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import struct
import threading
import time
from pathlib import Path
from typing import Literal

import msgspec

from .errors import SignalpostError

LimitClass = Literal["ingest", "analytics", "device_read", "device_manage"]
_SLOTS = 4096
_SLOT = struct.Struct("<QqQqQQ")  # key hash, window, count, burst window, burst count, spare
_PROBES = 16


class Limit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    requests: int
    per_seconds: int
    burst: int | None = None  # at most this many per second as well


def _plan(ingest: Limit, device_read: Limit, device_manage: Limit) -> dict[str, Limit]:
    return {"ingest": ingest, "analytics": Limit(60, 60), "device_read": device_read,
            "device_manage": device_manage}  # fmt: skip


# The documents' numbers; where they leave a plan/endpoint pair open, the choice is written in
# docs/plans.md. `enterprise` is unlimited unless configured.
DEFAULT_PLANS: dict[str, dict[str, Limit]] = {
    "starter": _plan(Limit(100, 1), Limit(100, 60, 10), Limit(30, 60, 10)),
    "growth": _plan(Limit(100, 1), Limit(100, 60, 10), Limit(30, 60, 10)),
    "pro": _plan(Limit(1000, 1), Limit(1000, 60, 50), Limit(100, 60, 50)),
    "scale": _plan(Limit(1000, 1), Limit(1000, 60, 50), Limit(100, 60, 50)),
    "enterprise": {},
}


class RateLimitConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    enabled: bool = True
    # plan -> class -> limit; a class missing from a plan is unlimited.
    plans: dict[str, dict[str, Limit]] = msgspec.field(default_factory=lambda: DEFAULT_PLANS)


class RateLimited(SignalpostError):
    code = "rate_limited"

    def __init__(self, retry_after: int, decision: Decision) -> None:
        super().__init__(f"Rate limit exceeded. Retry in {retry_after}s.")
        self.retry_after = retry_after
        self.decision = decision


class Decision(msgspec.Struct, frozen=True):
    allowed: bool
    limit: int
    remaining: int
    reset: int  # Unix seconds when the window resets
    retry_after: int = 0

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(self.retry_after).encode()))
        return out


class Limiter:
    """Checks and counts requests against the plan table, across processes."""

    def __init__(self, directory: str | os.PathLike[str], config: RateLimitConfig) -> None:
        self.config = config
        path = Path(directory) / "ratelimits.bin"
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_size < _SLOTS * _SLOT.size:
            os.ftruncate(self._fd, _SLOTS * _SLOT.size)
        self._map = mmap.mmap(self._fd, _SLOTS * _SLOT.size)
        self._local = threading.Lock()  # the file lock is per process; threads queue here
        self._keys: dict[tuple[str, str], int] = {}
        # key -> [window, unused, shared count, second]
        self._leases: dict[int, list[int]] = {}
        # (key, limit) -> (refused until, remaining then)
        self._refused: dict[tuple[int, Limit], tuple[float, int]] = {}

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)

    def limit_of(self, plan: str, kind: LimitClass) -> Limit | None:
        if not self.config.enabled:
            return None
        return self.config.plans.get(plan, {}).get(kind)

    def check(self, workspace_id: str, plan: str, kind: LimitClass, now: float | None = None):
        """A Decision (allowed or not), or None when the plan sets no limit for the class."""
        limit = self.limit_of(plan, kind)
        if limit is None:
            return None
        now = time.time() if now is None else now
        key = self._keys.get((workspace_id, kind))
        if key is None:
            digest = hashlib.blake2b(f"{workspace_id}\x00{kind}".encode(), digest_size=8)
            key = self._keys[(workspace_id, kind)] = int.from_bytes(digest.digest(), "little") or 1
        window = int(now // limit.per_seconds)
        second = int(now)
        reset = (window + 1) * limit.per_seconds
        # A refusal holds until its window (or burst second) ends: counts only grow within a
        # window, so no other process can make room. Under a flood of refused requests only
        # the first of each window takes the lock.
        refused = self._refused.get((key, limit))
        if refused is not None and now < refused[0]:
            return Decision(
                False, limit.requests, refused[1], reset, max(1, math.ceil(refused[0] - now))
            )
        # High limits (and high bursts) are taken from the shared counter in leases of 1 %:
        # most requests then count locally, with no lock (a lock's system call hands the GIL
        # to the writer thread and costs tens of microseconds under load). A process may hold
        # at most one lease unused, so a limit holds to within one lease per process.
        granule = max(1, min(limit.requests, limit.burst or limit.requests) // 100)
        lease = self._leases.get(key)
        if (
            granule > 1 and lease is not None and lease[0] == window and lease[1] > 0
            and (limit.burst is None or lease[3] == second)
        ):  # fmt: skip
            lease[1] -= 1
            return Decision(
                True, limit.requests, max(0, limit.requests - lease[2] + lease[1]), reset
            )
        with self._local:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                offset = self._slot(key, window)
                _, w, count, bw, bcount, spare = _SLOT.unpack_from(self._map, offset)
                if w != window:
                    w, count = window, 0
                if bw != second:
                    bw, bcount = second, 0
                over_limit = count >= limit.requests
                over_burst = limit.burst is not None and bcount >= limit.burst
                allowed = not over_limit and not over_burst
                taken = 0
                if allowed:
                    taken = min(granule, limit.requests - count)
                    if limit.burst is not None:
                        taken = min(taken, limit.burst - bcount)
                count, bcount = count + taken, bcount + taken
                _SLOT.pack_into(self._map, offset, key, w, count, bw, bcount, spare)
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)
        if granule > 1 and taken:
            self._leases[key] = [window, taken - 1, count, second]
        remaining = max(0, limit.requests - count + (taken - 1 if taken else 0))
        if allowed:
            return Decision(True, limit.requests, remaining, reset)
        until = reset if over_limit else second + 1
        self._refused[(key, limit)] = (until, remaining)
        return Decision(False, limit.requests, remaining, reset, max(1, math.ceil(until - now)))

    def _slot(self, key: int, window: int) -> int:
        """The slot of `key`: its own, else a free or stale one (open addressing)."""
        start = key % _SLOTS
        for i in range(_PROBES):
            offset = ((start + i) % _SLOTS) * _SLOT.size
            owner, w, _, _, _, _ = _SLOT.unpack_from(self._map, offset)
            if owner == key:
                return offset
            if owner == 0 or w < window - 2:
                _SLOT.pack_into(self._map, offset, key, 0, 0, 0, 0, 0)
                return offset
        return (start % _SLOTS) * _SLOT.size  # a full neighbourhood: share (counts merge)


class RejectionCounter:
    """Rejections of this process per workspace, added to the store's usage about every second
    (`flush` is given the function that writes them)."""

    def __init__(self, flush, interval: float = 1.0) -> None:  # type: ignore[no-untyped-def]
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._flush, self._interval = flush, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="signalpost-rejections", daemon=True)
        self._thread.start()

    def add(self, workspace_id: str) -> None:
        with self._lock:
            self._counts[workspace_id] = self._counts.get(workspace_id, 0) + 1

    def _take(self) -> dict[str, int]:
        with self._lock:
            counts, self._counts = self._counts, {}
        return counts

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> None:
        counts = self._take()
        if counts:
            self._flush(counts)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.flush()
