"""Per-identification costs beside a decode-only baseline in the same run."""

from __future__ import annotations

import json
import random

import msgspec
import pytest

from _synthetic_devices import Device
from engine import Engine, EngineConfig, WebhookConfig, linkage, matching
from engine import identification as ident
from engine.device import AgentRequest
from engine.webhooks import WebhookIn

RNG = random.Random(5)
BODIES = [json.dumps({"components": Device(RNG, i).components(False)}).encode() for i in range(64)]
DECODER = msgspec.json.Decoder(AgentRequest)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    e = Engine.open(tmp_path_factory.mktemp("idmicro"))
    yield e
    e.close()


def test_baseline_decode_agent_request(benchmark):
    benchmark(DECODER.decode, BODIES[0])


def test_prepare_identification(benchmark, engine):
    request = DECODER.decode(BODIES[0])
    benchmark(
        ident.prepare, request, engine.ipintel, client_ip="81.2.3.4", header_ua=None,
        forwarded=False, trusted_mobile=False, received_us=0,
    )  # fmt: skip


def test_drift_between_two_devices(benchmark):
    a = matching.features(DECODER.decode(BODIES[0]).components)
    b = matching.features(DECODER.decode(BODIES[1]).components)
    benchmark(linkage.drift, a, b)


def test_identify_durably_in_process(benchmark, engine):
    ws = engine.create_workspace("idmicro")
    tenant = engine.authenticate(ws.keys.pk_live).tenant
    counter = iter(range(10**9))

    def one():
        body = BODIES[next(counter) % len(BODIES)]
        engine.identify_device(tenant, DECODER.decode(body), client_ip="81.2.3.4")

    benchmark(one)


@pytest.fixture(scope="module")
def hooked_engine(tmp_path_factory):
    """One webhook subscribed to every event; nothing is sent (deliveries only pile up), so the
    figure is what the identification's own transaction pays for enqueueing."""
    config = EngineConfig(webhooks=WebhookConfig(deliver=False))
    e = Engine.open(tmp_path_factory.mktemp("idhooked"), config)
    yield e
    e.close()


def test_identify_durably_with_a_webhook_in_process(benchmark, hooked_engine):
    ws = hooked_engine.create_workspace("idmicro")
    tenant = hooked_engine.authenticate(ws.keys.sk_live).tenant
    hooked_engine.create_webhook(tenant, WebhookIn(url="https://hooks.example.com/h"))
    counter = iter(range(10**9))

    def one():
        body = BODIES[next(counter) % len(BODIES)]
        hooked_engine.identify_device(tenant, DECODER.decode(body), client_ip="81.2.3.4")

    benchmark(one)
