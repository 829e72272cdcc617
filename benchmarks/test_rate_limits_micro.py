"""The limiter's cost per request: authenticating a key and counting it against its plan (the
request path of a limited workspace: plan read, shared counter locked and updated) beside
authenticating it with nothing to count, in the same run.

Budget: at most 20 µs added per request.
"""

from __future__ import annotations

import pytest

from engine import Engine, EngineConfig
from engine.rate_limits import Limit, RateLimitConfig

pytestmark = pytest.mark.benchmark(group="rate-limits")
# A ceiling the benchmark's rounds cannot reach, so every counted request is allowed.
CONFIG = EngineConfig(rate_limits=RateLimitConfig(plans={"scale": {"ingest": Limit(10**9, 1)}}))


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    e = Engine.open(tmp_path_factory.mktemp("limits"), CONFIG)
    yield e
    e.close()


def test_baseline_authenticate_without_a_limit(benchmark, engine):
    key = engine.create_workspace("off", "scale").keys.plx_live
    _, decision = benchmark(engine.authorize, key, None)
    assert decision is None


def test_authenticate_and_count_against_the_plan(benchmark, engine):
    key = engine.create_workspace("on", "scale").keys.plx_live
    _, decision = benchmark(engine.authorize, key, "ingest")
    assert decision is not None and decision.allowed
