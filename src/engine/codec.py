"""Decoding of incoming JSON into Structs, with msgspec errors turned into precise fields."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

from .errors import InvalidInput, MalformedJSON

T = TypeVar("T")

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_STEP = re.compile(r"\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)|\[(?P<index>[0-9]+)\]")
_INT_GOT_FLOAT = re.compile(r"^Expected `int[^`]*`, got `float`")
_UNFIXED: Any = object()
_TOO_DEEP = "The request body is nested too deeply."
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`")


# The numbers a msgpack record can hold. Free-form JSON the engine stores (traits, rule
# conditions) keeps every number, int or float, within it, so the API document states one range.
NUMBER_RANGE = (-(2**63), 2**64 - 1)


def number_out_of_range(value: Any) -> bool:
    """Whether a decoded JSON value holds a number outside NUMBER_RANGE, at any depth. A walk
    with its own stack: any nesting the decoder lets through is taken, before any depth check."""
    low, high = NUMBER_RANGE
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, bool):
            continue
        if isinstance(node, int | float):
            if not low <= node <= high:
                return True
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
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
        error = exc
    except msgspec.DecodeError as exc:
        raise MalformedJSON(f"The request body is not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise MalformedJSON("The request body is not valid UTF-8.") from None
    except RecursionError:
        raise MalformedJSON(_TOO_DEEP) from None
    if _INT_GOT_FLOAT.match(str(error)):
        try:
            fixed = _integral_floats_as_ints(decoder, body, error)
        except msgspec.ValidationError as again:
            error = again
        else:
            if fixed is not _UNFIXED:
                return fixed
    message, field = field_of(error)
    raise InvalidInput(_humane(message, field), field=field) from None


def _integral_floats_as_ints(
    decoder: msgspec.json.Decoder[T], body: bytes, error: msgspec.ValidationError
) -> Any:
    """JSON has one number type: 4.0 is the integer 4 to a JSON Schema validator, so an integer
    field takes it. The decoder refuses it; only then is the body read as plain JSON, every
    integral float where the decoder's type wants an integer turned into an int in one walk, and
    the body decoded once more: its result, or its ValidationError, which names the field of the
    body's first remaining error. _UNFIXED when no float could be turned into an int."""
    try:
        doc: Any = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return _UNFIXED
    except RecursionError:
        raise MalformedJSON(_TOO_DEEP) from None
    try:
        expected = mi.type_info(decoder.type)
    except (TypeError, ValueError):
        expected = mi.AnyType()
    changed = _ints_where_expected(doc, expected)
    match = _AT.search(str(error))
    # The walk leaves out what it cannot place (an untagged union of objects); the float the
    # decoder named is turned by its path.
    if match is not None and _replace_integral(doc, match.group("path")):
        changed = True
    if not changed:
        return _UNFIXED
    try:
        return decoder.decode(msgspec.json.encode(doc))
    except RecursionError:
        raise MalformedJSON(_TOO_DEEP) from None


def _ints_where_expected(doc: Any, expected: mi.Type) -> bool:
    """Turn, in place, each integral float of `doc` where `expected` takes an int but no float
    into that int; whether any was. One walk with its own stack, over the typed parts only."""
    changed = False
    stack = [(doc, expected)]
    while stack:
        node, kind = stack.pop()
        for key, child_kind in _members(node, kind):
            child = node[key]
            if isinstance(child, float):
                if child.is_integer() and _wants_int(child_kind):
                    node[key] = int(child)
                    changed = True
            elif isinstance(child, dict | list):
                stack.append((child, child_kind))
    return changed


def _wants_int(kind: mi.Type) -> bool:
    """Whether the decoder takes an int for `kind` but refuses a float."""
    if isinstance(kind, mi.IntType):
        return True
    if isinstance(kind, mi.LiteralType):
        return any(type(v) is int for v in kind.values)
    if isinstance(kind, mi.EnumType):
        return issubclass(kind.cls, int)
    if isinstance(kind, mi.UnionType):
        if any(isinstance(k, mi.FloatType | mi.AnyType | mi.DecimalType) for k in kind.types):
            return False
        return any(_wants_int(k) for k in kind.types)
    return False


_OBJECTS = (mi.StructType, mi.TypedDictType, mi.DataclassType, mi.DictType)
_ARRAYS = (
    mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType, mi.TupleType, mi.NamedTupleType,
)  # fmt: skip


def _members(node: Any, kind: mi.Type) -> Iterator[tuple[Any, mi.Type]]:
    """(key or index, expected type) of each member of a JSON object or array."""
    kind = _placed(node, kind)
    if isinstance(node, dict):
        if isinstance(kind, mi.DictType):
            for key in node:
                yield key, kind.value_type
        elif isinstance(kind, mi.StructType | mi.TypedDictType | mi.DataclassType):
            for f in kind.fields:
                if f.encode_name in node:
                    yield f.encode_name, f.type
    elif isinstance(node, list):
        if isinstance(kind, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
            for i in range(len(node)):
                yield i, kind.item_type
        elif isinstance(kind, mi.TupleType | mi.NamedTupleType):
            types = (
                kind.item_types if isinstance(kind, mi.TupleType) else [f.type for f in kind.fields]
            )
            yield from zip(range(len(node)), types, strict=False)
        elif isinstance(kind, mi.StructType) and kind.array_like:
            skip = 0 if kind.tag is None else 1
            for i, f in enumerate(kind.fields[: max(len(node) - skip, 0)]):
                yield i + skip, f.type


def _placed(node: Any, kind: mi.Type) -> mi.Type | None:
    """The one member of a union that `node` (an object or array) decodes as, if it is known."""
    if not isinstance(kind, mi.UnionType):
        return kind
    if isinstance(node, dict):
        fits = [
            k for k in kind.types
            if isinstance(k, _OBJECTS) and not (isinstance(k, mi.StructType) and k.array_like)
        ]  # fmt: skip
    else:
        fits = [
            k for k in kind.types
            if isinstance(k, _ARRAYS) or (isinstance(k, mi.StructType) and k.array_like)
        ]  # fmt: skip
    tagged = [k for k in fits if isinstance(k, mi.StructType) and k.tag is not None]
    if len(fits) > 1 and tagged:
        if isinstance(node, dict):
            fits = [k for k in tagged if k.tag_field in node and node[k.tag_field] == k.tag]
        else:
            fits = [k for k in tagged if node and node[0] == k.tag]
    return fits[0] if len(fits) == 1 else None


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
