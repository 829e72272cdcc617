"""In-process identification on the drift fleet, for timing one tree beside another.

300 devices x 6 visits (seed 5), durable, through `Engine.identify_device` as `drift.py` drives
it: the matcher, its indexes and counts, and the writer's commits. Time the whole process for
two trees in turn:

    PYTHONPATH=<tree>/src:<tree>/benchmarks python benchmarks/identify_inprocess.py
"""

from __future__ import annotations

import drift

if __name__ == "__main__":
    drift.simulate(300, 6, 5)
