"""Schemathesis hooks for the API contract tests: what the OpenAPI document states beyond JSON
Schema, taught to the generator.

- Instants: the server takes event timestamps from 1970 up to 24 h ahead of its clock, a fact
  about the clock no schema can hold, so `date` and `date-time` values are drawn from the
  recent past.
- `x-instant-order` (an operation's pairs of instants, in the query or in any object of the
  body, that must increase): valid cases get their pair in order.
- `x-state-dependent-fields` (error fields whose 400 depends on what is stored: a cursor not
  issued, a name taken, a list reference to no such list): a valid request refused with a 400
  naming such a field is not a contract failure.
- The ids in `SIGNALPOST_CONTRACT_KEPT_IDS` (comma-separated) are what the contract test seeds
  for operations that need something stored (a failed delivery to replay, a rule). The
  generator learns ids it reads in answers and would delete these before they are used, so no
  case deletes them.

The CLI loads this module with SCHEMATHESIS_HOOKS=openapi_hooks (tests/e2e on PYTHONPATH);
the pytest contract tests import it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis.openapi.checks import RejectedPositiveData

from engine.timeutil import iso, parse_instant

_NOW = datetime.now(UTC).replace(microsecond=0)
# Within the last week, so that an event's timestamp and its sent_at (each drawn alone) put the
# event neither in the future nor before 1970.
_RECENT = st.datetimes(
    min_value=(_NOW - timedelta(days=7)).replace(tzinfo=None),
    max_value=(_NOW - timedelta(hours=1)).replace(tzinfo=None),
)
schemathesis.openapi.format("date-time", _RECENT.map(lambda d: d.isoformat() + "Z"))
schemathesis.openapi.format(
    "date", st.dates(min_value=date(2020, 1, 1), max_value=_NOW.date()).map(date.isoformat)
)


_KEPT_IDS = frozenset(filter(None, os.environ.get("SIGNALPOST_CONTRACT_KEPT_IDS", "").split(",")))


def _extension(case: schemathesis.Case, name: str) -> list[Any]:
    return case.operation.definition.raw.get(name) or []


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


def _order(container: Any, earlier: str, later: str) -> None:
    if not isinstance(container, dict):
        return
    a, b = container.get(earlier), container.get(later)
    if not (isinstance(a, str) and isinstance(b, str)):
        return
    try:
        low, high = sorted((parse_instant(a), parse_instant(b)))
    except ValueError:
        return
    if low == high:
        high += 1_000_000
    container[earlier], container[later] = iso(low), iso(high)


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    for earlier, later in _extension(case, "x-instant-order"):
        _order(case.query, earlier, later)
        for obj in list(_objects(case.body)):
            _order(obj, earlier, later)
    return case


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    if case.method.upper() != "DELETE":
        return True
    values = (case.path_parameters or {}).values()
    return not any(isinstance(value, str) and value in _KEPT_IDS for value in values)


def _matches(field: str, patterns: list[str]) -> bool:
    return any(
        re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), field)
        for pattern in patterns
    )


@schemathesis.hook
def filter_failure(
    context: schemathesis.HookContext,
    failure: Any,
    case: schemathesis.Case,
    response: Any,
) -> bool:
    """Keep every failure except a valid request refused because of what is stored."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 400:
        return True
    try:
        field = json.loads(response.content)["error"]["field"]
    except (ValueError, KeyError, TypeError):
        return True
    patterns = _extension(case, "x-state-dependent-fields")
    return not (isinstance(field, str) and _matches(field, patterns))
