"""Pruning of insert_id entries older than the dedup window.

Entries are written by ingestion (`events.IngestEvents`) and are useless once older than the
window; without pruning the dedup database would grow with every event that ever carried an
insert_id. A pruning step reads a bounded slice of keys in a read snapshot, then deletes the
expired ones through the writer; the next step continues after the slice.
"""

from __future__ import annotations

from .store import Store
from .writer import WriteContext, Writer


class _DeleteExpired:
    def __init__(self, keys: list[bytes], cutoff_us: int) -> None:
        self.keys, self.cutoff_us = keys, cutoff_us

    def apply(self, ctx: WriteContext) -> int:
        deleted = 0
        for key in self.keys:
            raw = ctx.txn.get(key, db=ctx.store.dedup)
            # Re-check inside the transaction: the id may have been seen again since.
            if raw is not None and int.from_bytes(raw, "little") < self.cutoff_us:
                ctx.txn.delete(key, db=ctx.store.dedup)
                deleted += 1
        return deleted


def prune_step(
    store: Store, writer: Writer, start: bytes, cutoff_us: int, max_keys: int = 10_000
) -> tuple[int, bytes]:
    """Delete expired entries among the next `max_keys` keys from `start`.

    Returns how many were deleted and where the next step starts (b"" after the last key).
    """
    expired: list[bytes] = []
    last = b""
    with store.read() as txn, txn.cursor(db=store.dedup) as cur:
        found = cur.set_range(start) if start else cur.first()
        count = 0
        while found and count < max_keys:
            key, value = cur.item()
            if int.from_bytes(value, "little") < cutoff_us:
                expired.append(bytes(key))
            last = bytes(key)
            count += 1
            found = cur.next()
        following = bytes(cur.key()) if found else b""
    deleted = writer.run(_DeleteExpired(expired, cutoff_us)) if expired else 0
    return deleted, following if last else b""
