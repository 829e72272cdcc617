"""Raw export of stored events in timestamp order, as NDJSON lines or one Parquet file.

The export reads one snapshot: one read transaction for the whole stream, so rows committed while
it runs never appear in it. It sorts in time windows of bounded size: first the timestamps of the
range are sorted to cut windows of about `window_rows` rows, then each window loads only the
segments that overlap it, so memory stays bounded by a window, not by the whole range. A long
export holds its snapshot open, which keeps LMDB from reusing pages freed meanwhile: the HTTP
layer closes the generator when its client leaves or stalls (`api/export_stream.py`).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Generator, Iterator

import msgspec
import numpy as np

from . import _kernels, dictionary
from .scan import load, overlapping
from .store import Store
from .tenant import Tenant
from .timeutil import iso

# Rows per NDJSON chunk (about 100-300 KB): what the server buffers per chunk for a slow client.
_CHUNK_ROWS = 1000
_COLUMNS = ("received", "user", "event", "props", "insert_id", "request_id")


class ExportedEvent(msgspec.Struct, omit_defaults=True):
    user_id: str
    event: str
    timestamp: str
    properties: msgspec.Raw
    received_at: str
    insert_id: str | None = None
    request_id: str | None = None


_encoder = msgspec.json.Encoder()
_EMPTY = msgspec.Raw(b"{}")


def _windows(txn, store: Store, tenant: Tenant, from_us: int, to_us: int, window_rows: int):
    segs = overlapping(txn, store, tenant.prefix, "events", from_us, to_us)
    ts = np.sort(load(txn, store, tenant.prefix, "events", ["ts"], from_us, to_us, segs)["ts"])
    if not len(ts):
        return []
    cuts = [int(v) for v in ts[window_rows::window_rows]]
    bounds = [from_us, *sorted(set(cuts)), to_us]
    return [(a, b) for a, b in itertools.pairwise(bounds) if a < b]


def _window_rows(txn, store: Store, tenant: Tenant, start: int, end: int, names: dict[tuple, str]):
    prefix = tenant.prefix
    cols = load(txn, store, prefix, "events", _COLUMNS, start, end)
    for kind, column in ((dictionary.USER, "user"), (dictionary.EVENT, "event")):
        missing = {int(i) for i in np.unique(cols[column])} - {i for (k, i) in names if k == kind}
        for ident, value in dictionary.strings(txn, store, prefix, kind, missing).items():
            names[(kind, ident)] = value
    order = np.lexsort((cols["received"], cols["ts"]))
    return cols, order


def ndjson(
    store: Store, tenant: Tenant, from_us: int, to_us: int, window_rows: int = 500_000
) -> Generator[bytes, None, None]:
    names: dict[tuple, str] = {}
    # One read transaction for the whole stream: one snapshot, whatever arrives meanwhile. The
    # server runs the stream in a thread of its own (api/export_stream.py).
    with store.read() as txn:
        yield from _ndjson(txn, store, tenant, from_us, to_us, window_rows, names)


def _ndjson(txn, store, tenant, from_us, to_us, window_rows, names) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    for start, end in _windows(txn, store, tenant, from_us, to_us, window_rows):
        cols, order = _window_rows(txn, store, tenant, start, end, names)
        ts, recv, users, evs = cols["ts"], cols["received"], cols["user"], cols["event"]
        props, inserts, requests = cols["props"], cols["insert_id"], cols["request_id"]
        for chunk in np.array_split(order, max(1, len(order) // _CHUNK_ROWS)):
            batch = []
            for i in chunk.tolist():
                batch.append(
                    ExportedEvent(
                        user_id=names.get((dictionary.USER, int(users[i])), ""),
                        event=names.get((dictionary.EVENT, int(evs[i])), ""),
                        timestamp=iso(ts[i]),
                        properties=msgspec.Raw(props[i]) if props[i] else _EMPTY,
                        received_at=iso(recv[i]),
                        insert_id=inserts[i].decode() if inserts[i] else None,
                        request_id=requests[i].decode() if requests[i] else None,
                    )
                )
            yield _encoder.encode_lines(batch)


def parquet(store: Store, tenant: Tenant, from_us: int, to_us: int) -> bytes:
    pl = _kernels.polars()
    names: dict[tuple, str] = {}
    frames = []
    with store.read() as txn:
        windows = _windows(txn, store, tenant, from_us, to_us, 1_000_000)
        loaded = [_window_rows(txn, store, tenant, a, b, names) for a, b in windows]
    for cols, order in loaded:
        take = order.tolist()

        def strings(column: str, take: list[int] = take, cols: dict = cols) -> list[str | None]:
            values = cols[column]
            return [values[i].decode() if values[i] else None for i in take]

        frames.append(
            pl.DataFrame(
                {
                    "user_id": [
                        names.get((dictionary.USER, int(cols["user"][i])), "") for i in take
                    ],
                    "event": [
                        names.get((dictionary.EVENT, int(cols["event"][i])), "") for i in take
                    ],
                    "timestamp": pl.Series(cols["ts"][order]).cast(pl.Datetime("us", "UTC")),
                    "properties": [v or "{}" for v in strings("props")],
                    "received_at": pl.Series(cols["received"][order]).cast(
                        pl.Datetime("us", "UTC")
                    ),
                    "insert_id": strings("insert_id"),
                    "request_id": strings("request_id"),
                },
                schema_overrides={"insert_id": pl.String, "request_id": pl.String},
            )
        )
    schema = {
        "user_id": pl.String,
        "event": pl.String,
        "timestamp": pl.Datetime("us", "UTC"),
        "properties": pl.String,
        "received_at": pl.Datetime("us", "UTC"),
        "insert_id": pl.String,
        "request_id": pl.String,
    }
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()
