"""A real `signalpost serve` (granian, child process group): the README flow, kill -9 in the
middle of ingestion, several workers on one store, key rotation from the CLI while serving, and
the CLI's --json shapes."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest
from _analytics_support import assert_error, parse_ndjson, printed_keys

from api.process import ServerProcess, cli

KEY_KINDS = ("plx_live", "plx_test", "sk_live", "sk_test", "pk_live", "pk_test")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _export(server: ServerProcess, key: str) -> list[dict]:
    r = httpx.get(f"{server.url}/v1/export", headers=_auth(key), timeout=30)
    assert r.status_code == 200, r.text
    return parse_ndjson(r.content)


def _usage(server: ServerProcess, key: str) -> dict:
    r = httpx.get(f"{server.url}/v1/usage", headers=_auth(key), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _fresh_connections(server: ServerProcess) -> httpx.Client:
    """A client that opens a new connection per request, so requests spread over the workers."""
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.Client(base_url=server.url, limits=limits, timeout=30)


def _cpu_ticks(pid: int) -> int:
    """User + system CPU ticks a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _assert_workspace_shape(ws: dict) -> None:
    assert set(ws) == {"id", "name", "plan", "keys"}
    assert ws["id"].startswith("ws_")
    assert set(ws["keys"]) == set(KEY_KINDS)
    for kind, value in ws["keys"].items():
        assert value.startswith(f"{kind}_") and len(value) > len(kind) + 16, (kind, value)
    assert len(set(ws["keys"].values())) == 6


def test_readme_flow_serve_prints_default_keys_that_accept_events(tmp_path, servers):
    data = tmp_path / "signalpost-data"
    server = ServerProcess(data)
    servers.append(server)
    server.start()
    log = server.log_path.read_text()
    workspace, keys = printed_keys(log)
    assert set(keys) == set(KEY_KINDS), log
    assert f"listening on http://127.0.0.1:{server.port}" in log

    r = httpx.post(
        f"{server.url}/v1/events",
        headers={**_auth(keys["plx_live"]), "Content-Type": "application/json"},
        content=b'{"user_id": "usr_abc123", "event": "export_created", '
        b'"properties": {"format": "csv"}}',
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "stored": 1, "deduplicated": 0}
    assert r.headers["access-control-allow-origin"] == "*"
    r = httpx.post(
        f"{server.url}/v1/events/batch",
        headers=_auth(keys["pk_live"]),
        json={"events": [{"user_id": "usr_def", "event": "filter_applied"}]},
    )
    assert r.json() == {"accepted": 1, "stored": 1, "deduplicated": 0}
    r = httpx.post(
        f"{server.url}/v1/identify",
        headers=_auth(keys["sk_live"]),
        json={"user_id": "usr_abc123", "traits": {"plan": "growth"}},
    )
    assert r.json() == {"user_id": "usr_abc123", "traits": {"plan": "growth"}}
    assert (
        httpx.post(
            f"{server.url}/v1/events",
            headers=_auth(keys["plx_test"]),
            json={"user_id": "t", "event": "test_only"},
        ).status_code
        == 200
    )

    rows = _export(server, keys["sk_live"])
    assert [(e["user_id"], e["event"]) for e in rows] == [
        ("usr_abc123", "export_created"),
        ("usr_def", "filter_applied"),
    ]
    assert rows[0]["properties"] == {"format": "csv"}
    usage = _usage(server, keys["plx_live"])
    assert usage["workspace_id"] == workspace
    assert usage["events"] == {"live": 2, "test": 1} and usage["billable_events"] == 2
    assert_error(
        httpx.get(f"{server.url}/v1/usage", headers=_auth(keys["pk_live"])), 403, "forbidden"
    )
    assert_error(httpx.get(f"{server.url}/nope"), 404, "not_found")
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}

    # Restarting on the same store creates no second workspace and prints no keys again.
    server.stop()
    server.start()
    log_after = server.log_path.read_text()[len(log) :]
    assert "Created workspace" not in log_after and "plx_live_" not in log_after
    assert len(_export(server, keys["plx_live"])) == 2
    listed = cli("workspace", "list", data=data)
    assert listed == [{"id": workspace, "name": "default", "plan": "scale"}]


def _sender(url, key, acked, unknown, stop, batch_size):
    """Send events with unique insert_ids until stopped or the server goes away."""
    with httpx.Client(base_url=url, headers=_auth(key), timeout=30) as client:
        while not stop.is_set():
            batch = [uuid.uuid4().hex for _ in range(batch_size)]
            try:
                if batch_size == 1:
                    r = client.post(
                        "/v1/events", json={"user_id": "crash", "event": "e", "insert_id": batch[0]}
                    )
                else:
                    events = [{"user_id": "crash", "event": "b", "insert_id": i} for i in batch]
                    r = client.post("/v1/events/batch", json={"events": events})
            except httpx.HTTPError:
                unknown.append(batch)
                return
            if r.status_code == 200:
                assert r.json() == {"accepted": batch_size, "stored": batch_size, "deduplicated": 0}
                acked.append(batch)
            else:
                unknown.append(batch)
                return


def test_kill_9_mid_stream_loses_no_acknowledged_event_and_duplicates_none(tmp_path, servers):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "crash", "--plan", "enterprise", data=data)
    key = ws["keys"]["plx_live"]
    server = ServerProcess(data)
    servers.append(server)
    server.start()

    stop = threading.Event()
    acked: list[list[str]] = []
    unknown: list[list[str]] = []
    threads = [
        threading.Thread(
            target=_sender, args=(server.url, key, acked, unknown, stop, size), daemon=True
        )
        for size in (1, 1, 1, 5)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while sum(map(len, acked)) < 300:
        assert time.monotonic() < deadline, f"only {sum(map(len, acked))} events acknowledged"
        time.sleep(0.05)
    server.kill(hard=True)  # kill -9 of the whole process group, requests in flight
    stop.set()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()

    server.start()
    rows = _export(server, ws["keys"]["sk_live"])
    counts = collections.Counter(r.get("insert_id") for r in rows)
    duplicated = {i: n for i, n in counts.items() if n > 1}
    assert not duplicated, duplicated
    stored = set(counts)
    acked_ids = {i for batch in acked for i in batch}
    unknown_ids = {i for batch in unknown for i in batch}
    assert acked_ids <= stored, f"{len(acked_ids - stored)} acknowledged events were lost"
    assert stored <= acked_ids | unknown_ids, "events nobody sent appeared"
    # A batch is atomic even when the crash cut its request: all of it or none of it.
    for batch in unknown:
        present = [i in stored for i in batch]
        assert all(present) or not any(present), present
    # The usage counter is committed with the events: it survived the crash exactly.
    assert _usage(server, ws["keys"]["sk_live"])["events"]["live"] == len(rows)

    # The dedup memory survived too: an acknowledged insert_id sent again is not stored twice.
    resend = sorted(acked_ids)[:10]
    with httpx.Client(base_url=server.url, headers=_auth(key), timeout=10) as client:
        for insert_id in resend:
            r = client.post(
                "/v1/events", json={"user_id": "x", "event": "x", "insert_id": insert_id}
            )
            assert r.json() == {"accepted": 1, "stored": 0, "deduplicated": 1}
        r = client.post("/v1/events", json={"user_id": "x", "event": "after-restart"})
        assert r.json()["stored"] == 1
    assert len(_export(server, ws["keys"]["sk_live"])) == len(rows) + 1


def test_two_workers_store_every_concurrent_event_exactly_once(tmp_path, servers):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "workers", "--plan", "enterprise", data=data)
    server = ServerProcess(data, workers=2)
    servers.append(server)
    server.start()
    workers = server.worker_pids()
    assert len(workers) == 2, server.pids()  # the supervisor forks two workers
    before = {pid: _cpu_ticks(pid) for pid in workers}

    n_threads, per_thread = 16, 30
    results: list[tuple[str, int, dict]] = []
    errors: list[BaseException] = []

    def send(t: int) -> None:
        try:
            with _fresh_connections(server) as client:
                for n in range(per_thread):
                    insert_id = f"t{t}-n{n}"
                    key = ws["keys"]["pk_live" if n % 2 else "plx_live"]
                    r = client.post(
                        "/v1/events",
                        headers=_auth(key),
                        json={
                            "user_id": f"user-{t}",
                            "event": "concurrent",
                            "insert_id": insert_id,
                        },
                    )
                    results.append((insert_id, r.status_code, r.json()))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(results) == n_threads * per_thread
    for insert_id, status, body in results:
        assert status == 200, (insert_id, body)
        assert body == {"accepted": 1, "stored": 1, "deduplicated": 0}, (insert_id, body)

    rows = _export(server, ws["keys"]["sk_live"])
    counts = collections.Counter(r["insert_id"] for r in rows)
    assert set(counts) == {i for i, _, _ in results}
    assert set(counts.values()) == {1}
    usage = _usage(server, ws["keys"]["sk_live"])
    assert usage["events"] == {"live": n_threads * per_thread, "test": 0}
    # Both workers took a share of the requests.
    busy = [_cpu_ticks(pid) - before.get(pid, 0) for pid in workers]
    assert all(ticks > 0 for ticks in busy), busy


def test_keys_rotate_while_serving_revokes_old_keys_in_every_worker(tmp_path, servers):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "rotate", "--plan", "enterprise", data=data)
    server = ServerProcess(data, workers=2)
    servers.append(server)
    server.start()
    old = ws["keys"]
    body = {"user_id": "u", "event": "before"}
    assert (
        httpx.post(f"{server.url}/v1/events", headers=_auth(old["plx_live"]), json=body).json()[
            "stored"
        ]
        == 1
    )

    rotated = cli("keys", "rotate", "--workspace", ws["id"], data=data)
    _assert_workspace_shape(rotated)
    assert (rotated["id"], rotated["name"], rotated["plan"]) == (ws["id"], "rotate", "enterprise")
    assert not set(rotated["keys"].values()) & set(old.values())

    # Immediately, and in both workers (new connections land on either), every old key fails.
    with _fresh_connections(server) as client:
        for _ in range(6):
            for kind in KEY_KINDS:
                r = client.post("/v1/events", headers=_auth(old[kind]), json=body)
                assert_error(r, 401, "invalid_api_key")
            r = client.get("/v1/usage", headers=_auth(old["sk_live"]))
            assert_error(r, 401, "invalid_api_key")
    new = rotated["keys"]
    for kind in ("plx_live", "sk_live", "pk_live"):
        r = httpx.post(
            f"{server.url}/v1/events", headers=_auth(new[kind]), json={**body, "event": kind}
        )
        assert r.status_code == 200, r.text
    # Same workspace: the events from before the rotation are still there.
    events = sorted(e["event"] for e in _export(server, new["sk_live"]))
    assert events == ["before", "pk_live", "plx_live", "sk_live"]
    assert _usage(server, new["plx_test"])["workspace_id"] == ws["id"]


def test_cli_json_shapes(tmp_path):
    data = tmp_path / "data"
    assert cli("workspace", "list", data=data) == []
    first = cli("workspace", "create", "--name", "acme", "--plan", "scale", data=data)
    _assert_workspace_shape(first)
    assert (first["name"], first["plan"]) == ("acme", "scale")
    second = cli("workspace", "create", "--name", "beta", data=data)  # plan defaults to scale
    _assert_workspace_shape(second)
    assert second["plan"] == "scale" and second["id"] != first["id"]

    # Keys are stored as hashes only, so a listing cannot show them: id, name and plan.
    listed = cli("workspace", "list", data=data)
    assert listed == [
        {"id": first["id"], "name": "acme", "plan": "scale"},
        {"id": second["id"], "name": "beta", "plan": "scale"},
    ]

    # --json output is one JSON document on stdout, nothing else.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "api.cli",
            "workspace",
            "create",
            "--name",
            "g",
            "--plan",
            "growth",
            "--data",
            str(data),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    _assert_workspace_shape(json.loads(out.stdout))
    assert out.stdout.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "rotate", "--workspace", "ws_doesnotexist"], "No workspace ws_doesnotexist"),
        (["workspace", "create", "--name", "x", "--plan", "platinum"], "invalid choice"),
        (["workspace", "create", "--name", ""], "name"),
    ],
)
def test_cli_failures_exit_non_zero_with_a_message_and_no_json(tmp_path, args, message):
    out = subprocess.run(
        [sys.executable, "-m", "api.cli", *args, "--data", str(tmp_path / "data"), "--json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stdout == ""
    assert message in out.stderr
