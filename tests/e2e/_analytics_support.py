"""Helpers of the analytics e2e tests: a synchronous client over the ASGI app, the error-body
check, NDJSON parsing and reading the keys `signalpost serve` prints. Used by conftest.py and the
test modules (`from _analytics_support import ...`)."""

from __future__ import annotations

import contextlib
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import anyio.from_thread
import httpx

from engine import Engine
from engine.workspaces import WorkspaceWithKeys

MISSING = object()


class Api:
    """A synchronous face over `httpx.AsyncClient(transport=ASGITransport(app))`.

    The requests run on an asyncio loop in a helper thread (the engine's writer resolves asyncio
    futures on the loop that submitted them), so tests, hypothesis included, stay plain functions.
    Application exceptions become 500 answers, as a real server would send.
    """

    def __init__(self, app: Any) -> None:
        self._stack = contextlib.ExitStack()
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal("asyncio"))
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver",
            timeout=30,
        )

    def close(self) -> None:
        self._portal.call(self.client.aclose)
        self._stack.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(headers or {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        call = functools.partial(self.client.request, method, path, headers=headers, **kwargs)
        return self._portal.call(call)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    # -- the analytics API in one call each ---------------------------------------------------

    def event(self, key: str, **fields: Any) -> httpx.Response:
        return self.post("/v1/events", key=key, json={"user_id": "u1", "event": "e", **fields})

    def batch(self, key: str, events: list[dict[str, Any]]) -> httpx.Response:
        return self.post("/v1/events/batch", key=key, json={"events": events})

    def export(self, key: str, **params: str) -> list[dict[str, Any]]:
        r = self.get("/v1/export", key=key, params=params)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/x-ndjson")
        return parse_ndjson(r.content)

    def usage(self, key: str) -> dict[str, Any]:
        r = self.get("/v1/usage", key=key)
        assert r.status_code == 200, r.text
        return r.json()


@dataclass
class Stack:
    engine: Engine
    ws: WorkspaceWithKeys
    app: Any
    api: Api


def parse_ndjson(content: bytes) -> list[dict[str, Any]]:
    lines = content.split(b"\n")
    assert lines[-1] == b"", "NDJSON must end with a newline"
    return [json.loads(line) for line in lines[:-1]]


def assert_error(
    r: httpx.Response, status: int, code: str, field: object = MISSING
) -> dict[str, Any]:
    """The one error body: {"error": {"code", "message", "docs"[, "field"]}} and nothing else."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    expected = {"code", "message", "docs"} | ({"field"} if field is not MISSING else set())
    assert set(error) == expected, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    assert error["docs"] == f"/docs/errors#{code}", error
    if field is not MISSING:
        assert error["field"] == field, error
    return error


_KEY_LINE = re.compile(r"^\s+(plx_live|plx_test|sk_live|sk_test|pk_live|pk_test)\s+(\S+)\s*$")
_CREATED = re.compile(r"^Created workspace (ws_[0-9a-f]+) \('default', plan scale\)")


def printed_keys(log: str) -> tuple[str, dict[str, str]]:
    """The workspace id and keys that `signalpost serve` prints on a new store."""
    workspace = None
    keys: dict[str, str] = {}
    for line in log.splitlines():
        if m := _CREATED.match(line):
            workspace = m.group(1)
        elif m := _KEY_LINE.match(line):
            keys[m.group(1)] = m.group(2)
    assert workspace is not None, log
    return workspace, keys
