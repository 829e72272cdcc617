"""Storage faults under a real `signalpost serve`: a sync that fails with EIO (injected with
LD_PRELOAD) stops all writes until a restart, and a full filesystem (a small tmpfs) refuses
only the write that does not fit."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _analytics_support import parse_ndjson

from api.process import ServerProcess, cli

SHIM = Path(__file__).with_name("_fault_shim.c")


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _event(name: str, **extra: object) -> dict:
    return {"user_id": "u1", "event": name, "insert_id": name, **extra}


def _stored(server: ServerProcess, key: str) -> list[str]:
    r = httpx.get(f"{server.url}/v1/export", headers=_auth(key), timeout=30)
    assert r.status_code == 200, r.text
    return sorted(row["insert_id"] for row in parse_ndjson(r.content))


def _error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["docs"] == f"/docs/errors#{code}"
    return error


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shim") / "fault.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(out), str(SHIM), "-ldl"],
                   check=True)  # fmt: skip
    return out


def test_a_failed_sync_is_never_acknowledged_and_stops_writes_until_restart(
    tmp_path, servers, shim
):
    data, control = tmp_path / "data", tmp_path / "fault"
    control.write_text("")
    key = cli("workspace", "create", "--name", "f", "--plan", "enterprise", data=data)["keys"][
        "sk_live"
    ]
    env = {"LD_PRELOAD": str(shim), "SIGNALPOST_FAULT_FILE": str(control)}
    server = ServerProcess(data, workers=2, env=env)
    servers.append(server)
    server.start()
    fresh = httpx.Limits(max_keepalive_connections=0)  # new connections reach both workers
    with httpx.Client(base_url=server.url, headers=_auth(key), limits=fresh, timeout=30) as c:
        assert c.post("/v1/events", json=_event("before")).status_code == 200

        control.write_text("eio")
        error = _error(c.post("/v1/events", json=_event("failed")), 503, "storage_unavailable")
        assert "restarted" in error["message"]
        assert (data / "write-fault").exists()

        # The disk answers again, but nothing proves the failed pages reached it: every worker
        # refuses every kind of write until the server restarts.
        control.write_text("")
        for i in range(8):
            _error(c.post("/v1/events", json=_event(f"refused{i}")), 503, "storage_unavailable")
        _error(c.post("/v1/identify", json={"user_id": "u1", "traits": {"a": 1}}), 503,
               "storage_unavailable")  # fmt: skip
        rule = {"name": "r", "conditions": {"field": "ip", "operator": "equals",
                "value": "10.0.0.1"}, "action": {"verdict": "block"}}  # fmt: skip
        _error(c.post("/v1/rules", json=rule), 503, "storage_unavailable")
        # Reads go on.
        assert c.get("/v1/usage").status_code == 200
        assert _stored(server, key) == ["before"]

    server.stop()
    server.env.pop("LD_PRELOAD")
    server.start()
    assert not (data / "write-fault").exists()
    r = httpx.post(f"{server.url}/v1/events", headers=_auth(key), json=_event("after"))
    assert r.status_code == 200, r.text
    assert _stored(server, key) == ["after", "before"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs: a filesystem that really fills up."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Take all but `leave` bytes of the filesystem's free space."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    size = stat.f_bavail * stat.f_frsize - leave
    with open(filler, "wb") as f:
        for _ in range(size // (1 << 20)):
            f.write(b"\0" * (1 << 20))
    return filler


def test_a_write_that_does_not_fit_fails_alone_and_writes_resume_with_space(
    tmp_path, servers, small_disk
):
    data = small_disk / "data"
    key = cli("workspace", "create", "--name", "d", "--plan", "enterprise", data=data)["keys"][
        "sk_live"
    ]
    server = ServerProcess(data, workers=1, log=tmp_path / "server.log")
    servers.append(server)
    server.start()
    pad = base64.b64encode(os.urandom(1400)).decode()  # incompressible
    batch = {"events": [_event(f"b{i}", properties={"pad": pad}) for i in range(500)]}
    with httpx.Client(base_url=server.url, headers=_auth(key), timeout=60) as c:
        assert c.post("/v1/events", json=_event("before")).status_code == 200
        filler = _fill(small_disk, leave=384 << 10)

        error = _error(c.post("/v1/events/batch", json=batch), 507, "storage_full")
        assert "full" in error["message"]
        # Smaller writes still fit, and reads go on.
        for i in range(5):
            assert c.post("/v1/events", json=_event(f"small{i}")).status_code == 200
        assert _stored(server, key) == ["before", *(f"small{i}" for i in range(5))]

        filler.unlink()
        r = c.post("/v1/events/batch", json=batch)
        assert r.status_code == 200, r.text
        assert r.json()["stored"] == 500
        assert len(_stored(server, key)) == 506
