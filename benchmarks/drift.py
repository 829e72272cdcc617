"""Drift benchmark: do devices keep their visitor id over 60 days of realistic change, and do
near-identical devices stay apart?

A fleet (benchmarks/_fleet: populations, networks, release calendars and drift events are
described in its modules' docstrings) visits the real engine in time order: every visit of
every device is one `Engine.identify_device` call at its simulated instant (`at_us`), over the
60 days ending 2026-12-03, interleaved across the fleet as real traffic is. The agent's side is
simulated too: the visitor id of each answer is stored (cookie and localStorage, beside the
storage's own id) and sent back unless the window is private, the user or the browser cleared
it, or Safari's ITP expired it; a visit without it sends a storage id drawn afresh. Deployed on
the site's own host (`--deployment first-party`, the default), the server's HttpOnly cookie
still carries the id when ITP expired the script storage; `other-site` leaves it out.

Populations: ~35 % near-identical phones (popular models, identical software, differing in
language, time zone and network), ~20 % corporate laptops (five images, fifteen offices, one
NAT address per office), ~45 % consumer machines (diverse pools).

Ground truth (see _fleet/truth.py for the exact definitions): an answer is right when its id is
the device's own first id, a merge when the id was first issued to another device, a split when
a fresh id is issued to a device that already had one. A device is near-identical when another
device would, at the instant of its first visit, send exactly its components apart from
languages, time zone, storage and the stored id (normal window, primary screen, no farbling).

Reported, overall and per group (near-identical, distinguishable, populations): false-merge rate
(share of answers whose id was first issued to another device), with and without a stored id;
keep rate of later visits (answer = own first id), with and without a stored id; splits; the
share of `visitorFound: true` answers that are merges; a calibration table (bands of 0.1 of
confidence: count, mean confidence, accuracy = share right, also split by visitorFound) with the
expected calibration error ECE = sum over bands of n_b/N * |accuracy_b - confidence_b|.

    python benchmarks/drift.py [--devices 5000] [--visits 8] [--seed 7] [--out FILE] [--quick]
                               [--deployment first-party|other-site]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import msgspec

from _fleet.build import build_fleet
from _fleet.truth import Row, label_near_identical, summarize, table
from _fleet.visit import answered, make_visit
from engine import Engine
from engine.device import AgentRequest
from engine.timeutil import iso
from report import emit

QUICK_DEVICES = 250


def simulate(
    devices: int,
    visits: int,
    seed: int,
    rows_out: list[Row] | None = None,
    first_party: bool = True,
) -> dict:
    """Run the fleet; `rows_out`, when given, receives one row per answer in visit order."""
    built = time.perf_counter()
    fleet = build_fleet(devices, visits, seed)
    label_near_identical(fleet.devices)
    built = time.perf_counter() - built
    owner: dict[str, int] = {}  # visitor id -> the device it was first issued to
    own: dict[int, str] = {}  # device -> its own first id
    rows: list[Row] = []
    counts: Counter[str] = Counter()
    started_right: dict[int, bool] = {}
    rng = random.Random(f"{seed}/visits")
    engine_seconds = 0.0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, Engine.open(Path(tmp) / "data") as engine:
        ws = engine.create_workspace("drift", "scale")
        tenant = engine.authenticate(ws.keys.sk_live).tenant
        for t_us, index, number in fleet.schedule:
            device = fleet.devices[index]
            visit = make_visit(device, t_us, fleet.networks, rng, first_party)
            request = msgspec.convert(
                {
                    "components": visit.components,
                    "storedVisitorId": visit.stored,
                    "storageId": visit.storage,
                },
                AgentRequest,
            )
            call = time.perf_counter()
            event = engine.identify_device(
                tenant, request, client_ip=visit.ip,
                header_ua=visit.components["userAgent"], at_us=t_us,
            )  # fmt: skip
            engine_seconds += time.perf_counter() - call
            vid = event.visitorId
            if not event.visitorFound:
                owner.setdefault(vid, index)
                outcome = "split" if index in own else "right"
                own.setdefault(index, vid)
            else:
                first_owner = owner.setdefault(vid, index)
                outcome = ("merge" if first_owner != index
                           else "right" if own.get(index) == vid else "stale")  # fmt: skip
            flags = visit.flags
            started_right.setdefault(index, outcome == "right")
            answered(device, t_us, vid, flags["private"], visit.storage)
            extra = ("travel",) * flags["travel"] + ("other_screen",) * flags["other_screen"]
            rows.append(Row(device.population, device.near_identical, number > 0,
                            visit.stored is not None, flags["private"], flags["noise"],
                            event.visitorFound, event.confidence, outcome, flags["network"],
                            (*flags["changes"], *extra), started_right[index]))  # fmt: skip
            counts["stored_id_sent"] += visit.stored is not None
            for name in ("private", "farbled", "noise", "travel", "other_screen", "itp_expired",
                         "cleared"):  # fmt: skip
                counts[name] += bool(flags[name])
            counts[f"network_{flags['network']}"] += 1
            for change in flags["changes"]:
                counts[f"after_{change}_change"] += 1
    elapsed = time.perf_counter() - started
    if rows_out is not None:
        rows_out.extend(rows)
    population = Counter(d.population for d in fleet.devices)
    near = Counter(d.population for d in fleet.devices if d.near_identical)
    return {
        "seed": seed,
        "devices": devices,
        "visits_per_device": visits,
        "deployment": "first-party" if first_party else "other-site",
        "identifications": len(rows),
        "simulated_span": [iso(fleet.schedule[0][0]), iso(fleet.schedule[-1][0])],
        "populations": {
            p: {"devices": n, "near_identical": near[p]} for p, n in population.items()
        },
        "near_identical_devices": sum(near.values()),
        "visit_counts": dict(sorted(counts.items())),
        **summarize(rows),
        "seconds_building_fleet": round(built, 2),
        "seconds": round(elapsed, 2),
        "identifications_per_second_in_process": round(len(rows) / engine_seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--visits", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DEVICES} devices")
    parser.add_argument(
        "--deployment",
        choices=("first-party", "other-site"),
        default="first-party",
        help="first-party: the agent's endpoint on the site's own host, so the server's cookie "
        "outlives Safari's seven-day cap on script storage; other-site: it does not",
    )
    args = parser.parse_args(argv)
    devices = QUICK_DEVICES if args.quick else args.devices
    result = simulate(devices, args.visits, args.seed, first_party=args.deployment == "first-party")
    print(table(result))
    print()
    g = result["groups"]
    emit(
        result,
        f"false merges {g['all']['false_merge_rate']:.4%} (near-identical "
        f"{g['near-identical']['false_merge_rate'] or 0:.4%}); keeps id with a stored id "
        f"{g['all']['keep_rate_with_stored_id']:.4%}, without (distinguishable) "
        f"{g['distinguishable']['keep_rate_without_stored_id'] or 0:.4%}; "
        f"ECE {result['calibration']['ece']:.4f}",
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
