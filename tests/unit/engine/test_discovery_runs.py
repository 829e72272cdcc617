"""Auto-discovery runs: trigger, one run at a time, schedules by plan, recovery after a crash."""

from __future__ import annotations

import json

import msgspec

from engine import CompactionConfig, Engine, EngineConfig
from engine import events as ev
from engine.config import DiscoveryConfig
from engine.discovery_runs import Run, Runner, Trigger, _key, runs
from engine.timeutil import iso, now_us

DAY = 86_400_000_000


def _engine(tmp_path, **discovery) -> Engine:
    config = EngineConfig(
        compaction=CompactionConfig(enabled=False),
        discovery=DiscoveryConfig(enabled=False, **discovery),
    )
    return Engine.open(tmp_path, config)


def _tenant(engine: Engine, plan: str):
    return engine.authenticate(engine.create_workspace("r", plan).keys.plx_live).tenant


def _events(engine: Engine, tenant, n: int = 40) -> None:
    now = now_us()
    body = {"events": [{"user_id": f"u{i}", "event": "signup", "timestamp": iso(now - 20 * DAY)}
                       for i in range(n)]}  # fmt: skip
    batch = ev.decode_batch(json.dumps(body).encode(), engine.config)
    engine.writer.run(engine._ingest_op(tenant, batch, True, True))


def _runner(engine: Engine) -> Runner:
    return Runner(engine.store, engine.writer, engine.config.discovery, start=False)


def test_trigger_runs_once_and_results_follow(tmp_path):
    engine = _engine(tmp_path)
    try:
        tenant = _tenant(engine, "starter")
        _events(engine, tenant)
        first = engine.trigger_discovery(tenant)
        again = engine.trigger_discovery(tenant)
        assert (first.status, again.runId) == ("queued", first.runId)
        _runner(engine).cycle()
        done = engine.discovery_results(tenant)
        assert (done.runId, done.status, done.usersAnalysed) == (first.runId, "completed", 40)
        assert engine.trigger_discovery(tenant).runId != first.runId  # a new one after completion
    finally:
        engine.close()


def test_schedules_follow_the_plan(tmp_path):
    engine = _engine(tmp_path, continuous_seconds=0)
    try:
        plans = {plan: _tenant(engine, plan) for plan in ("starter", "growth", "scale")}
        for tenant in plans.values():
            _events(engine, tenant)
        runner = _runner(engine)
        runner.cycle()
        with engine.store.read() as txn:
            count = {p: len(runs(txn, engine.store, t.prefix)) for p, t in plans.items()}
        assert count == {"starter": 0, "growth": 1, "scale": 1}
        runner.cycle()  # no new events: scale does not run again; growth waits a day
        _events(engine, plans["scale"], 5)
        runner.cycle()  # new events on scale: it runs again
        with engine.store.read() as txn:
            count = {p: len(runs(txn, engine.store, t.prefix)) for p, t in plans.items()}
        assert count == {"starter": 0, "growth": 1, "scale": 2}
    finally:
        engine.close()


def test_a_run_interrupted_by_a_crash_is_failed_and_queued_again(tmp_path):
    engine = _engine(tmp_path)
    try:
        tenant = _tenant(engine, "pro")
        _events(engine, tenant)
        queued = engine.writer.run(Trigger(tenant.prefix))
        with engine.store.read() as txn:
            ((key, run),) = runs(txn, engine.store, tenant.prefix)

        class MarkRunning:  # what a process that died mid-run leaves behind
            def apply(self, ctx):
                stuck = msgspec.structs.replace(run, status="running", startedAt=iso(now_us()))
                ctx.txn.put(key, msgspec.msgpack.encode(stuck), db=ctx.store.discovery)

        engine.writer.run(MarkRunning())
    finally:
        engine.close()
    engine = _engine(tmp_path)
    try:
        _runner(engine).cycle()
        with engine.store.read() as txn:
            history = [r for _, r in runs(txn, engine.store, tenant.prefix)]
        assert [(r.runId == queued.runId, r.status, r.trigger) for r in history] == [
            (True, "failed", "manual"), (False, "completed", "recovery")
        ]  # fmt: skip
        assert "restart" in history[0].error
        assert isinstance(history[1], Run) and _key(tenant.prefix, 0, "x").startswith(b"d")
    finally:
        engine.close()
