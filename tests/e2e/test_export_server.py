"""An NDJSON export under a real server releases its read snapshot when the client leaves or
stops reading, instead of pinning the store until a garbage collection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import lmdb
import pytest

from api.process import ServerProcess, cli

ROWS = 60_000  # chunks of 1,000 rows: more than the server and the sockets buffer


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _snapshots(env: lmdb.Environment) -> list[int]:
    """The transaction ids that open read transactions on the store hold."""
    lines = env.readers().splitlines()[1:]
    return [int(parts[2]) for parts in (line.split() for line in lines) if parts[2:] != ["-"]]


def _wait(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, Path]]:
    data = tmp_path_factory.mktemp("export") / "data"
    key = cli("workspace", "create", "--name", "x", "--plan", "enterprise", data=data)["keys"][
        "sk_live"
    ]
    # No background merges: the only write transactions are the tests' own, so the snapshot
    # an export holds is the last one committed before it started.
    config = data.parent / "signalpost.toml"
    config.write_text("[engine.compaction]\nenabled = false\n[engine.discovery]\nenabled = false\n")
    env = {"SIGNALPOST_EXPORT_IDLE_SECONDS": "5", "SIGNALPOST_CONFIG": str(config)}
    server = ServerProcess(data, env=env)
    server.start()
    try:
        pad = "p" * 100
        with httpx.Client(base_url=server.url, headers=_auth(key), timeout=60) as c:
            for b in range(ROWS // 500):
                events = [
                    {"user_id": f"u{i}", "event": "e", "properties": {"pad": pad, "i": i}}
                    for i in range(b * 500, (b + 1) * 500)
                ]
                assert c.post("/v1/events/batch", json={"events": events}).status_code == 200
        yield server, key, data
    finally:
        server.kill()


def _start_export(server: ServerProcess, key: str, env: lmdb.Environment):
    """An export whose first chunk has arrived, and the snapshot it holds."""
    before = env.info()["last_txnid"]
    client = httpx.Client(base_url=server.url, headers=_auth(key), timeout=60)
    response = client.send(client.build_request("GET", "/v1/export"), stream=True)
    assert response.status_code == 200
    chunks = response.iter_raw()  # kept: dropping it would close the response
    assert next(chunks)
    # A write moves the store on, so that only the export still reads the old snapshot.
    r = httpx.post(
        f"{server.url}/v1/events", headers=_auth(key), json={"user_id": "w", "event": "w"}
    )
    assert r.status_code == 200
    assert env.info()["last_txnid"] > before
    assert before in _snapshots(env), "the export holds its snapshot while it runs"
    return client, (response, chunks), before


def test_a_client_that_disconnects_releases_the_snapshot(loaded):
    server, key, data = loaded
    with lmdb.open(str(data), readonly=True, max_dbs=32) as env:
        client, (response, _), held = _start_export(server, key, env)
        response.close()
        client.close()
        _wait(lambda: all(t > held for t in _snapshots(env)), "snapshot still held")


def test_a_client_that_stops_reading_releases_the_snapshot_after_the_idle_limit(loaded):
    server, key, data = loaded
    with lmdb.open(str(data), readonly=True, max_dbs=32) as env:
        client, (response, _), held = _start_export(server, key, env)
        try:
            # The client keeps its connection but reads nothing more: after 5 s idle the
            # server closes the export.
            _wait(lambda: all(t > held for t in _snapshots(env)), "snapshot still held")
        finally:
            response.close()
            client.close()
