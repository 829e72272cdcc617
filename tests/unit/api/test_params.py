"""Query parameters check themselves: a bad value is a 400 naming the parameter, never a 500."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from starlette.requests import Request

from api import ServerConfig, create_app
from api.params import OFFSET, limit
from engine import Engine
from engine.errors import InvalidInput

LIMIT = limit(100, 100)


def _request(query: str) -> Request:
    return Request({"type": "http", "query_string": query.encode(), "headers": []})


def test_integers_in_range_are_read():
    assert LIMIT.read(_request("")) == 100
    assert LIMIT.read(_request("limit=7")) == 7
    assert OFFSET.read(_request("offset=0")) == 0
    assert OFFSET.read(_request("offset=" + "0" * 19 + "5")) == 5
    assert OFFSET.read(_request("offset=1000000")) == 1_000_000


@pytest.mark.parametrize(
    "raw",
    ["", "x", " 5", "+5", "1_0", "٣", "0", "101", "-1", "9" * 21, "9" * 4301, "9" * 100_000],
    ids=lambda raw: raw if len(raw) < 10 else f"{raw[0]}x{len(raw)}",
)
def test_bad_integers_are_refused_with_the_parameter(raw):
    with pytest.raises(InvalidInput) as info:
        LIMIT.read(_request("limit=" + quote(raw)))
    assert info.value.field == "limit"
    assert str(info.value) == "'limit' must be an integer from 1 to 100."


@pytest.mark.parametrize(
    "raw", ["0" * 4301, "1" + "0" * 4300, "-" + "1" * 5000], ids=["zeros", "one-e4300", "negative"]
)
def test_overlong_offsets_are_refused_with_the_parameter(raw):
    with pytest.raises(InvalidInput) as info:
        OFFSET.read(_request("offset=" + raw))
    assert info.value.field == "offset"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["limit", "offset"])
async def test_overlong_integers_through_http_are_a_400(tmp_path, name):
    engine = Engine.open(tmp_path / "data")
    try:
        ws = engine.create_workspace("params", "enterprise")
        app = create_app(ServerConfig(), engine=engine)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        headers = {"Authorization": f"Bearer {ws.keys.sk_live}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get(f"/v1/rules?{name}={'9' * 5000}", headers=headers)
    finally:
        engine.close()
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and error["field"] == name
