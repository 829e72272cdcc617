"""Monthly usage: events stored per environment, counted by the month they were received."""

from __future__ import annotations

import lmdb
import msgspec

from .events import usage_key
from .store import Store
from .tenant import Tenant
from .timeutil import iso, month_of
from .writer import WriteContext


class EnvironmentUsage(msgspec.Struct):
    live: int
    test: int


class Usage(msgspec.Struct):
    workspace_id: str
    period: str
    period_start: str
    billable_events: int
    events: EnvironmentUsage
    rate_limited_requests: int  # requests answered 429 this month, both environments


def read_usage(
    txn: lmdb.Transaction, store: Store, workspace_id: str, month: str, start_us: int
) -> Usage:
    counts = {}
    for env in ("live", "test"):
        raw = txn.get(usage_key(Tenant(workspace_id, env).prefix, month), db=store.usage)
        counts[env] = int.from_bytes(raw, "little") if raw else 0
    raw = txn.get(_rejected_key(workspace_id, month), db=store.usage)
    return Usage(
        rate_limited_requests=int.from_bytes(raw, "little") if raw else 0,
        workspace_id=workspace_id,
        period=month,
        period_start=iso(start_us),
        # Test-environment events never count toward the billable volume.
        billable_events=counts["live"],
        events=EnvironmentUsage(**counts),
    )


def _rejected_key(workspace_id: str, month: str) -> bytes:
    return b"rejected\x00" + workspace_id.encode() + b"\x00" + month.encode()


class AddRejected:
    """Add rate-limit rejections (counted in memory by a process) to the month's usage."""

    def __init__(self, counts: dict[str, int], now: int) -> None:
        self.counts, self.month = counts, month_of(now)

    def apply(self, ctx: WriteContext) -> None:
        for workspace_id, n in self.counts.items():
            key = _rejected_key(workspace_id, self.month)
            raw = ctx.txn.get(key, db=ctx.store.usage)
            total = (int.from_bytes(raw, "little") if raw else 0) + n
            ctx.txn.put(key, total.to_bytes(8, "little"), db=ctx.store.usage)
