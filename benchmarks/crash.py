"""Kill -9 the real server at seeded moments while every kind of write runs, and check after
each restart that nothing acknowledged was lost, duplicated or half-written
(tests/e2e/_crash/__init__.py explains what is driven and checked).

    python benchmarks/crash.py [--kills 20] [--seed 0] [--workers 2] [--dir DIR] [--out FILE]

Prints the JSON summary (`defects` lists what went wrong); exits 1 when there are defects.
`--out benchmarks/results/crash-<seed>.json` keeps it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from _crash import CrashConfig, iter_defects, run_crash

from report import emit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", type=Path, help="work directory kept afterwards (data, log)")
    parser.add_argument("--out", type=Path, help="also write the JSON summary here")
    args = parser.parse_args()
    config = CrashConfig(kills=args.kills, seed=args.seed, workers=args.workers, verbose=True)
    summary = run_crash(config, args.dir)
    line = (
        f"{summary['kills']} kills in {summary['seconds']} s: "
        f"{summary['acknowledged_total']} writes acknowledged, "
        f"{summary['unknown_total']} unknown, {len(summary['defects'])} defects"
    )
    emit(summary, line, args.out)
    for defect in iter_defects(summary):
        print(defect, file=sys.stderr)
    return 1 if summary["defects"] else 0


if __name__ == "__main__":
    sys.exit(main())
