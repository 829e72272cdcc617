"""Auto-discovery over generated populations: 100k users / 2M events and 1M users / 10M events.

The store is built by writing event segments directly (as compaction leaves them). Measured in
one invocation per size:

- baseline: loading the columns the analysis reads (`scan.load` of ts, user, event, all time);
- brute force: the plain per-user Python definition (`discovery.brute_force`) for the pairs the
  analysis scores, on a sample of 10,000 users, scaled to all users (what a Python loop over
  users would cost);
- the analysis (`discovery.analyse`): activation windows, labels, the numba kernels, ranking.

    python benchmarks/load/discovery.py [--sizes 100000:2000000,1000000:10000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np

from engine import Engine, EngineConfig, dictionary, discovery
from engine.columns import encode_fixed, encode_var
from engine.scan import load
from engine.segments import SegmentMeta, write_segment
from engine.timeutil import now_us

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from report import emit

DAY = discovery.DAY_US
NAMES = [f"event_{i:02d}" for i in range(20)]
STEP = 1 << 18


def build(engine: Engine, tenant, users: int, events: int, now: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    per_user = events // users
    first = now - rng.uniform(15, 75, users) * DAY
    planted = rng.random(users) < 0.3
    user = np.repeat(np.arange(users), per_user)
    offset = np.tile(np.arange(per_user), users)
    # Activation events in the first 6 days, the rest spread over 20 days; planted users do
    # event_00 then event_01 first and return more often.
    day = np.where(
        offset < per_user // 2, rng.uniform(0, 6, len(user)), rng.uniform(0, 20, len(user))
    )
    stays = rng.random(users) < np.where(planted, 0.6, 0.2)
    day = np.where((offset >= per_user // 2) & ~stays[user], np.minimum(day, 6.5), day)
    names = rng.integers(2, len(NAMES), len(user))
    names = np.where(
        planted[user] & (offset == 0), 0, np.where(planted[user] & (offset == 1), 1, names)
    )
    day = np.where(planted[user] & (offset < 2), offset * 0.01, day)
    ts = (first[user] + day * DAY).astype(np.int64)

    class Intern:
        def apply(self, ctx):
            p = tenant.prefix
            return [ctx.interner.intern(ctx.txn, p, dictionary.EVENT, n) for n in NAMES]

    codes = np.asarray(engine.writer.run(Intern()), np.uint32)
    order = np.argsort(ts, kind="stable")
    ts, user, names = ts[order], user[order], names[order]
    for lo in range(0, len(ts), STEP):
        hi = min(lo + STEP, len(ts))
        n = hi - lo
        cols = {
            "ts": encode_fixed(ts[lo:hi], "i8"), "received": encode_fixed(ts[lo:hi], "i8"),
            "user": encode_fixed(user[lo:hi].astype(np.uint32), "u4"),
            "event": encode_fixed(codes[names[lo:hi]], "u4"),
            "props": encode_var([b""] * n), "insert_id": encode_var([b""] * n),
            "request_id": encode_var([b""] * n),
        }  # fmt: skip

        class Put:
            def apply(self, ctx, cols=cols, lo=lo, hi=hi):
                meta = SegmentMeta(hi - lo, int(ts[lo]), int(ts[hi - 1]), 1, 0)
                write_segment(ctx.txn, ctx.store, tenant.prefix, "events", cols, meta)

        engine.writer.run(Put())


def _brute_force_estimate(engine, tenant, now, settings, pairs: int, sample: int = 10_000) -> float:
    """Seconds the plain Python definition would take for `pairs` candidates over all users."""
    with engine.store.read() as txn:
        cols = load(txn, engine.store, tenant.prefix, "events", ["user", "event"], 0, 2**62)
    user, ts, event = np.asarray(cols["user"]), np.asarray(cols["ts"]), np.asarray(cols["event"])
    chosen = np.flatnonzero(user < sample)
    t = time.perf_counter()
    by_user: dict[int, list[tuple[int, int]]] = {}
    for u, s, e in zip(
        user[chosen].tolist(), ts[chosen].tolist(), event[chosen].tolist(), strict=True
    ):
        by_user.setdefault(u, []).append((s, e))
    activation, retained = [], []
    for events in by_user.values():
        events.sort()
        first = events[0][0]
        activation.append([e for s, e in events if s - first < settings.activation_days * DAY])
        retained.append(any(7 * DAY <= s - first < 14 * DAY for s, _ in events))
    for a in range(10):
        discovery.brute_force(activation, retained, [a, a + 1])
    per_pair = (time.perf_counter() - t) / 10
    users = int(user.max()) + 1
    return per_pair * pairs * users / sample


def run_size(users: int, events: int) -> dict:
    config = msgspec.convert(
        {"compaction": {"enabled": False}, "discovery": {"enabled": False}}, EngineConfig
    )
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        engine = Engine.open(Path(tmp) / "data", config)
        tenant = engine.authenticate(engine.create_workspace("bench").keys.plx_live).tenant
        now = now_us()
        t = time.perf_counter()
        build(engine, tenant, users, events, now)
        built = time.perf_counter() - t
        settings = discovery.Settings()
        with engine.store.read() as txn:
            discovery.analyse(txn, engine.store, tenant, settings, now)  # kernels load once
        t = time.perf_counter()
        with engine.store.read() as txn:
            load(txn, engine.store, tenant.prefix, "events", ["user", "event"], 0, 2**62)
        baseline = time.perf_counter() - t
        t = time.perf_counter()
        with engine.store.read() as txn:
            result = discovery.analyse(txn, engine.store, tenant, settings, now)
        analysed = time.perf_counter() - t
        brute = _brute_force_estimate(engine, tenant, now, settings, pairs=len(NAMES) ** 2)
        engine.close()
    top = result.sequences[0] if result.sequences else None
    return {
        "users": users, "events": events, "build_s": round(built, 1),
        "baseline_load_s": round(baseline, 2), "analyse_s": round(analysed, 2),
        "brute_force_estimated_s": round(brute, 1), "users_analysed": result.usersAnalysed,
        "top": top.sequence if top else None, "top_phi": top.phi if top else None,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", default="100000:2000000,1000000:10000000")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    results = []
    for size in args.sizes.split(","):
        users, events = (int(x) for x in size.split(":"))
        results.append(run_size(users, events))
    summary = "; ".join(
        f"{r['users']:,} users / {r['events']:,} events: {r['analyse_s']} s "
        f"(baseline load {r['baseline_load_s']} s, brute force ~{r['brute_force_estimated_s']} s)"
        for r in results
    )
    emit({"runs": results}, "auto-discovery: " + summary + " (budgets 10 s and 60 s)", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
