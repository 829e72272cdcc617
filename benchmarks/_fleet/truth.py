"""Ground truth and the figures computed from it.

Near-identical: device A is near-identical when some other device B, at the instant of A's
first visit, would send exactly the components A sent then, ignoring languages, time zone
(name and offset), storage (quota) and the stored id; both taken in a normal window on the
primary screen, without private-window noise, and without the readings Brave farbles afresh
for each session (canvas, audio, core count, plugins), which no site ever sees unfarbled.
Everything else counts: user agent, client hints, platform, vendor, screen, hardware, touch,
canvas, WebGL vendor/renderer/extensions, audio, fonts, plugins, automation, math.
Distinguishable: every other device.

Per answer: `right` when the visitor id is the device's own first id (the first fresh id ever
issued to it; the answer that issues it is right); `merge` when the id was first issued to
another device; `split` when a fresh id is issued to a device that already had one; `stale`
when the id was first issued to this device but is not its first (a split id reused).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

from . import calendar as cal
from .device import Device


def label_near_identical(devices: list[Device]) -> None:
    states: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # signature -> holders
    for d in devices:
        bounds = [cal.START_US - 1, *d.times, cal.END_US + 1]
        for k in range(len(d.states)):
            states[d.signature(max(bounds[k], cal.START_US))].append(
                (d.index, bounds[k], bounds[k + 1])
            )
    for d in devices:
        first = d.visits[0]
        d.near_identical = any(
            other != d.index and start <= first < end
            for other, start, end in states[d.signature(first)]
        )


class Row(NamedTuple):
    population: str
    near: bool
    later: bool  # not the device's first visit
    stored: bool  # a stored id was sent
    private: bool
    noise: bool  # farbled or private-window noise
    found: bool
    confidence: float
    outcome: str  # right, merge, split, stale
    network: str
    changes: tuple[str, ...]  # state changed since the previous visit, plus travel/screen
    started_right: bool  # the device's first answer was right (a fresh id)


GROUPS = {
    "all": lambda r: True,
    "near-identical": lambda r: r.near,
    "distinguishable": lambda r: not r.near,
    "distinguishable, no noise": lambda r: not r.near and not r.noise,
    "phones": lambda r: r.population == "phone",
    "corporate": lambda r: r.population == "corporate",
    "consumer": lambda r: r.population == "consumer",
}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def group_figures(rows: list[Row]) -> dict[str, Any]:
    merges = [r for r in rows if r.outcome == "merge"]
    later = [r for r in rows if r.later]
    with_id = [r for r in later if r.stored]
    without = [r for r in later if not r.stored]
    return {
        "answers": len(rows),
        "merges": len(merges),
        "false_merge_rate": _share(len(merges), len(rows)),
        "false_merge_rate_with_stored_id": _share(
            sum(r.stored for r in merges), sum(r.stored for r in rows)
        ),
        "false_merge_rate_without_stored_id": _share(
            sum(not r.stored for r in merges), sum(not r.stored for r in rows)
        ),
        "later_visits": len(later),
        "keep_rate": _share(sum(r.outcome == "right" for r in later), len(later)),
        "later_with_stored_id": len(with_id),
        "keep_rate_with_stored_id": _share(
            sum(r.outcome == "right" for r in with_id), len(with_id)
        ),
        "later_without_stored_id": len(without),
        "keep_rate_without_stored_id": _share(
            sum(r.outcome == "right" for r in without), len(without)
        ),
        # Later visits of devices whose first visit got a fresh id: drift alone, without the
        # merges a first visit inherits.
        "keep_rate_with_stored_id_first_visit_right": _share(
            sum(r.outcome == "right" for r in with_id if r.started_right),
            sum(r.started_right for r in with_id),
        ),
        "keep_rate_without_stored_id_first_visit_right": _share(
            sum(r.outcome == "right" for r in without if r.started_right),
            sum(r.started_right for r in without),
        ),
        "splits": sum(r.outcome == "split" for r in rows),
        "stale": sum(r.outcome == "stale" for r in rows),
    }


def calibration(rows: list[Row]) -> dict[str, Any]:
    """Bands [0,0.1) ... [0.9,1.0]; ECE = sum over bands of n_b/N * |accuracy_b - confidence_b|."""
    bands: list[list[Row]] = [[] for _ in range(10)]
    for r in rows:
        bands[min(round(r.confidence * 1000) // 100, 9)].append(r)
    table, ece = [], 0.0
    for number, band in enumerate(bands):
        entry: dict[str, Any] = {"band": f"[{number / 10:.1f},{(number + 1) / 10:.1f}"
                                 + ("]" if number == 9 else ")"), "count": len(band)}  # fmt: skip
        for name, part in (("", band), ("found_", [r for r in band if r.found]),
                           ("new_", [r for r in band if not r.found])):  # fmt: skip
            conf = sum(r.confidence for r in part) / len(part) if part else None
            acc = sum(r.outcome == "right" for r in part) / len(part) if part else None
            entry[f"{name}count"] = len(part)
            entry[f"{name}mean_confidence"] = None if conf is None else round(conf, 4)
            entry[f"{name}accuracy"] = None if acc is None else round(acc, 4)
        if band:
            ece += len(band) / len(rows) * abs(entry["accuracy"] - entry["mean_confidence"])
        table.append(entry)
    return {"bands": table, "ece": round(ece, 5)}


def breakdowns(rows: list[Row]) -> dict[str, Any]:
    """Later visits without a stored id, by what changed since the previous visit; merges by
    network."""
    by_change: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r.later and not r.stored:
            for change in r.changes or ("none",):
                by_change[change].append(r)
    by_network: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_network[r.network].append(r)
    return {
        "keep_without_stored_id_by_change": {
            k: {"visits": len(v), "keep_rate": _share(sum(r.outcome == "right" for r in v), len(v)),
                "merge_rate": _share(sum(r.outcome == "merge" for r in v), len(v))}
            for k, v in sorted(by_change.items())
        },
        "by_network": {
            k: {"answers": len(v),
                "merge_rate": _share(sum(r.outcome == "merge" for r in v), len(v))}
            for k, v in sorted(by_network.items())
        },
    }  # fmt: skip


def summarize(rows: list[Row]) -> dict[str, Any]:
    found = [r for r in rows if r.found]
    return {
        "groups": {
            name: group_figures([r for r in rows if test(r)]) for name, test in GROUPS.items()
        },
        "visitor_found": {
            "answers_found": len(found),
            "found_that_are_merges": sum(r.outcome == "merge" for r in found),
            "merge_share_of_found": _share(sum(r.outcome == "merge" for r in found), len(found)),
            "wrong_share_of_found": _share(sum(r.outcome != "right" for r in found), len(found)),
            "found_merges_share_of_all_answers": _share(
                sum(r.outcome == "merge" for r in found), len(rows)
            ),
        },
        "calibration": calibration(rows),
        "calibration_found": calibration(found),
        "calibration_new": calibration([r for r in rows if not r.found]),
        **breakdowns(rows),
    }


def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f}%"


def table(summary: dict[str, Any]) -> str:
    lines = [
        f"{'group':<27}{'answers':>8}{'merge':>9}{'merge/id':>9}{'merge/no':>9}"
        f"{'keep':>9}{'keep/id':>9}{'keep/no':>9}{'no-id n':>8}{'splits':>7}"
    ]
    for name, g in summary["groups"].items():
        lines.append(
            f"{name:<27}{g['answers']:>8}{_pct(g['false_merge_rate']):>9}"
            f"{_pct(g['false_merge_rate_with_stored_id']):>9}"
            f"{_pct(g['false_merge_rate_without_stored_id']):>9}{_pct(g['keep_rate']):>9}"
            f"{_pct(g['keep_rate_with_stored_id']):>9}{_pct(g['keep_rate_without_stored_id']):>9}"
            f"{g['later_without_stored_id']:>8}{g['splits']:>7}"
        )
    f = summary["visitor_found"]
    lines.append(
        f"visitorFound true: {f['answers_found']} answers, {f['found_that_are_merges']} merges "
        f"({_pct(f['merge_share_of_found'], 3)} of found, "
        f"{_pct(f['found_merges_share_of_all_answers'], 3)} of all answers); "
        f"not right: {_pct(f['wrong_share_of_found'], 3)} of found"
    )
    lines.append("")
    lines.append(f"{'band':<11}{'n':>7}{'conf':>7}{'acc':>7}   {'found n':>8}{'conf':>7}{'acc':>7}"
                 f"   {'new n':>7}{'conf':>7}{'acc':>7}")  # fmt: skip

    def cell(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    for b in summary["calibration"]["bands"]:
        lines.append(
            f"{b['band']:<11}{b['count']:>7}{cell(b['mean_confidence']):>7}{cell(b['accuracy']):>7}"
            f"   {b['found_count']:>8}{cell(b['found_mean_confidence']):>7}"
            f"{cell(b['found_accuracy']):>7}   {b['new_count']:>7}"
            f"{cell(b['new_mean_confidence']):>7}{cell(b['new_accuracy']):>7}"
        )
    lines.append(f"ECE {summary['calibration']['ece']:.4f}")
    return "\n".join(lines)
