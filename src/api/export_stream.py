"""An NDJSON export streamed from a thread of its own, so that a client who goes away (or stops
reading) cannot pin the store.

The engine's export iterator holds one LMDB read snapshot from its first chunk to its last;
while it is open LMDB cannot reuse the pages freed since, and the data file grows. Iterated
directly by the response, a disconnected client would leave the iterator suspended until the
garbage collector happened to close it. Here one thread runs the iterator and hands chunks over
with at most two waiting; it closes the iterator itself, in the thread that runs it, as soon as
the response stops (the client left) or when the client has taken nothing for `idle_seconds`.
Each export also takes one of a few slots for its whole run: every snapshot costs an LMDB
reader slot, shared by all the server's processes, and exports past the limit wait their turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Generator
from typing import Any

_END = object()
_BUFFERED = 2  # chunks produced ahead of the client


class ClientStalled(Exception):
    """The client took no chunk for the idle limit: the export was closed."""


async def snapshot_stream(
    chunks: Generator[bytes, None, None], idle_seconds: float, slots: asyncio.Semaphore
) -> AsyncIterator[bytes]:
    async with slots:
        async for chunk in _stream(chunks, idle_seconds):
            yield chunk


async def _stream(
    chunks: Generator[bytes, None, None], idle_seconds: float
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue[Any] = asyncio.Queue()
    room = threading.Semaphore(_BUFFERED)
    stop = threading.Event()

    def hand_over(item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(ready.put_nowait, item)

    def produce() -> None:
        try:
            for chunk in chunks:
                if not room.acquire(timeout=idle_seconds):
                    hand_over(ClientStalled(f"No chunk taken for {idle_seconds:g} s."))
                    return
                if stop.is_set():
                    return
                hand_over(chunk)
            hand_over(_END)
        except BaseException as exc:
            hand_over(exc)
        finally:
            chunks.close()  # ends the read transaction: the snapshot is released here

    threading.Thread(target=produce, name="signalpost-export", daemon=True).start()
    try:
        while True:
            item = await ready.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            room.release()
            yield item
    finally:
        stop.set()
        room.release()  # wakes a producer waiting for room, which then sees `stop`
