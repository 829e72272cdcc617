"""Fit the confidence table of `engine/calibration.py` on the drift benchmark's fleet.

Runs the fleet with calibration off (raw probabilities), bins every answer by how it was reached
(stored id, linked candidate, new visitor), whether the device is a phone and its raw
probability, and prints the share of right answers per bin as the `TABLE` to paste into
`src/engine/calibration.py`. Fit on one seed and check on another with `drift.py`:

    python benchmarks/calibrate.py --devices 5000 --seed 7
    python benchmarks/drift.py --devices 5000 --seed 11
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from unittest import mock

import drift
from _fleet.truth import Row
from engine import calibration

EDGES = {"stored": (), "linked": (0.95, 0.99), "new": tuple(i / 10 for i in range(1, 10))}
MIN_ANSWERS = 50  # a bin with fewer keeps the raw probability


def fit(devices: int, visits: int, seed: int) -> dict[tuple[str, bool], tuple]:
    seen: list[tuple[str, bool, float]] = []

    def raw(path: calibration.Path, phone: bool, value: float) -> float:
        seen.append((path, phone, value))
        return value

    rows: list[Row] = []
    with mock.patch.object(calibration, "calibrated", raw):
        drift.simulate(devices, visits, seed, rows_out=rows)
    assert len(rows) == len(seen)
    tally: dict[tuple[str, bool, int], list[int]] = defaultdict(lambda: [0, 0])
    for (path, phone, value), row in zip(seen, rows, strict=True):
        index = sum(value >= edge for edge in EDGES[path])
        counts = tally[(path, phone, index)]
        counts[0] += row.outcome == "right"
        counts[1] += 1
    table = {}
    for path, edges in EDGES.items():
        for phone in (False, True):
            shares = []
            for index in range(len(edges) + 1):
                right, n = tally.get((path, phone, index), (0, 0))
                shares.append(round(right / n, 3) if n >= MIN_ANSWERS else None)
            table[(path, phone)] = (edges, tuple(shares))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--visits", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    table = fit(args.devices, args.visits, args.seed)
    print("TABLE = {")
    for key, value in table.items():
        print(f"    {key!r}: {value!r},")
    print("}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
