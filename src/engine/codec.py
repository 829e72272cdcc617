"""Decoding of incoming JSON into Structs, with msgspec errors turned into precise fields."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from .errors import InvalidInput, MalformedJSON

T = TypeVar("T")

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_STEP = re.compile(r"\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)|\[(?P<index>[0-9]+)\]")
_INT_GOT_FLOAT = re.compile(r"^Expected `int[^`]*`, got `float`")
# A body whose integer fields are written as 4.0 is decoded again at most this often.
_MAX_INTEGRAL_FIXES = 64
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`")


# The numbers a msgpack record can hold. Free-form JSON the engine stores (traits, rule
# conditions) keeps every number, int or float, within it, so the API document states one range.
NUMBER_RANGE = (-(2**63), 2**64 - 1)


def number_out_of_range(value: Any) -> bool:
    """Whether a decoded JSON value holds a number outside NUMBER_RANGE, at any depth."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return not NUMBER_RANGE[0] <= value <= NUMBER_RANGE[1]
    if isinstance(value, dict):
        return any(number_out_of_range(v) for v in value.values())
    if isinstance(value, list):
        return any(number_out_of_range(v) for v in value)
    return False


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
        fixed = _integral_floats_as_ints(decoder, body, exc)
        if fixed is not None:
            return fixed
        message, field = field_of(exc)
        raise InvalidInput(_humane(message, field), field=field) from None
    except msgspec.DecodeError as exc:
        raise MalformedJSON(f"The request body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise MalformedJSON("The request body is not valid UTF-8.") from None
    except RecursionError:
        raise MalformedJSON("The request body is nested too deeply.") from None


def _integral_floats_as_ints(
    decoder: msgspec.json.Decoder[T], body: bytes, error: msgspec.ValidationError
) -> T | None:
    """JSON has one number type: 4.0 is the integer 4 to a JSON Schema validator, so an integer
    field takes it. The decoder refuses it; only then is the body read as plain JSON, each
    integral float the decoder names turned into an int, and the body decoded again. None when
    the error is another one, or the value is not an integral float."""
    if not _INT_GOT_FLOAT.match(str(error)):
        return None
    try:
        doc: Any = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    for _ in range(_MAX_INTEGRAL_FIXES):
        match = _AT.search(str(error))
        if not _INT_GOT_FLOAT.match(str(error)) or match is None:
            return None
        if not _replace_integral(doc, match.group("path")):
            return None
        try:
            return decoder.decode(msgspec.json.encode(doc))
        except msgspec.ValidationError as again:
            error = again
    return None


def _replace_integral(doc: Any, path: str) -> bool:
    """Turn the integral float at `path` (msgspec's `.name[3]` form) into an int, in place."""
    steps = [(m.group("name"), m.group("index")) for m in _STEP.finditer(path)]
    if "".join(m.group(0) for m in _STEP.finditer(path)) != path or not steps:
        return False
    parent: Any = None
    key: Any = None
    node = doc
    for name, index in steps:
        parent, key = node, (name if name is not None else int(index))
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return False
    if not isinstance(node, float) or not node.is_integer():
        return False
    parent[key] = int(node)
    return True


def _humane(message: str, field: str | None) -> str:
    if field and message.startswith("Object missing required field"):
        return f"'{field}' is required."
    if field:
        return f"'{field}': {message}."
    return f"{message}."


json_encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    return json_encoder.encode(value)
