"""The outbox survives a `kill -9` of a real two-worker server: every delivery arrives after a
restart, and none that the receiver had acknowledged (and we had recorded) is sent again."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import msgspec
import pytest
from _device_support import CHROME_UA, COMPONENTS
from _webhook_support import PATIENCE, Answer, Receiver

from api.process import ServerProcess, cli
from engine import CompactionConfig, Engine, EngineConfig, WebhookConfig, delivery_book, outbox
from engine.store import prefixed


def _request_ids(received) -> list[str]:
    return [json.loads(r.body)["data"]["requestId"] for r in received]


def _outbox_at_rest(data) -> tuple[int, int]:
    """In a store no server has open: deliveries pending (queued in the delivery book, or still
    in the outbox), and the attempts recorded for them."""
    config = EngineConfig(
        webhooks=WebhookConfig(deliver=False), compaction=CompactionConfig(enabled=False)
    )
    with Engine.open(data, config) as engine:
        store = engine.store
        with store.read_book() as book_txn, store.read() as txn:
            fresh, _ = outbox.read_new(txn, store, delivery_book.mark(book_txn, store), 10**6)
            queued = [bytes(k) for k, _ in prefixed(book_txn, store.book, b"Q")]
            attempts = sum(
                msgspec.msgpack.decode(v, type=delivery_book.Delivery).attempts
                for _, v in prefixed(book_txn, store.book, b"D")
                if msgspec.msgpack.decode(v, type=delivery_book.Delivery).state == "pending"
            )
    return len(queued) + len(fresh), attempts


def _delivery_lock_holder(data) -> str:
    """The command line of the process holding the store's delivery lock."""
    lock = data / "webhooks.lock"
    if not lock.exists():
        return ""
    inode = lock.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if fields[1] == "FLOCK" and fields[5].endswith(f":{inode}"):
            return Path(f"/proc/{fields[4]}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def _wait_for_holder(data, needle: str, limit: float = PATIENCE) -> None:
    deadline = time.monotonic() + limit
    while needle not in _delivery_lock_holder(data):
        assert time.monotonic() < deadline, _delivery_lock_holder(data)
        time.sleep(0.05)


def test_kill_9_with_deliveries_pending_then_restart_delivers_everything(tmp_path, servers):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "hooks", "--plan", "enterprise", data=data)
    headers = {"Authorization": f"Bearer {ws['keys']['sk_live']}", "User-Agent": CHROME_UA}
    with Receiver(tmp_path) as rx:
        env = {
            "SIGNALPOST_WEBHOOKS_ALLOW_PRIVATE": "true",
            "SIGNALPOST_WEBHOOKS_CA_BUNDLE": str(rx.ca_path),
            "SIGNALPOST_WEBHOOKS_RETRY_SCHEDULE": "0,0.2,0.5,1,2,4,8",
            "SIGNALPOST_WEBHOOKS_TIMEOUT_SECONDS": str(PATIENCE),
        }
        server = ServerProcess(data, workers=2, env=env)
        servers.append(server)
        server.start()
        # Deliveries run in the server's delivery process, not in a worker.
        _wait_for_holder(data, "api.deliverer")

        def identify(client: httpx.Client, n: int) -> list[str]:
            ids = []
            for _ in range(n):
                r = client.post("/v1/agent/identify", json={"components": COMPONENTS},
                                headers=headers)  # fmt: skip
                assert r.status_code == 200, r.text
                ids.append(r.json()["requestId"])
            return ids

        with httpx.Client(base_url=server.url) as client:
            r = client.post("/v1/webhooks", json={"url": rx.url(), "events": ["identification"]},
                            headers=headers)  # fmt: skip
            assert r.status_code == 201, r.text
            hook = r.json()["id"]
            acknowledged = identify(client, 5)
            rx.wait_for(5)
            deadline = time.monotonic() + PATIENCE
            while True:  # recorded as delivered, not only received
                page = client.get(f"/v1/webhooks/{hook}/deliveries", headers=headers).json()
                if [d["status"] for d in page["data"]] == ["delivered"] * 5:
                    break
                assert time.monotonic() < deadline, page
                time.sleep(0.05)

            # From now on the receiver is failing: its first 8 answers come at once, so retries
            # pile up; the answers after them never come, so those attempts are in flight.
            never = threading.Event()
            rx.script = lambda got, n: Answer(503) if n <= 5 + 8 else Answer(503, hold=never)
            pending = identify(client, 20)
            rx.wait_for(5 + 8 + 1)
        server.kill(hard=True)
        never.set()
        received = len(rx.received) - 5
        queued, recorded = _outbox_at_rest(data)
        assert queued == 20  # nothing lost
        # Some attempts were cut short: received, but their answers never recorded.
        assert recorded < received

        rx.script = lambda got, n: Answer(200)
        before = len(rx.received)
        server.start()
        deadline = time.monotonic() + PATIENCE
        while not set(pending) <= set(_request_ids(rx.received[before:])):
            assert time.monotonic() < deadline, "not every pending delivery arrived"
            time.sleep(0.05)

        # Each event is one message id, however often it was sent.
        ids_by_request: dict[str, set[str]] = {}
        for got in rx.received:
            rid = json.loads(got.body)["data"]["requestId"]
            ids_by_request.setdefault(rid, set()).add(got.headers["webhook-id"])
        assert all(len(ids) == 1 for ids in ids_by_request.values())
        # Acknowledged and recorded deliveries were not sent again after the restart.
        assert sorted(_request_ids(rx.received)).count(acknowledged[0]) == 1
        assert not set(acknowledged) & set(_request_ids(rx.received[before:]))
        with httpx.Client(base_url=server.url) as client:
            deadline = time.monotonic() + PATIENCE
            while True:
                page = client.get(f"/v1/webhooks/{hook}/deliveries?limit=100",
                                  headers=headers).json()  # fmt: skip
                states = [d["status"] for d in page["data"]]
                if states == ["delivered"] * 25:
                    break
                assert time.monotonic() < deadline, states
                time.sleep(0.05)
        server.stop()


@pytest.mark.slow
def test_a_worker_takes_over_when_the_delivery_process_dies(tmp_path, servers):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "hooks", "--plan", "enterprise", data=data)
    headers = {"Authorization": f"Bearer {ws['keys']['sk_live']}", "User-Agent": CHROME_UA}
    with Receiver(tmp_path) as rx:
        env = {
            "SIGNALPOST_WEBHOOKS_ALLOW_PRIVATE": "true",
            "SIGNALPOST_WEBHOOKS_CA_BUNDLE": str(rx.ca_path),
        }
        server = ServerProcess(data, workers=2, env=env)
        servers.append(server)
        server.start()
        _wait_for_holder(data, "api.deliverer")
        holder = [p for p in server.pids() if b"api.deliverer" in
                  Path(f"/proc/{p}/cmdline").read_bytes()]  # fmt: skip
        os.kill(holder[0], signal.SIGKILL)
        deadline = time.monotonic() + PATIENCE  # a worker stands by 5 s, then tries every second
        while not (holder := _delivery_lock_holder(data)) or "api.deliverer" in holder:
            assert time.monotonic() < deadline, holder
            time.sleep(0.05)
        with httpx.Client(base_url=server.url) as client:
            r = client.post("/v1/webhooks", json={"url": rx.url()}, headers=headers)
            assert r.status_code == 201, r.text
            r = client.post("/v1/agent/identify", json={"components": COMPONENTS},
                            headers=headers)  # fmt: skip
            (got,) = rx.wait_for(1)
            assert json.loads(got.body)["data"]["requestId"] == r.json()["requestId"]
        server.stop()
