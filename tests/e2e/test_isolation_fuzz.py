"""Workspace and environment isolation over real HTTP, as a hypothesis state machine.

One `signalpost serve --workers 2` and two enterprise workspaces serve the whole run: four
owners (workspace a|b × live|test). The steps drive every write endpoint with their secret and
public keys, rotate keys while serving, and read through every read endpoint; the model of what
each owner wrote, like the server's data, carries over from one example to the next.

Invariants:
- no answer carries another owner's marker or id, and another owner's id in a path is a 404
  that changes nothing (`World.check`, `foreign_id`);
- a public key gets 403 on every secret-only endpoint;
- after a rotation every earlier key gets 401 from both workers at once, the new keys work;
- each owner's usage counts exactly its own stored events.
Besides, every read is compared with the model of what the reader itself wrote, so data that
went missing or landed in another owner shows up even where no marker travels with it.

Shrinking is off: every step is real HTTP against a server that keeps all earlier examples, so a
replay is slow and not independent of the runs before it; a failure prints its steps instead.
The run prints its counts (examples, steps, requests per worker, seconds) with `-s`.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from _isolation.client import Defect, Http
from _isolation.cohorts import CohortsDiscovery
from _isolation.device_config import DeviceConfig
from _isolation.events import EventWrites
from _isolation.keys import KeysUsage
from _isolation.model import Owner, env_keys
from _isolation.probes import Probes
from _isolation.reads import Reads
from _isolation.sweep import Sweep
from _isolation.world import World
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from api.process import ServerProcess, cli


def make_owners(data: str) -> dict[str, Owner]:
    """Workspaces a and b, each as its live and its test environment."""

    def create(side: str) -> dict[str, Any]:
        return cli(
            "workspace", "create", "--name", f"isolation-{side}", "--plan", "enterprise", data=data
        )

    # Two CLI processes at once: each spends most of its time importing the engine.
    with ThreadPoolExecutor(2) as pool:
        made = dict(zip("ab", pool.map(create, "ab"), strict=True))
    owners = {}
    for side, ws in made.items():
        for env in ("live", "test"):
            label = side + env[0]
            owners[label] = Owner(label, f"own1{label}", ws["id"], env, env_keys(ws["keys"], env))
    return owners


class IsolationMachine(
    EventWrites, DeviceConfig, CohortsDiscovery, Reads, Probes, KeysUsage, Sweep
):
    """The rules of every module of `_isolation`, and the sweep that ends each example."""

    # Hypothesis picks among rules evenly; the writes that feed most reads are listed twice so
    # that the reads meet more data.
    identify_again = EventWrites.identify_device
    track_again = EventWrites.track_batch
    traits_again = EventWrites.set_traits
    list_again = DeviceConfig.patch_list


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("isolation") / "data"
    server = ServerProcess(data, workers=2)
    try:
        server.start(timeout=60)
        http = Http(server)
        # Made while serving, as rotations are: the server has set the store up by then.
        yield World(server, http, str(data), make_owners(str(data)))
        http.close()
    finally:
        server.kill(hard=True)


def _run(world: World, machine_settings: settings, rotations: int, discoveries: int) -> None:
    class Machine(IsolationMachine):
        pass

    Machine.world = world
    # Each rotation and each discovery run costs seconds (a CLI process, a background run):
    # a few per test run, wherever hypothesis puts them.
    world.budget.update(rotations=rotations, discoveries=discoveries)
    world.failures.clear()
    try:
        run_state_machine_as_test(Machine, settings=machine_settings)
    except Exception:
        # Hypothesis replays a failing example to report it; on a server that kept everything
        # since, the replay may differ and be reported as flaky. The first failure as it
        # happened is the one to read.
        if world.failures:
            where, first = world.failures[0]
            raise AssertionError(f"first failure: {where}: {first}") from first
        raise
    finally:
        print(f"\n{world.summary()}")
    if sorted(world.server.worker_pids()) != world.http.workers:
        raise Defect(f"workers changed: {world.http.workers} -> {world.server.worker_pids()}")


def _settings(examples: int, steps: int) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def test_isolation_between_workspaces_environments_and_keys(world: World) -> None:
    _run(world, _settings(examples=50, steps=20), rotations=2, discoveries=2)


@pytest.mark.slow
def test_isolation_long_run(world: World) -> None:
    _run(world, _settings(examples=200, steps=60), rotations=10, discoveries=8)
