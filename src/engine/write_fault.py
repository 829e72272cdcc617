"""A failed flush stops every write to the store until the server restarts.

When LMDB cannot make a commit durable (the data sync answers EIO), what the kernel still holds
of the written pages is unknown: it may have dropped them and marked them clean, so a later
sync that succeeds proves nothing (PostgreSQL's "fsyncgate", 2018). Retrying would acknowledge
writes on top of pages that may never reach the disk. So the first such failure is final for
the store: the process that saw it writes a marker file, `write-fault`, into the data directory,
and every writer of every process sharing the store refuses its groups while the marker is
there. Reads go on where LMDB allows: after a failure to write its meta page, LMDB refuses
every later transaction of that process, reads included (MDB_PANIC). `signalpost serve` removes
the marker when it starts: a restart is the operator's word that the disk is sound again.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .errors import WritesStopped

MARKER = "write-fault"


class WriteFault:
    """The store-wide stop of writes: set by the writer that saw a failed flush, checked
    before each group by every writer."""

    def __init__(self, directory: Path) -> None:
        self._marker = directory / MARKER
        self._seen: WritesStopped | None = None

    def set(self, cause: BaseException) -> WritesStopped:
        self._seen = _stopped(str(cause))
        # Best effort: the disk that failed the sync may fail this too, and this process
        # refuses writes either way.
        with contextlib.suppress(OSError):
            self._marker.write_text(f"{cause}\n")
        return self._seen

    def current(self) -> WritesStopped | None:
        """The error to answer a write with, or None while writes are accepted."""
        # A stat per group when all is well: a few microseconds beside a commit's fsync.
        if self._seen is None and self._marker.exists():
            try:
                text = self._marker.read_text(errors="replace").strip()
            except FileNotFoundError:  # removed since: a restart of the server cleared it
                return None
            except OSError as exc:
                # A marker that cannot be read is still a marker: the disk under it is failing.
                text = f"the marker {self._marker} is unreadable: {exc}"
            self._seen = _stopped(text)
        return self._seen


def _stopped(cause: str) -> WritesStopped:
    return WritesStopped(
        "The store could not make a write durable; writes are refused until the server is "
        f"restarted ({cause})."
    )


def clear(directory: str | os.PathLike[str]) -> bool:
    """Remove the marker (a restart of the server). True when there was one."""
    try:
        (Path(directory) / MARKER).unlink()
    except FileNotFoundError:
        return False
    return True
