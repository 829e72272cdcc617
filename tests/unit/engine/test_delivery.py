"""The delivery worker's loop against a local receiver, with the event store's writes made to
fail: what a refused write holds back, and what it must not."""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine import CompactionConfig, Engine, EngineConfig, WebhookConfig, outbox, webhooks
from engine.delivery import DeliveryWorker
from engine.errors import WritesStopped

LOCAL = {"allow_http": True, "allow_private": True}


@pytest.fixture
def engine(tmp_path):
    config = EngineConfig(
        compaction=CompactionConfig(enabled=False),
        webhooks=WebhookConfig(deliver=False, **LOCAL),
    )
    e = Engine.open(tmp_path / "data", config)
    yield e
    e.close()


@pytest.fixture
def tenant(engine):
    return engine.authenticate(engine.create_workspace("unit").keys.sk_live).tenant


@pytest.fixture
def receiver():
    """Answers 410 on `/gone`, 200 elsewhere; counts the requests of each path."""
    hits: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            hits[self.path] = hits.get(self.path, 0) + 1
            self.send_response(410 if self.path == "/gone" else 200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.hits = hits  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()


class _Enqueue:
    def __init__(self, ek: bytes) -> None:
        self.ek = ek

    def apply(self, ctx) -> str:
        return outbox.enqueue(ctx.txn, ctx.store, self.ek, "webhook", "identification", b"{}",
                              ctx.now_us)  # fmt: skip


class _RefusingWriter:
    """The engine's writer, except that disabling an endpoint fails while `refuse` is set, as
    when the event store is full or stopped after a failed commit."""

    def __init__(self, writer) -> None:
        self._writer, self.refuse, self.refused = writer, True, 0

    def submit_async(self, op):
        if self.refuse and isinstance(op, webhooks.Disable):
            self.refused += 1
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(WritesStopped("The store refuses writes."))
            return fut
        return self._writer.submit_async(op)


def _wait(check, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def _only(engine, tenant, hook: str):
    (delivery,) = engine.webhook_deliveries(tenant, hook).data
    return delivery


def test_a_refused_disable_holds_back_only_the_410s(engine, tenant, receiver):
    base = f"http://127.0.0.1:{receiver.server_address[1]}"
    gone = engine.create_webhook(tenant, webhooks.WebhookIn(url=base + "/gone")).id
    fine = engine.create_webhook(tenant, webhooks.WebhookIn(url=base + "/ok")).id
    for hook in (gone, fine):
        engine.writer.run(_Enqueue(outbox.endpoint_key(tenant.prefix, hook)))
    writer = _RefusingWriter(engine.writer)
    config = WebhookConfig(poll_interval_seconds=0.01, write_interval_seconds=0.0, **LOCAL)
    worker = DeliveryWorker(engine.store, writer, config)
    try:
        # The other endpoint's outcome is recorded although the event store refuses writes.
        _wait(lambda: _only(engine, tenant, fine).status == "delivered")
        _wait(lambda: writer.refused >= 2)
        # The 410 waits in flight, neither recorded nor sent again, the endpoint still active.
        held = _only(engine, tenant, gone)
        assert (held.status, held.attempts) == ("pending", 0)
        assert engine.webhook(tenant, gone).status == "active"
        assert receiver.hits == {"/gone": 1, "/ok": 1}
        # Once the store takes writes again: disabled first, then the 410 recorded.
        writer.refuse = False
        _wait(lambda: _only(engine, tenant, gone).status == "failed")
        assert engine.webhook(tenant, gone).status == "disabled"
        assert _only(engine, tenant, gone).lastStatus == 410
        assert receiver.hits == {"/gone": 1, "/ok": 1}
    finally:
        worker.close()
