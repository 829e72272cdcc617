"""`signalpost serve --workers 2` places each worker on a core of its own, and leaves them
free with `pin_workers = false`; either way both workers serve and share one store."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from _device_support import COMPONENTS

from api.process import ServerProcess, cli

CORES = sorted(os.sched_getaffinity(0))


def _allowed(pid: int) -> set[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            out: set[int] = set()
            for part in line.split(":", 1)[1].strip().split(","):
                low, _, high = part.partition("-")
                out.update(range(int(low), int(high or low) + 1))
            return out
    raise AssertionError("no Cpus_allowed_list")


def _wait_pinned(workers: list[int], timeout: float = 60.0) -> None:
    """/healthz answered by one worker says nothing of the other, which may still be loading
    and not yet placed: wait until each runs on a single core."""
    deadline = time.monotonic() + timeout
    while not all(len(_allowed(pid)) == 1 for pid in workers):
        assert time.monotonic() < deadline, [_allowed(pid) for pid in workers]
        time.sleep(0.05)


def _identify_from_both_workers(server: ServerProcess, key: str) -> set[str]:
    visitors = set()
    for _ in range(8):  # fresh connections: granian spreads them over both workers
        body = {"components": COMPONENTS}
        r = httpx.post(f"{server.url}/v1/agent/identify", json=body,
                       headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        assert r.status_code == 200, r.text
        visitors.add(r.json()["visitorId"])
    return visitors


@pytest.mark.parametrize("pinned", [True, False])
def test_workers_run_on_cores_of_their_own(tmp_path, servers, pinned):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "cpus", "--plan", "enterprise", data=data)
    env = {} if pinned else {"SIGNALPOST_PIN_WORKERS": "false"}
    server = ServerProcess(data, workers=2, env=env)
    servers.append(server)
    server.start()
    workers = server.worker_pids()
    assert len(workers) == 2
    if pinned and len(CORES) >= 2:
        _wait_pinned(workers)
    placed = [_allowed(pid) for pid in workers]
    if pinned and len(CORES) >= 2:
        assert all(len(cores) == 1 for cores in placed), placed
        assert placed[0] != placed[1]
        assert set().union(*placed) <= set(CORES)
    else:
        assert placed == [set(CORES), set(CORES)]
    # One device, one visitor, whichever worker answered.
    assert len(_identify_from_both_workers(server, ws["keys"]["pk_live"])) == 1
