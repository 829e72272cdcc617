"""Engines on a temporary directory, with and without background compaction."""

from __future__ import annotations

import msgspec
import pytest

from engine import CompactionConfig, Engine, EngineConfig


@pytest.fixture
def engine(tmp_path):
    e = Engine.open(tmp_path / "data", EngineConfig(compaction=CompactionConfig(enabled=False)))
    yield e
    e.close()


@pytest.fixture
def tenant(engine):
    ws = engine.create_workspace("unit")
    return engine.authenticate(ws.keys.plx_live).tenant


@pytest.fixture
def open_engine(tmp_path):
    """Open engines on directories under tmp_path (background compaction off unless given);
    every engine still open at the end of the test is closed."""
    opened: list[Engine] = []

    def _open(name: str = "data", **config) -> Engine:
        config.setdefault("compaction", CompactionConfig(enabled=False))
        e = Engine.open(tmp_path / name, EngineConfig(**config))
        opened.append(e)
        return e

    yield _open
    for e in opened:
        e.close()


@pytest.fixture
def exported():
    """All exported rows of a tenant, decoded, in export order."""

    def _rows(engine, tenant, from_us: int = 0, to_us: int = 2**62) -> list[dict]:
        data = b"".join(engine.export_ndjson(tenant, from_us, to_us))
        return [msgspec.json.decode(line) for line in data.splitlines()]

    return _rows
