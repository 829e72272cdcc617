"""In-process identification on the drift fleet, for timing one tree beside another.

300 devices x 6 visits (seed 5), durable, through `Engine.identify_device`: the matcher, its
indexes and counts, and the writer's commits. Time the whole process for two trees in turn:

    PYTHONPATH=<tree>/src:<tree>/benchmarks python benchmarks/identify_inprocess.py
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import msgspec

from _fleet.build import build_fleet
from _fleet.visit import answered, make_visit
from engine import Engine
from engine.device import AgentRequest


def main() -> None:
    fleet = build_fleet(300, 6, 5)
    rng = random.Random("5/visits")
    with tempfile.TemporaryDirectory() as tmp, Engine.open(Path(tmp) / "data") as engine:
        ws = engine.create_workspace("speed", "scale")
        tenant = engine.authenticate(ws.keys.sk_live).tenant
        for t_us, index, _ in fleet.schedule:
            device = fleet.devices[index]
            visit = make_visit(device, t_us, fleet.networks, rng)
            request = msgspec.convert(
                {"components": visit.components, "storedVisitorId": visit.stored}, AgentRequest
            )
            event = engine.identify_device(
                tenant, request, client_ip=visit.ip,
                header_ua=visit.components["userAgent"], at_us=t_us,
            )  # fmt: skip
            answered(device, t_us, event.visitorId, visit.flags["private"])


if __name__ == "__main__":
    main()
