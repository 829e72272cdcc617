"""The owners (workspace × environment) and the model of what each one wrote.

Everything an owner writes carries its marker (`own1al`: workspace a, live) in its ids, names,
user ids, URLs or properties, so that another owner's data is recognisable in an answer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from _device_support import COMPONENTS

EVENT_NAMES = ("signup", "export_created", "dashboard_viewed", "invite_sent")
IDENTIFY_TYPES = ("login", "signup", "checkout")
PLANS = ("free", "pro")
# Names every owner may use: list names are unique per workspace and environment only.
SHARED_LIST_NAMES = ("blocklist", "allowlist", "review")
SHARED_USERS = 3
OWN_USERS = 5
DEVICES = 4
# `.invalid` never resolves (RFC 2606): webhook deliveries stay on this machine.
HOOK_HOST = "hooks-{marker}-{n}.invalid"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def hours_ago(hours: float) -> str:
    return iso(datetime.now(UTC) - timedelta(hours=hours))


def device(index: int) -> dict[str, Any]:
    """Browser components of device `index`: every matching input differs between devices, so
    two devices never fall into one visitor; the same index is the same device everywhere."""
    components = copy.deepcopy(COMPONENTS)
    components.update(
        canvas=f"{index:02d}c4a9f7e1b2d3a5",
        audio=f"{100 + index * 7.31:.4f}",
        fonts=[f"Font{index}", f"Face{index}"],
        screen={"w": 1280 + 160 * index, "h": 720 + 90 * index, "colorDepth": 24},
        math=f"{index:02d}ab{index:02d}cd{index:02d}ef{index:02d}",
        webgl={"vendor": f"V{index}", "renderer": f"Renderer {index}", "extensions": [f"E{index}"]},
    )
    return components


def env_keys(keys: dict[str, str], env: str) -> dict[str, str]:
    """The keys of environment `env` out of a workspace's keys."""
    return {kind: keys[f"{kind}_{env}"] for kind in ("plx", "sk", "pk")}


@dataclass
class Ident:
    visitor: str
    device: int
    type: str
    linked: str | None
    rule: str | None  # the rule whose verdict the identification got
    verdict: str | None


@dataclass
class RuleModel:
    name: str
    priority: int
    status: str
    verdict: str
    condition: dict[str, Any]


@dataclass
class ListModel:
    name: str
    type: str
    entries: set[str] = field(default_factory=set)


@dataclass
class WebhookModel:
    url: str
    status: str = "active"
    # Identifications made while the webhook was active: the only ones its deliveries may carry.
    requests: set[str] = field(default_factory=set)


@dataclass
class CohortModel:
    name: str
    kind: str  # "event" or "property"
    value: str  # the event name or the plan
    at_creation: set[str]


@dataclass
class Owner:
    """One workspace × environment: its keys and the model of everything it wrote."""

    label: str  # "al", "at", "bl", "bt"
    marker: str
    workspace: str
    env: str
    keys: dict[str, str]  # "plx", "sk", "pk" -> the key of this environment
    stored: int = 0
    insert_ids: set[str] = field(default_factory=set)
    users_by_event: dict[str, set[str]] = field(default_factory=dict)
    plan_of: dict[str, str] = field(default_factory=dict)
    ever_plan: dict[str, set[str]] = field(default_factory=dict)
    idents: dict[str, Ident] = field(default_factory=dict)
    # Every live visitor a device was answered: without its stored id a device may be split
    # off into a new visitor (a new id rather than a wrong one), never answered another's.
    device_visitors: dict[int, set[str]] = field(default_factory=dict)
    visitors: dict[str, list[str]] = field(default_factory=dict)  # live visitor -> requests
    gone_visitors: set[str] = field(default_factory=set)
    rules: dict[str, RuleModel] = field(default_factory=dict)
    lists: dict[str, ListModel] = field(default_factory=dict)
    webhooks: dict[str, WebhookModel] = field(default_factory=dict)
    cohorts: dict[str, CohortModel] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)  # completed discovery runs, oldest first
    deliveries: set[str] = field(default_factory=set)
    # Other owners' ids this owner wrote into its own data (list entries): they may come back.
    introduced: set[str] = field(default_factory=set)
    next_priority: int = 1
    serial: int = 0

    def user(self, n: int) -> str:
        return f"u_{self.marker}_{n}" if n < OWN_USERS else f"u_shared_{n - OWN_USERS}"

    def next(self) -> int:
        self.serial += 1
        return self.serial

    def list_named(self, name: str) -> ListModel | None:
        return next((lst for lst in self.lists.values() if lst.name == name), None)

    def matches(self, rule: RuleModel, ident: Ident) -> bool:
        field_, value = rule.condition["field"], rule.condition["value"]
        if field_ == "event.type":
            return ident.type == value
        if field_ == "linkedId":
            return ident.linked is not None
        listed = self.list_named(value["list"])
        if listed is None:  # deleted since: rules see a missing list as empty
            return False
        # All requests come from loopback: an IP list matches when it holds 127.0.0.1.
        subject = ident.visitor if field_ == "visitorId" else "127.0.0.1"
        return subject in listed.entries

    def verdict_for(self, ident: Ident) -> tuple[str | None, str | None]:
        live = sorted(
            (r.priority, rid) for rid, r in self.rules.items() if r.status == "live"
        )  # unique priorities: no ties to break
        for _, rid in live:
            if self.matches(self.rules[rid], ident):
                return rid, self.rules[rid].verdict
        # Rules configured but none matched: allowed. No live rule at all: no verdict.
        return None, "allow" if live else None

    def live_idents(self) -> dict[str, Ident]:
        return {rid: i for rid, i in self.idents.items() if i.visitor in self.visitors}
