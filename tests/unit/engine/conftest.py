"""Engines on a temporary directory, with and without background compaction."""

from __future__ import annotations

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
