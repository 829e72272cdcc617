"""The same funnel in ClickHouse, in process (chDB): the reference a funnel is measured against.

The events go into a MergeTree table ordered by (user, ts), merged into one part, so that
ClickHouse reads each user's events in time order without sorting; the funnel is `windowFunnel`
in its default mode, which counts what Signalpost's `ordered` funnel counts when every step is
another event name (docs/funnels.md). Timestamps are microseconds as UInt64, so the window is in
microseconds too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

THREADS = 2


class EventsFile:
    """The generated events, chunk by chunk, as a Parquet file ClickHouse loads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        schema = pa.schema([("user", pa.uint32()), ("ts", pa.uint64()), ("event", pa.uint8())])
        self._writer = pq.ParquetWriter(path, schema)

    def add(self, user: np.ndarray, ts: np.ndarray, event: np.ndarray) -> None:
        table = pa.table(
            {
                "user": user.astype(np.uint32),
                "ts": ts.astype(np.uint64),
                "event": event.astype(np.uint8),
            }
        )
        self._writer.write_table(table)

    def close(self) -> None:
        self._writer.close()


class ClickHouse:
    """A chDB session holding the events table."""

    def __init__(self, directory: Path, events: EventsFile) -> None:
        from chdb import session  # a dev dependency: only this benchmark needs it

        self._session = session.Session(str(directory))
        self._query(
            "CREATE TABLE events (user UInt32, ts UInt64, event UInt8) "
            "ENGINE = MergeTree ORDER BY (user, ts)"
        )
        self._query(f"INSERT INTO events SELECT * FROM file('{events.path}', Parquet)")
        self._query("OPTIMIZE TABLE events FINAL")

    def _query(self, sql: str) -> str:
        return str(self._session.query(sql, "CSV"))

    def funnel(self, steps: list[int], from_us: int, to_us: int, window_us: int) -> list[int]:
        """Users who reached at least each step, as the Signalpost funnel reports them."""
        conditions = ", ".join(f"event = {code}" for code in steps)
        text = self._query(
            f"SELECT level, count() FROM (SELECT windowFunnel({window_us})(ts, {conditions}) "
            f"AS level FROM events WHERE ts >= {from_us} AND ts < {to_us} GROUP BY user) "
            f"WHERE level > 0 GROUP BY level SETTINGS max_threads = {THREADS}"
        )
        reached = dict.fromkeys(range(1, len(steps) + 1), 0)
        for line in text.split():
            level, users = line.split(",")
            reached[int(level)] = int(users)
        return [sum(reached[k] for k in range(n, len(steps) + 1)) for n in range(1, len(steps) + 1)]

    def close(self) -> None:
        self._session.close()
