"""Device identification against a real `signalpost serve` with two worker processes."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from _device_support import CHROME_UA, COMPONENTS

from api.process import ServerProcess, cli


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("devsrv") / "data"
    ws = cli("workspace", "create", "--name", "devices", "--plan", "enterprise", data=data)
    with ServerProcess(data, workers=2) as proc:
        yield proc, ws


def _identify(url: str, key: str, components: dict) -> dict:
    r = httpx.post(
        f"{url}/v1/agent/identify",
        json={"components": components},
        headers={"Authorization": f"Bearer {key}", "User-Agent": CHROME_UA},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_concurrent_first_visits_of_one_device_across_workers_make_one_visitor(server):
    proc, ws = server
    device = copy.deepcopy(COMPONENTS)
    device["canvas"] = "concurrent-device"
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(lambda _: _identify(proc.url, ws["keys"]["pk_live"], device), range(48))
        )
    assert len({a["visitorId"] for a in answers}) == 1
    assert sum(not a["visitorFound"] for a in answers) == 1
    visitor = httpx.get(
        f"{proc.url}/v1/visitors/{answers[0]['visitorId']}",
        headers={"Authorization": f"Bearer {ws['keys']['sk_live']}"},
    ).json()
    assert visitor["totalVisits"] == 48


def test_distinct_devices_in_parallel_stay_distinct(server):
    proc, ws = server

    def one(i: int) -> str:
        device = copy.deepcopy(COMPONENTS)
        device.update(canvas=f"canvas-{i}", audio=f"audio-{i}", fonts=[f"Font {i}", "Arial"])
        return _identify(proc.url, ws["keys"]["pk_live"], device)["visitorId"]

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(one, range(40)))
    assert len(set(ids)) == 40


def test_identifications_survive_kill_9(server, tmp_path):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "crash", "--plan", "enterprise", data=data)
    first = ServerProcess(data).start()
    acknowledged = [_identify(first.url, ws["keys"]["sk_live"], COMPONENTS) for _ in range(5)]
    first.kill(hard=True)
    with ServerProcess(data) as again:
        h = {"Authorization": f"Bearer {ws['keys']['sk_live']}"}
        for answer in acknowledged:
            r = httpx.get(f"{again.url}/v1/events/{answer['requestId']}", headers=h)
            assert r.status_code == 200
        follow = _identify(again.url, ws["keys"]["sk_live"], COMPONENTS)
        assert follow["visitorId"] == acknowledged[0]["visitorId"]
