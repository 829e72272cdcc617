"""codec: decoding errors name the exact field, integral floats are taken for integer fields,
and the walk over free-form JSON takes any nesting the decoder lets through."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import httpx
import msgspec
import pytest

from api import ServerConfig, create_app
from engine import Engine, codec, rules
from engine.errors import InvalidInput, MalformedJSON

# Deeper than the interpreter's recursion limit, so a recursive walk fails on it.
DEEP = 5000


def _nested_lists(depth: int, inner: Any = None) -> Any:
    value: Any = [] if inner is None else [inner]
    for _ in range(depth - 1):
        value = [value]
    return value


def _nested_dicts(depth: int, inner: Any) -> Any:
    value = inner
    for _ in range(depth):
        value = {"k": value}
    return value


# -- number_out_of_range ------------------------------------------------------------------


def test_number_out_of_range_flat_values():
    low, high = codec.NUMBER_RANGE
    assert not codec.number_out_of_range({"a": [low, high, 1.5, True, None, "x"]})
    assert codec.number_out_of_range([high + 1])
    assert codec.number_out_of_range({"a": {"b": low - 1}})
    assert codec.number_out_of_range(1e300)
    assert not codec.number_out_of_range(True)


@pytest.mark.parametrize("nest", [_nested_lists, _nested_dicts])
def test_number_out_of_range_takes_any_depth(nest):
    assert not codec.number_out_of_range(nest(DEEP, 1))
    assert codec.number_out_of_range(nest(DEEP, 2**64))
    assert codec.number_out_of_range([nest(DEEP, 0), {"x": [nest(DEEP, -(2**63) - 1)]}])


def test_deep_rule_conditions_are_refused_with_their_field():
    tree: Any = {"field": "event.type", "operator": "equals", "value": "login"}
    for _ in range(DEEP):
        tree = {"operator": "AND", "rules": [tree]}
    with pytest.raises(InvalidInput) as info:
        rules.validate(tree)
    assert info.value.field == "conditions" + ".rules[0]" * rules.MAX_DEPTH


# -- integral floats ----------------------------------------------------------------------


class Window(msgspec.Struct, tag="w", forbid_unknown_fields=True):
    days: int


class Span(msgspec.Struct, tag="s", forbid_unknown_fields=True):
    hours: int
    ratio: float = 0.5


class Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    a: int = 0
    b: str = ""
    limit: Annotated[int, msgspec.Meta(ge=1, le=10)] | None = None
    level: Literal[1, 2, 3] = 1
    counts: list[int] = []
    table: dict[str, int] = {}
    pair: tuple[int, str] = (0, "")
    window: Window | Span | None = None
    windows: list[Window | Span] = []
    free: dict[str, Any] = {}
    ratio: float = 0.0


class CountingDecoder:
    """A decoder that counts its passes over a body."""

    def __init__(self, type_: Any) -> None:
        self.inner = msgspec.json.Decoder(type_)
        self.type = type_
        self.calls = 0

    def decode(self, body: bytes) -> Any:
        self.calls += 1
        return self.inner.decode(body)


def _decode(body: bytes) -> Body:
    return codec.decode(msgspec.json.Decoder(Body), body)


def _field(body: bytes) -> str | None:
    with pytest.raises(InvalidInput) as info:
        _decode(body)
    return info.value.field


def test_integral_floats_are_taken_for_integer_fields():
    got = _decode(
        b'{"a": 4.0, "limit": 3.0, "level": 2.0, "counts": [1.0, 2, 3.0],'
        b' "table": {"x": 5.0}, "pair": [7.0, "p"], "window": {"type": "s", "hours": 2.0},'
        b' "windows": [{"type": "w", "days": 1.0}, {"type": "s", "hours": 3.0, "ratio": 2.0}]}'
    )
    assert got.a == 4 and type(got.a) is int
    assert got.limit == 3 and got.level == 2
    assert got.counts == [1, 2, 3] and all(type(n) is int for n in got.counts)
    assert got.table == {"x": 5} and type(got.table["x"]) is int
    assert got.pair == (7, "p") and type(got.pair[0]) is int
    assert got.window == Span(hours=2)
    assert got.windows == [Window(days=1), Span(hours=3, ratio=2.0)]


def test_floats_elsewhere_stay_floats():
    got = _decode(b'{"a": 4.0, "free": {"n": 4.0, "l": [1.0]}, "ratio": 3.0}')
    assert got.a == 4
    assert got.free == {"n": 4.0, "l": [1.0]} and type(got.free["n"]) is float
    assert type(got.ratio) is float


def test_non_integral_float_is_blamed():
    assert _field(b'{"a": 4.5}') == "a"
    assert _field(b'{"a": 4.0, "counts": [1.0, 2.5]}') == "counts[1]"


def test_a_later_error_after_the_fix_is_the_one_reported():
    assert _field(b'{"a": 4.0, "b": 5}') == "b"
    assert _field(b'{"a": 4.0, "counts": [1.0, "x"]}') == "counts[1]"
    assert _field(b'{"a": 4.0, "limit": 11.0}') == "limit"
    assert _field(b'{"a": 4.0, "unknown": 1}') == "unknown"
    assert _field(b'{"a": 4.0, "window": {"type": "w", "days": 1.0, "hours": 2}}') == (
        "window.hours"
    )


def test_many_integral_floats_take_one_extra_pass():
    decoder = CountingDecoder(Body)
    counts = ", ".join(["1.0"] * 5000).encode()
    got = codec.decode(decoder, b'{"counts": [' + counts + b"]}")
    assert got.counts == [1] * 5000
    assert decoder.calls == 2
    decoder.calls = 0
    with pytest.raises(InvalidInput) as info:
        codec.decode(decoder, b'{"counts": [' + counts + b', 2.5, "x"]}')
    assert info.value.field == "counts[5000]"
    assert decoder.calls == 2


def test_other_errors_are_reported_as_before():
    assert _field(b'{"b": 5}') == "b"
    assert _field(b'{"a": "x", "counts": [1.0]}') == "a"
    # As for any other value, an error met before the end of a truncated body is the one named.
    assert _field(b'{"a": 4.0') == "a"
    assert _field(b'{"a": 4.5, "b": 1') == "a"
    with pytest.raises(MalformedJSON):
        _decode(b'{"a": 4.0, "free": {"x": ' + b"[" * DEEP + b"]" * DEEP + b"}}")


# -- through HTTP -------------------------------------------------------------------------


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def app_env(tmp_path):
    engine = Engine.open(tmp_path / "data")
    ws = engine.create_workspace("codec", "enterprise")
    yield ws, create_app(ServerConfig(), engine=engine)
    engine.close()


def _client(app) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def _rule_body(depth: int) -> bytes:
    leaf = b'{"field": "event.type", "operator": "equals", "value": "login"}'
    head = b'{"operator": "AND", "rules": ['
    conditions = head * depth + leaf + b"]}" * depth
    return b'{"name": "deep", "action": {"verdict": "block"}, "conditions": ' + conditions + b"}"


@pytest.mark.anyio
@pytest.mark.parametrize("depth", [450, 900, DEEP])
async def test_deeply_nested_rule_conditions_are_a_400(app_env, depth):
    ws, app = app_env
    headers = {"Authorization": f"Bearer {ws.keys.sk_live}", "Content-Type": "application/json"}
    async with _client(app) as c:
        r = await c.post("/v1/rules", content=_rule_body(depth), headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] in ("validation_error", "invalid_json")


@pytest.mark.anyio
@pytest.mark.parametrize("depth", [450, 900, DEEP])
async def test_deeply_nested_traits_are_never_a_500(app_env, depth):
    ws, app = app_env
    headers = {"Authorization": f"Bearer {ws.keys.sk_live}", "Content-Type": "application/json"}
    traits = b"[" * depth + b"1" + b"]" * depth
    body = b'{"user_id": "u", "traits": {"t": ' + traits + b"}}"
    async with _client(app) as c:
        r = await c.post("/v1/identify", content=body, headers=headers)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.json()["error"]["code"] in ("validation_error", "invalid_json")


@pytest.mark.anyio
async def test_integral_float_and_a_later_error_through_http(app_env):
    ws, app = app_env
    headers = {"Authorization": f"Bearer {ws.keys.sk_live}", "Content-Type": "application/json"}
    body = b'{"name": "r", "priority": 4.0, "status": "nope", "action": {"verdict": "block"},'
    body += b' "conditions": {"field": "event.type", "operator": "equals", "value": "x"}}'
    async with _client(app) as c:
        r = await c.post("/v1/rules", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == "status"
