"""The LMDB environment: one per data directory, with a named database per kind of record."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lmdb

from .config import EngineConfig
from .errors import StorageError, StorageFull

# Every named database the engine uses. Keys are byte strings built by the owning module.
DATABASES = (
    b"catalog",  # workspaces and key hashes
    b"meta",  # counters and segment metadata
    b"columns",  # one value per column per segment
    b"dict",  # string interning, both directions
    b"profiles",  # user traits
    b"dedup",  # insert_id -> first receive time
    b"usage",  # monthly counters
    b"idents",  # identification documents and their time and visitor indexes
    b"visitors",  # visitor records and fingerprint indexes
    b"lists",  # allow/block lists and their entries
    b"cohorts",  # cohort records, membership snapshots, users touched since the last refresh
    b"discovery",  # auto-discovery runs and their results
    b"webhooks",  # webhook endpoints and the delivery outbox (deliveries not yet taken)
)
# The delivery book lives in an environment of its own (`deliveries/` in the data directory):
# the delivery worker's frequent commits then never take the event store's write lock.
BOOK_DIR = "deliveries"


class Store:
    """Owns the LMDB environment and its named databases. Safe to open from several processes."""

    def __init__(self, path: str | os.PathLike[str], config: EngineConfig) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        relaxed = config.durability == "relaxed"
        self.env = lmdb.open(
            str(self.path),
            map_size=config.max_size_bytes,
            max_dbs=len(DATABASES) + 4,
            subdir=True,
            sync=not relaxed,
            metasync=not relaxed,
            writemap=False,
            map_async=False,
            max_readers=512,
            readahead=False,
        )
        # Reader slots left by a killed process would pin old pages forever; free them.
        self.env.reader_check()
        self.dbs = {name.decode(): self.env.open_db(name) for name in DATABASES}
        self.catalog = self.dbs["catalog"]
        self.meta = self.dbs["meta"]
        self.cohorts = self.dbs["cohorts"]
        self.discovery = self.dbs["discovery"]
        self.columns = self.dbs["columns"]
        self.dict = self.dbs["dict"]
        self.profiles = self.dbs["profiles"]
        self.dedup = self.dbs["dedup"]
        self.usage = self.dbs["usage"]
        self.idents = self.dbs["idents"]
        self.visitors = self.dbs["visitors"]
        self.lists = self.dbs["lists"]
        self.webhooks = self.dbs["webhooks"]
        self.book_env = lmdb.open(
            str(self.path / BOOK_DIR),
            map_size=config.max_size_bytes,
            max_dbs=2,
            subdir=True,
            sync=not relaxed,
            metasync=not relaxed,
            max_readers=512,
            readahead=False,
        )
        self.book_env.reader_check()
        self.book = self.book_env.open_db(b"deliveries")

    @contextmanager
    def read(self) -> Iterator[lmdb.Transaction]:
        with translate_errors(), self.env.begin(write=False, buffers=False) as txn:
            yield txn

    def begin_write(self) -> lmdb.Transaction:
        """A write transaction. Only the writer thread of a process may call this."""
        with translate_errors():
            return self.env.begin(write=True)

    @contextmanager
    def read_book(self) -> Iterator[lmdb.Transaction]:
        with translate_errors(), self.book_env.begin(write=False, buffers=False) as txn:
            yield txn

    @contextmanager
    def write_book(self) -> Iterator[lmdb.Transaction]:
        """A write transaction on the delivery book, committed on leaving (any thread may call
        this; LMDB's lock of that environment orders writers of every process)."""
        with translate_errors(), self.book_env.begin(write=True) as txn:
            yield txn

    def close(self) -> None:
        self.book_env.close()
        self.env.close()


@contextmanager
def translate_errors() -> Iterator[None]:
    try:
        yield
    except lmdb.MapFullError as exc:
        raise StorageFull("The store reached its configured size limit.") from exc
    except lmdb.Error as exc:
        if is_full(exc):
            raise StorageFull("The disk holding the store is full.") from exc
        raise StorageError(f"Storage failure: {type(exc).__name__}") from exc


def is_full(exc: lmdb.Error) -> bool:
    """The map reached its size, or the disk has no space left."""
    text = str(exc)
    return (
        isinstance(exc, (lmdb.MapFullError, lmdb.DiskError))
        or "No space left" in text
        or f"errno {errno.ENOSPC}" in text
    )


def prefixed(
    txn: lmdb.Transaction, db: lmdb._Database, head: bytes, values: bool = True
) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every key starting with `head`, in key order (value b"" unless asked)."""
    with txn.cursor(db=db) as cur:
        if not cur.set_range(head):
            return
        for key, value in cur:
            if not key.startswith(head):
                return
            yield bytes(key), (value if values else b"")
