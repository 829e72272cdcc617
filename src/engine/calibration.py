"""Confidence as a probability: the share of answers like this one that were right.

The matcher's raw probability (`linkage.py`) rests on rough likelihoods, so it is mapped, by
histogram binning, to the share of answers that were right on the drift benchmark
(`benchmarks/calibrate.py` fits the table on one seed; `benchmarks/drift.py` checks it on
another). An answer is binned by how it was reached (a stored id, a linked candidate, a new
visitor), whether the device is a phone (look-alikes abound), and its raw probability. A bin
the fit saw too few answers in keeps the raw probability.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Literal

Path = Literal["stored", "linked", "new"]

# (path, phone) -> (upper edges of the raw bins, the share right in each bin), fitted with
# `python benchmarks/calibrate.py --devices 5000 --seed 7` (the first-party deployment).
TABLE: dict[tuple[str, bool], tuple[tuple[float, ...], tuple[float | None, ...]]] = {
    ("stored", False): ((), (0.96,)),
    ("stored", True): ((), (0.909,)),
    ("linked", False): ((0.95, 0.99), (0.776, 0.967, None)),
    ("linked", True): ((0.95, 0.99), (None, None, None)),
    ("new", False): (
        (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
        (0.256, 0.39, 0.405, 0.319, 0.355, 0.328, 0.454, 0.652, 0.636, 0.89),
    ),
    ("new", True): (
        (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
        (None, None, 0.315, 0.482, 0.546, 0.564, 0.468, 0.383, 0.571, 0.932),
    ),
}


def calibrated(path: Path, phone: bool, raw: float) -> float:
    bins = TABLE.get((path, phone))
    if bins is None:
        return raw
    edges, shares = bins
    share = shares[min(bisect_right(edges, raw), len(shares) - 1)]
    return raw if share is None else share
