"""Worker placement: with several granian workers, each runs on a core of its own.

A worker's Python threads (the event loop, the writer, the compactor) take turns on one GIL,
so they never need two cores at once; left to the scheduler, the hand-offs between them wake
threads on whichever core woke them, and the workers' threads pile onto one core while the other
waits idle, or bounce between cores and lose their caches. Pinned, each worker keeps one warm
core and the workers run side by side (docs/configuration.md has the measured difference).

Each worker picks the least used of the cores it may run on, counting the live workers already
placed. The placements are kept in a small file in the data directory, under a file lock: a
worker that granian restarts takes the core its predecessor left, and entries of processes that
are gone are dropped.
"""

from __future__ import annotations

import fcntl
import os
from collections import Counter
from pathlib import Path

PLACEMENTS = "workers.cpus"


def pin_worker(data_dir: str | os.PathLike[str], workers: int) -> int | None:
    """Pin the calling process (its threads started from now on included) to one core, and
    return it; None when there is nothing to spread (one worker, or one core)."""
    cpus = sorted(os.sched_getaffinity(0))
    if workers < 2 or len(cpus) < 2:
        return None
    path = Path(data_dir) / PLACEMENTS
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        placed = {pid: cpu for pid, cpu in _parse(fh.read()) if cpu in cpus and _alive(pid)}
        cpu = choose(cpus, placed)
        placed[os.getpid()] = cpu
        fh.seek(0)
        fh.truncate()
        fh.write("".join(f"{pid} {c}\n" for pid, c in placed.items()))
    os.sched_setaffinity(0, {cpu})
    return cpu


def choose(cpus: list[int], placed: dict[int, int]) -> int:
    """The core with the fewest workers on it; the lowest such core number on a tie."""
    load = Counter(placed.values())
    return min(cpus, key=lambda cpu: (load[cpu], cpu))


def _parse(text: str) -> list[tuple[int, int]]:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            out.append((int(parts[0]), int(parts[1])))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    return True
