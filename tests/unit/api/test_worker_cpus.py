"""Worker placement: each worker on the least used core, dead workers' cores taken again."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from api.worker_cpus import PLACEMENTS, choose, pin_worker


@pytest.fixture
def own_affinity():
    """pin_worker pins the calling process: the test process gets its cores back after."""
    before = os.sched_getaffinity(0)
    yield sorted(before)
    os.sched_setaffinity(0, before)


def test_the_least_used_core_is_chosen_lowest_first():
    assert choose([0, 1, 2], {}) == 0
    assert choose([0, 1, 2], {10: 0}) == 1
    assert choose([0, 1, 2], {10: 0, 11: 1, 12: 2, 13: 0}) == 1
    assert choose([2, 3], {10: 2}) == 3


def test_one_worker_or_one_core_is_left_alone(tmp_path, own_affinity):
    assert pin_worker(tmp_path, 1) is None
    assert sorted(os.sched_getaffinity(0)) == own_affinity
    assert not (tmp_path / PLACEMENTS).exists()


def test_a_worker_takes_a_core_that_a_dead_worker_left(tmp_path, own_affinity):
    if len(own_affinity) < 2:
        assert pin_worker(tmp_path, 2) is None
        return
    first, second = own_affinity[:2]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    # A live worker (this test's parent) holds the first core; a dead one held the second.
    (tmp_path / PLACEMENTS).write_text(f"{os.getppid()} {first}\n{dead_pid} {second}\nnoise\n")
    assert pin_worker(tmp_path, 2) == second
    assert os.sched_getaffinity(0) == {second}
    lines = sorted((tmp_path / PLACEMENTS).read_text().split("\n"))
    assert lines == sorted(["", f"{os.getppid()} {first}", f"{os.getpid()} {second}"])
