"""Decoding of incoming JSON into Structs, with msgspec errors turned into precise fields."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from .errors import InvalidInput, MalformedJSON

T = TypeVar("T")

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`")


def field_of(error: msgspec.ValidationError) -> tuple[str, str | None]:
    """Split a msgspec message into (message, field path like `events[3].user_id`)."""
    text = str(error)
    path = ""
    match = _AT.search(text)
    if match:
        path = match.group("path")
        text = text[: match.start()]
    named = _MISSING.match(text) or _UNKNOWN.match(text)
    if named:
        path = f"{path}.{named.group('name')}"
    path = path.lstrip(".")
    return text, (path or None)


def decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        message, field = field_of(exc)
        raise InvalidInput(_humane(message, field), field=field) from None
    except msgspec.DecodeError as exc:
        raise MalformedJSON(f"The request body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise MalformedJSON("The request body is not valid UTF-8.") from None
    except RecursionError:
        raise MalformedJSON("The request body is nested too deeply.") from None


def _humane(message: str, field: str | None) -> str:
    if field and message.startswith("Object missing required field"):
        return f"'{field}' is required."
    if field:
        return f"'{field}': {message}."
    return f"{message}."


json_encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    return json_encoder.encode(value)
