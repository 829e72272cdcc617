"""The API contract: schemathesis runs the coverage, fuzzing and stateful phases with every check
against a real `signalpost serve` over HTTP, with a secret key, a public key and a test key,
and finds no failure: `/openapi.json` says exactly what the server does.

The default run has a bounded profile; the longer one is marked slow. Both use a fixed seed and
Hypothesis's deterministic mode. `openapi_hooks` teaches the generator what the document states
beyond JSON Schema. The server never delivers webhooks (the generated targets are public hosts);
a delivery that already failed, against a loopback port nothing listens on, is made before, so
that a replay has something to send again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from api.process import ServerProcess, cli

HERE = Path(__file__).parent
SEED = 20261203
KEYS = ("sk_live", "pk_live", "sk_test")
ALL_PHASES = "coverage,fuzzing,stateful"
# Per key: phases, fuzzing examples per operation, stateful steps. The coverage phase is the
# bulk of a run (over 20,000 cases, about two minutes on two cores): the default run fuzzes (valid
# and invalid data) and walks the links; the slow one adds the coverage phase for every key.
FAST = {
    "sk_live": ("fuzzing,stateful", 10, 10),
    "pk_live": ("fuzzing,stateful", 5, 6),
    "sk_test": ("fuzzing,stateful", 5, 6),
}
LONG = {"sk_live": (ALL_PHASES, 100, 40), "pk_live": (ALL_PHASES, 40, 20),
        "sk_test": (ALL_PHASES, 60, 30)}  # fmt: skip


class Seeds(NamedTuple):
    """What one secret key's run starts with: a webhook whose one delivery failed (to replay)
    and a rule. Generated cases learn ids only from some answers, and never reach the rule
    operations past 404 from them; these ids are given to those operations, and no case deletes
    them (openapi_hooks)."""

    webhook: str
    delivery: str
    rule: str


class Contract:
    def __init__(self, server: ServerProcess, keys: dict[str, str], seeds: dict[str, Seeds]):
        self.server, self.keys, self.seeds = server, keys, seeds


_RULE = {
    "name": "Contract rule",
    "status": "monitor",
    "conditions": {"field": "signals.bot.detected", "operator": "equals", "value": True},
    "action": {"verdict": "challenge"},
}


def _seed(client: httpx.Client, key: str) -> Seeds:
    """A webhook whose one delivery failed (its target refuses the connection), and a rule."""
    headers = {"authorization": f"Bearer {key}"}
    rule = client.post("/v1/rules", json=_RULE, headers=headers)
    assert rule.status_code == 201, rule.text
    hook = client.post(
        "/v1/webhooks",
        json={"url": "https://localhost:9/contract", "events": ["identification"]},
        headers=headers,
    ).json()["id"]
    assert client.post("/v1/agent/identify", json={}, headers=headers).status_code == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = client.get(f"/v1/webhooks/{hook}/deliveries", headers=headers).json()
        if page["data"] and page["data"][0]["status"] == "failed":
            return Seeds(hook, page["data"][0]["id"], rule.json()["id"])
        time.sleep(0.1)
    raise AssertionError(f"the delivery of {hook} did not fail in time")


def start(root: Path) -> Contract:
    """A server on a fresh enterprise workspace under `root`, seeded in each environment; the
    caller kills `.server`."""
    data = root / "data"
    keys = cli("workspace", "create", "--name", "contract", "--plan", "enterprise", data=data)[
        "keys"
    ]
    # One attempt, to loopback: made once, before any generated (public) target exists.
    delivering = {
        "SIGNALPOST_WEBHOOKS_ALLOW_PRIVATE": "1",
        "SIGNALPOST_WEBHOOKS_RETRY_SCHEDULE": "0",
    }
    with ServerProcess(data, env=delivering) as seeding, httpx.Client(base_url=seeding.url) as c:
        seeds = {key: _seed(c, keys[key]) for key in ("sk_live", "sk_test")}
    config = root / "signalpost.toml"
    config.write_text("[engine.webhooks]\ndeliver = false\n")
    server = ServerProcess(data, env={"SIGNALPOST_CONFIG": str(config)}).start()
    return Contract(server, keys, seeds)


@pytest.fixture(scope="module")
def contract(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Contract]:
    started = start(tmp_path_factory.mktemp("contract"))
    try:
        yield started
    finally:
        started.server.kill(hard=True)


def _config(contract: Contract, key: str, steps: int) -> str:
    lines = [f"[phases.stateful]\nmax-steps = {steps}\n"]
    seeds = contract.seeds.get(key)
    if seeds is not None:
        lines.append(
            '[[operations]]\ninclude-operation-id = "replayDelivery"\n'
            f'parameters = {{ webhook_id = "{seeds.webhook}", delivery_id = "{seeds.delivery}" }}\n'
        )
        for operation in ("getRule", "updateRule", "backtestRule"):
            lines.append(
                f'[[operations]]\ninclude-operation-id = "{operation}"\n'
                f'parameters = {{ rule_id = "{seeds.rule}" }}\n'
            )
    if key.startswith("pk_"):
        # A public key on a secret-key operation answers the documented 403: not an auth setup
        # to fix, so the warning about operations answering only 401/403 is not shown there.
        lines.append(
            '[[operations]]\ninclude-tag = "secret key"\n'
            'warnings = { display = ["missing_test_data", "validation_mismatch"] }\n'
        )
    return "\n".join(lines)


def run_schemathesis(
    contract: Contract, key: str, phases: str, examples: int, steps: int, tmp: Path
) -> dict[str, Any]:
    """The JSON report of one run (the CLI, as a person would run it)."""
    config, report = tmp / f"{key}.toml", tmp / f"{key}.json"
    config.write_text(_config(contract, key, steps))
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        f"{contract.server.url}/openapi.json", "--checks", "all",
        "--phases", phases, "--max-examples", str(examples),
        "--seed", str(SEED), "--generation-deterministic",
        # Hypothesis's health checks: one times data generation (timing must not decide a
        # test), the other counts cases dropped, and the only cases dropped are the deletions
        # of the seeded ids.
        "--suppress-health-check", "too_slow,filter_too_much",
        "--workers", "1", "--no-color", "-H", f"Authorization: Bearer {contract.keys[key]}",
        "--report", "json", "--report-json-path", str(report), "--report-dir", str(tmp),
    ]  # fmt: skip
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "openapi_hooks",
        "SIGNALPOST_CONTRACT_KEPT_IDS": ",".join(
            kept for seeds in contract.seeds.values() for kept in (seeds.webhook, seeds.rule)
        ),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp, timeout=3600)
    assert report.exists(), out.stdout + out.stderr
    result = json.loads(report.read_text())
    result["output"] = out.stdout
    return result


REPLAY = "POST /v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay"
# Warnings that describe this test's server, not the document. It never delivers, so a replayed
# delivery stays pending and every later replay of it is the documented 400 naming deliveryId:
# the replay is reached (the first one answers 202, checked below) and the 400s that follow come
# from the state, not the schema.
EXPECTED_WARNINGS = {("validation_mismatch", REPLAY)}


def _assert_clean(result: dict[str, Any], warnings_too: bool, seeded: bool) -> None:
    cases = result["test_cases"]
    print(f"\n{cases['generated']} cases, {cases['with_failures']} with failures")
    assert not result["failures"] and not cases["with_failures"], result["output"]
    assert not result["errors"], result["output"]
    if warnings_too:
        shown = {
            (name, op) for name, ops in result["warnings"].items() for op in ops
        } - EXPECTED_WARNINGS
        assert not shown, result["output"]
    if seeded:  # the seeded delivery was sent again: the replay was tested past its 404s
        phases = result["valid_rates"].get(REPLAY, {}).values()
        assert sum(phase["accepted"] for phase in phases) >= 1, result["output"]


@pytest.mark.parametrize("key", KEYS)
def test_the_document_says_what_the_server_does(contract, key, tmp_path):
    result = run_schemathesis(contract, key, *FAST[key], tmp_path)
    _assert_clean(result, warnings_too=False, seeded=key in contract.seeds)


@pytest.mark.slow
@pytest.mark.parametrize("key", KEYS)
def test_the_document_says_what_the_server_does_at_length(contract, key, tmp_path):
    result = run_schemathesis(contract, key, *LONG[key], tmp_path)
    _assert_clean(result, warnings_too=True, seeded=key in contract.seeds)
