"""Exports run one thread each and hold a slot for their whole run; past the limit they wait."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator

from api.export_stream import snapshot_stream


def _export(rows: int, closed: threading.Event) -> Generator[bytes, None, None]:
    try:
        for i in range(rows):
            yield b"%d\n" % i
    finally:
        closed.set()


def test_an_export_past_the_limit_waits_for_a_slot_then_runs_whole():
    async def scenario() -> None:
        slots = asyncio.Semaphore(1)
        first_closed, second_closed = threading.Event(), threading.Event()
        first = snapshot_stream(_export(10, first_closed), 30, slots)
        assert await anext(first) == b"0\n"
        assert slots.locked()

        async def drain() -> list[bytes]:
            return [chunk async for chunk in snapshot_stream(_export(3, second_closed), 30, slots)]

        second = asyncio.create_task(drain())
        for _ in range(20):  # the waiting export can make no progress while the slot is held
            await asyncio.sleep(0)
        assert not second.done() and not second_closed.is_set()
        await first.aclose()  # the client of the first export leaves
        assert await asyncio.wait_for(second, 30) == [b"0\n", b"1\n", b"2\n"]
        assert await asyncio.to_thread(first_closed.wait, 30) and second_closed.is_set()
        assert not slots.locked()

    asyncio.run(scenario())
