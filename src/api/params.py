"""Query parameters declared once: each one reads and checks itself from a request and writes
its own OpenAPI parameter, so the document states exactly the checks the endpoint makes."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from starlette.requests import Request

from engine.errors import InvalidInput
from engine.timeutil import parse_instant

_INTEGER = re.compile(r"-?[0-9]+")
# Longer than any 64-bit integer with its sign; bounds stay far below it.
_MAX_DIGITS = 20
_REQUIRED: Any = object()

# What `parse_instant` reads that JSON Schema can name: a full date or an RFC 3339 date-time.
INSTANT_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]
}


class QueryParam(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str
    required: bool = False

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}

    def doc(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": "query",
            "required": self.required,
            "description": self.description,
            "schema": self.schema(),
        }

    def raw(self, request: Request) -> str | None:
        return request.query_params.get(self.name)

    def fail(self, message: str) -> InvalidInput:
        return InvalidInput(message, field=self.name)


class IntParam(QueryParam, frozen=True, kw_only=True):
    default: int
    low: int
    high: int

    def schema(self) -> dict[str, Any]:
        return {
            "type": "integer",
            "minimum": self.low,
            "maximum": self.high,
            "default": self.default,
        }

    def read(self, request: Request) -> int:
        raw = self.raw(request)
        if raw is None:
            return self.default
        # Plain ASCII digits only: int() would also take " 5", "+5", "1_0" and other scripts;
        # and few of them, as int() refuses more than 4300 digits.
        if (
            len(raw) > _MAX_DIGITS
            or not _INTEGER.fullmatch(raw)
            or not self.low <= int(raw) <= self.high
        ):
            raise self.fail(f"'{self.name}' must be an integer from {self.low} to {self.high}.")
        return int(raw)


class ChoiceParam(QueryParam, frozen=True, kw_only=True):
    choices: tuple[str, ...]

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices)}

    def read(self, request: Request) -> str | None:
        raw = self.raw(request)
        if raw is None:
            return None
        if raw not in self.choices:
            raise self.fail(f"'{self.name}' is one of {', '.join(self.choices)}.")
        return raw


class BoolParam(QueryParam, frozen=True, kw_only=True):
    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}

    def read(self, request: Request) -> bool | None:
        raw = self.raw(request)
        if raw is None:
            return None
        if raw not in ("true", "false"):
            raise self.fail(f"'{self.name}' must be true or false.")
        return raw == "true"


class InstantParam(QueryParam, frozen=True, kw_only=True):
    def schema(self) -> dict[str, Any]:
        return dict(INSTANT_SCHEMA)

    def read(self, request: Request, default: Any = _REQUIRED) -> Any:
        """Microseconds since the epoch (UTC unless the value says otherwise); `default` when
        absent, which leaves a parameter without one required."""
        raw = self.raw(request)
        if raw is None:
            if default is _REQUIRED:
                raise self.fail(f"'{self.name}' is required (ISO 8601).")
            return default
        try:
            return parse_instant(raw)
        except ValueError:
            raise self.fail(f"'{self.name}' must be an ISO 8601 date or date-time.") from None


class TextParam(QueryParam, frozen=True, kw_only=True):
    min_length: int = 1
    max_length: int = 200
    pattern: str | None = None

    def schema(self) -> dict[str, Any]:
        schema = {"type": "string", "minLength": self.min_length, "maxLength": self.max_length}
        return schema if self.pattern is None else {**schema, "pattern": self.pattern}

    def read(self, request: Request) -> str | None:
        raw = self.raw(request)
        if raw is None:
            return None
        if not self.min_length <= len(raw) <= self.max_length:
            raise self.fail(
                f"'{self.name}' is {self.min_length} to {self.max_length} characters long."
            )
        if self.pattern is not None and not re.search(self.pattern, raw):
            raise self.fail(f"'{self.name}' does not match {self.pattern}.")
        return raw


def limit(default: int, high: int, what: str = "") -> IntParam:
    return IntParam(
        name="limit",
        description=f"{what}1 to {high}, default {default}.",
        default=default,
        low=1,
        high=high,
    )


OFFSET = IntParam(name="offset", description="Default 0.", default=0, low=0, high=1_000_000)


def docs(*params: QueryParam) -> list[dict[str, Any]]:
    return [p.doc() for p in params]
