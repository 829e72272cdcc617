"""The component schemas of the OpenAPI document: msgspec writes them from the Structs the server
decodes and encodes with, then the checks a decoder makes after msgspec (operator tables, field
kinds, dependent fields, limits from the configuration) are added from the same tables and
constants those checks read."""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from engine import codec, lists, rule_fields, rules
from engine.backtest import BacktestIn, BacktestResult
from engine.cohort_store import CohortDeleted, CohortIn, CohortOut, CohortPage, MembersPage
from engine.cohorts import MAX_CONDITIONS, MAX_DEPTH
from engine.config import EngineConfig
from engine.delivery_book import DeliveryOut, DeliveryPage
from engine.device import AgentRequest
from engine.device_analytics import EventsAnswer, SignalsAnswer
from engine.discovery_runs import RunAnswer
from engine.events import BatchIn, EventIn, IngestResult
from engine.funnels import FunnelQuery, FunnelResult
from engine.identification import AgentAnswer, IdentificationEvent
from engine.lists import EntriesIn, EntriesResult, ListDeleted, ListIn, ListOut, ListPage
from engine.profiles import IdentifyIn, IdentifyResult
from engine.property_filters import VALUE_RULES
from engine.rule_store import (
    LIST_EFFECTS,
    RuleDeleted,
    RuleIn,
    RuleOut,
    RulePage,
    RulePatch,
    RuleWritten,
)
from engine.urlguard import MAX_URL_LENGTH, url_pattern
from engine.usage import Usage
from engine.visitors import Deleted, EventPage, Visitor
from engine.webhooks import (
    WebhookCreated,
    WebhookDeleted,
    WebhookIn,
    WebhookOut,
    WebhookPage,
    WebhookPatch,
    WebhookUpdated,
)

from .errors import ErrorBody
from .openapi_parts import ref
from .params import INSTANT_SCHEMA

STRUCTS = (
    EventIn, BatchIn, IngestResult, IdentifyIn, IdentifyResult, Usage, ErrorBody, AgentRequest,
    AgentAnswer, IdentificationEvent, EventPage, Visitor, Deleted, ListIn, ListOut, ListPage,
    EntriesIn, EntriesResult, ListDeleted, RuleIn, RulePatch, RuleOut, RulePage, RuleWritten,
    RuleDeleted, FunnelQuery, FunnelResult, CohortIn, CohortOut, CohortPage, CohortDeleted,
    MembersPage, BacktestIn, BacktestResult, EventsAnswer, SignalsAnswer, RunAnswer, WebhookIn,
    WebhookPatch, WebhookCreated, WebhookOut, WebhookPage, WebhookUpdated, WebhookDeleted,
    DeliveryOut, DeliveryPage,
)  # fmt: skip

# Traits and rule conditions refuse numbers outside this range, wherever they are.
_INT_RANGE = {"minimum": codec.NUMBER_RANGE[0], "maximum": codec.NUMBER_RANGE[1]}
_SCALARS = {"bool": {"type": "boolean"}, "number": {"type": "number", **_INT_RANGE},
            "string": {"type": "string"}}  # fmt: skip


def components(config: EngineConfig) -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components(STRUCTS, ref_template="#/components/schemas/{name}")
    schemas.update(_rule_conditions())
    schemas["StoredJson"] = _stored_json()
    schemas["ListEntry"] = _list_entry()
    _refine(schemas, config)
    return schemas


def _props(schemas: dict[str, Any], name: str) -> dict[str, Any]:
    return schemas[name]["properties"]


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _refine(schemas: dict[str, Any], config: EngineConfig) -> None:
    _props(schemas, "BatchIn")["events"]["maxItems"] = config.max_batch_events
    for name in ("traits", "set_once"):
        _props(schemas, "IdentifyIn")[name].update(
            propertyNames={"minLength": 1, "maxLength": 200},
            additionalProperties=ref("StoredJson"),
            description=f"At most {config.max_properties_bytes} bytes encoded.",
        )
    for name in ("add", "remove"):
        _props(schemas, "EntriesIn")[name].update(
            items=ref("ListEntry"),
            maxItems=lists.MAX_ENTRIES_PER_CALL,
            description=f"`add` and `remove` hold at most {lists.MAX_ENTRIES_PER_CALL} entries "
            "together; each entry is of the list's type.",
        )
    for name in ("PropertyFilter", "PropertyCondition"):
        schemas[name]["anyOf"] = _property_values()
    group = schemas["Group"]
    group["description"] = f"Groups nest at most {MAX_DEPTH} deep, over at most "
    group["description"] += f"{MAX_CONDITIONS} conditions."
    group["anyOf"] = [
        {"properties": {"operator": {"enum": ["AND", "OR"]}}},
        {"properties": {"operator": {"const": "NOT"}, "conditions": {"maxItems": 1}}},
    ]
    _cohort_levels(schemas)
    window = schemas["engine.cohorts.Window"]
    window["properties"]["from"] = window["properties"]["to"] = _nullable(INSTANT_SCHEMA)
    window["oneOf"] = [
        {
            "required": ["last_days"],
            "properties": {"last_days": {"type": "integer"}, "from": {"type": "null"},
                           "to": {"type": "null"}},
        },
        {
            "required": ["from", "to"],
            "properties": {"from": {"type": "string"}, "to": {"type": "string"},
                           "last_days": {"type": "null"}},
        },
    ]  # fmt: skip
    _props(schemas, "FunnelQuery")["from"] = dict(INSTANT_SCHEMA)
    _props(schemas, "FunnelQuery")["to"] = dict(INSTANT_SCHEMA)
    for name in ("RuleIn", "RulePatch"):
        conditions = _props(schemas, name)["conditions"]
        if "anyOf" in conditions:
            conditions["anyOf"][0] = ref("RuleCondition")
        else:
            _props(schemas, name)["conditions"] = ref("RuleCondition")
    schemas["SideEffect"].update(_side_effects(config))
    url = {"type": "string", "pattern": url_pattern(config.webhooks), "maxLength": MAX_URL_LENGTH}
    _props(schemas, "WebhookIn")["url"] = url
    _props(schemas, "WebhookPatch")["url"] = _nullable(url)
    for name in ("WebhookIn", "WebhookPatch"):
        events = _props(schemas, name)["events"]["anyOf"][0]
        events["minItems"] = 1  # an empty list is refused; null (or none) means all types


def _stored_json() -> dict[str, Any]:
    return {
        "description": "Any JSON whose numbers, at any depth, are within the stored range.",
        "anyOf": [
            {"type": ["string", "boolean", "null"]},
            {"type": "number", **_INT_RANGE},
            {"type": "array", "items": ref("StoredJson")},
            {"type": "object", "additionalProperties": ref("StoredJson")},
        ],
    }


def _list_entry() -> dict[str, Any]:
    low, high = lists.VISITOR_ID_LENGTH
    return {
        "description": "A visitor id, an IP address or an email, as the list's type says.",
        "anyOf": [
            {"type": "string", "pattern": "^pv_", "minLength": low, "maxLength": high},
            {"type": "string", "format": "ipv4"},
            {"type": "string", "format": "ipv6"},
            {"type": "string", "pattern": lists.EMAIL_PATTERN, "maxLength": lists.EMAIL_MAX},
        ],
    }


def _property_values() -> list[dict[str, Any]]:
    """One branch per group of operators that take the same value types."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for op, rule in VALUE_RULES.items():
        groups.setdefault(rule.types, []).append(op)
    branches = []
    for types, ops in groups.items():
        # Bounds and items constrain only the numbers and arrays among the types.
        value: dict[str, Any] = {"type": list(types), **_INT_RANGE, "items": ref("StoredJson")}
        if types == ("array",):
            value["minItems"] = 1
        branch: dict[str, Any] = {"properties": {"operator": {"enum": ops}, "value": value}}
        if "null" not in types:
            branch["required"] = ["value"]
        branches.append(branch)
    return branches


def _rule_conditions() -> dict[str, Any]:
    """A condition tree (engine.rules.validate): groups of AND/OR over leaves whose value fits
    the kind of their field and their operator."""
    kinds: dict[str, list[str]] = {}  # field names by kind
    by_list: dict[str, list[str]] = {}
    for name, spec in rule_fields.FIELDS.items():
        kinds.setdefault(spec.kind, []).append(name)
        if spec.list_type is not None:
            by_list.setdefault(spec.list_type, []).append(name)

    def leaf(fields: list[str], ops: list[str], value: dict[str, Any]) -> dict[str, Any]:
        return {"properties": {"field": {"enum": fields}, "operator": {"enum": ops},
                               "value": value}}  # fmt: skip

    branches = [leaf(list(rule_fields.FIELDS), ["exists"], {"type": "boolean"})]
    for kind, fields in kinds.items():
        scalar = _SCALARS[kind]
        ops = ["equals", "not_equals"]
        ops += {"number": ["gt", "gte", "lt", "lte"], "string": ["contains"]}.get(kind, [])
        branches.append(leaf(fields, ops, scalar))
        values = {"type": "array", "items": scalar, "maxItems": rules.MAX_LIST_VALUES}
        branches.append(leaf(fields, ["in", "not_in"], values))
    for fields in by_list.values():
        branches.append(leaf(fields, ["in", "not_in"], ref("ListReference")))
    # One condition schema per depth: a group's members are one level deeper, and the deepest
    # level takes leaves only.
    levels: dict[str, Any] = {}
    for depth in range(1, rules.MAX_DEPTH + 1):
        if depth == rules.MAX_DEPTH:
            levels[_level(depth)] = ref("RuleLeaf")
            continue
        group = {
            "type": "object",
            "additionalProperties": ref("StoredJson"),
            "required": ["operator", "rules"],
            "properties": {
                "operator": {"enum": ["AND", "OR"]},
                "rules": {"type": "array", "minItems": 1, "items": ref(_level(depth + 1))},
            },
        }
        levels[_level(depth)] = {"anyOf": [group, ref("RuleLeaf")]}
    levels["RuleCondition"]["description"] = (
        f"At most {rules.MAX_DEPTH} levels deep, at most {rules.MAX_LEAVES} leaves."
    )
    return {
        **levels,
        "RuleLeaf": {
            "type": "object",
            "additionalProperties": ref("StoredJson"),
            "required": ["field", "operator", "value"],
            "not": {"required": ["rules"]},
            "anyOf": branches,
        },
        "ListReference": {
            "description": "A list of the field's entry type, by name.",
            "type": "object",
            "required": ["list"],
            "properties": {"list": {"type": "string"}},
            "additionalProperties": False,
        },
    }


def _cohort_levels(schemas: dict[str, Any]) -> None:
    """Groups nest at most MAX_DEPTH deep: one Group schema per depth, the deepest one's members
    being conditions only."""
    group = schemas["Group"]
    members = group["properties"]["conditions"]["items"]["anyOf"]
    leaves = [m for m in members if m != ref("Group")]
    for depth in range(1, MAX_DEPTH + 1):
        name = "Group" if depth == 1 else f"GroupAtDepth{depth}"
        deeper = [ref(f"GroupAtDepth{depth + 1}")] if depth < MAX_DEPTH else []
        level = copy.deepcopy(group)
        level["properties"]["conditions"]["items"] = {"anyOf": [*deeper, *leaves]}
        schemas[name] = level


def _level(depth: int) -> str:
    return "RuleCondition" if depth == 1 else f"RuleConditionAtDepth{depth}"


def _side_effects(config: EngineConfig) -> dict[str, Any]:
    url = {"type": "string", "pattern": url_pattern(config.webhooks), "maxLength": MAX_URL_LENGTH}
    slack = {"properties": {"type": {"const": "slack"}, "url": url}}
    if config.webhooks.slack_default_url is None:
        slack["required"] = ["url"]
    return {
        "anyOf": [
            {
                "required": ["list"],
                "properties": {"type": {"enum": list(LIST_EFFECTS)}, "list": {"type": "string"}},
            },
            {"properties": {"type": {"const": "webhook"}, "url": _nullable(url)}},
            slack,
            {"properties": {"type": {"const": "log"}}},
        ]
    }
