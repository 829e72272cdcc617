"""Rules endpoints: create, list, read, update, delete, backtest."""

from __future__ import annotations

import asyncio
from typing import get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine import codec, rule_store
from engine.backtest import BacktestIn
from engine.errors import NotFound
from engine.rule_store import ConditionSummary, RuleIn, RuleOut, RulePage, RulePatch, RuleSummary

from .auth import authenticate
from .body import read_body
from .params import OFFSET, ChoiceParam, limit
from .responses import json_response
from .state import state_of

_rule_decoder = msgspec.json.Decoder(RuleIn)
_patch_decoder = msgspec.json.Decoder(RulePatch)
_backtest_decoder = msgspec.json.Decoder(BacktestIn)
STATUS = ChoiceParam(
    name="status",
    description="Only rules of this status.",
    choices=get_args(rule_store.Status),
)
LIMIT = limit(100, 100)


async def create_rule(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    body = codec.decode(_rule_decoder, await read_body(request, st.config.max_body_bytes))
    return json_response(await st.engine.create_rule_async(key.tenant, body), 201)


async def list_rules(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    status = STATUS.read(request)
    count, offset = LIMIT.read(request), OFFSET.read(request)
    rules = [r for r in st.engine.rules(key.tenant) if status is None or r.status == status]
    data = [_summary(r) for r in rules[offset : offset + count]]
    return json_response(RulePage(data, len(rules)))


def _summary(rule: RuleOut) -> RuleSummary:
    """The list form of a rule, as the device API document shows it."""
    conditions = ConditionSummary(rule.conditions.get("operator", "AND"), _leaves(rule.conditions))
    return RuleSummary(
        rule.id, rule.name, rule.status, rule.priority, conditions, rule.action.verdict,
        rule.createdAt,
    )  # fmt: skip


def _leaves(node: dict) -> int:
    if "rules" in node:
        return sum(_leaves(child) for child in node["rules"])
    return 1


async def get_rule(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    rule_id = request.path_params["rule_id"]
    for rule in st.engine.rules(key.tenant):
        if rule.id == rule_id:
            return json_response(rule)
    raise NotFound(f"No rule {rule_id}.", field="ruleId")


async def update_rule(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    patch = codec.decode(_patch_decoder, await read_body(request, st.config.max_body_bytes))
    return json_response(
        await st.engine.update_rule_async(key.tenant, request.path_params["rule_id"], patch)
    )


async def delete_rule(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    return json_response(
        await st.engine.delete_rule_async(key.tenant, request.path_params["rule_id"])
    )


async def backtest_rule(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    # Every field has a default: no body at all means a 7-day backtest with 10 samples.
    raw = await read_body(request, st.config.max_body_bytes, empty=b"{}")
    body = codec.decode(_backtest_decoder, raw)
    # Seconds of numpy and numba work at most: off the event loop, which keeps serving.
    result = await asyncio.to_thread(
        st.engine.backtest, key.tenant, request.path_params["rule_id"], body
    )
    return json_response(result)


routes = [
    Route("/v1/rules", create_rule, methods=["POST"]),
    Route("/v1/rules", list_rules, methods=["GET"]),
    Route("/v1/rules/{rule_id}", get_rule, methods=["GET"]),
    Route("/v1/rules/{rule_id}", update_rule, methods=["PUT"]),
    Route("/v1/rules/{rule_id}", delete_rule, methods=["DELETE"]),
    Route("/v1/rules/{rule_id}/backtest", backtest_rule, methods=["POST"]),
]
