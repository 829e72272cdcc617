"""api/errors.py is the one place where exceptions become HTTP: each engine error class gets its
status and code, HTTP errors keep theirs, and anything unexpected is a 500 that leaks nothing."""

from __future__ import annotations

import inspect
import logging
from importlib import resources

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from api import errors as api_errors
from api.ingest_path import IngestionApp
from engine import errors

EXPECTED = [
    (errors.InvalidInput, 400, "validation_error"),
    (errors.MalformedJSON, 400, "invalid_json"),
    (errors.BatchTooLarge, 400, "batch_too_large"),
    (errors.PayloadTooLarge, 413, "payload_too_large"),
    (errors.InvalidApiKey, 401, "invalid_api_key"),
    (errors.Forbidden, 403, "forbidden"),
    (errors.NotFound, 404, "not_found"),
    (errors.StorageError, 503, "storage_error"),
    (errors.StorageFull, 507, "storage_full"),
    (errors.EngineClosed, 503, "engine_closed"),
    (errors.WritesStopped, 503, "storage_unavailable"),
]
# Abstract groupings that nothing raises directly.
ABSTRACT = {errors.SignalpostError, errors.AuthError}


def _client(app) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def _app(exc: BaseException) -> Starlette:
    async def boom(request):
        raise exc

    async def ok(request):
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/boom", boom, methods=["GET", "POST"]), Route("/ok", ok)],
        exception_handlers=api_errors.EXCEPTION_HANDLERS,
    )


def _error(response: httpx.Response) -> dict:
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message", "docs"} <= set(body["error"]) <= {"code", "message", "docs", "field"}
    return body["error"]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def test_every_concrete_engine_error_class_is_covered():
    classes = {
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.SignalpostError)
    }
    assert classes - ABSTRACT == {cls for cls, _, _ in EXPECTED}


@pytest.mark.parametrize(
    ("cls", "status", "code"), EXPECTED, ids=lambda v: getattr(v, "__name__", v)
)
def test_status_of_each_engine_error(cls, status, code):
    exc = cls("something happened")
    assert api_errors.status_of(exc) == status
    assert exc.code == code
    got_status, body = api_errors.render(exc, "GET", "/x")
    assert got_status == status
    assert msgspec.json.decode(body) == {
        "error": {"code": code, "message": "something happened", "docs": f"/docs/errors#{code}"}
    }


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("cls", "status", "code"), EXPECTED, ids=lambda v: getattr(v, "__name__", v)
)
async def test_engine_errors_raised_in_a_handler_become_their_status(cls, status, code):
    async with _client(_app(cls("a precise message", field="events[3].event"))) as c:
        r = await c.get("/boom")
    assert r.status_code == status
    assert _error(r) == {
        "code": code,
        "message": "a precise message",
        "docs": f"/docs/errors#{code}",
        "field": "events[3].event",
    }


def test_field_is_left_out_when_there_is_none():
    _, body = api_errors.render(errors.InvalidInput("bad"), "POST", "/v1/events")
    assert "field" not in msgspec.json.decode(body)["error"]


def test_abstract_engine_errors_are_internal():
    # The root class carries no status of its own: answered as an internal error, but with its
    # own (deliberately written) message since it is one of ours.
    status, body = api_errors.render(errors.SignalpostError("x"), "GET", "/")
    assert status == 500
    assert msgspec.json.decode(body)["error"]["code"] == "internal_error"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (404, "not_found"),
        (405, "method_not_allowed"),
        (413, "payload_too_large"),
        (418, "http_error"),
    ],
)
def test_http_exceptions_keep_their_status(status, code):
    got, body = api_errors.render(HTTPException(status, "detail text"), "GET", "/")
    assert got == status
    assert msgspec.json.decode(body)["error"] == {
        "code": code,
        "message": "detail text",
        "docs": f"/docs/errors#{code}",
    }


@pytest.mark.anyio
async def test_routing_errors_use_the_error_body():
    async with _client(_app(RuntimeError())) as c:
        r = await c.get("/nowhere")
        assert r.status_code == 404
        assert _error(r)["code"] == "not_found"
        r = await c.delete("/ok")
        assert r.status_code == 405
        assert _error(r)["code"] == "method_not_allowed"


@pytest.mark.anyio
async def test_405_keeps_the_allow_header():
    async with _client(_app(RuntimeError())) as c:
        r = await c.delete("/ok")
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("secret detail"),
        KeyError("secret detail"),
        ValueError("secret detail"),
        ZeroDivisionError("secret detail"),
        OSError(5, "secret detail", "/var/lib/secret-path"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_unexpected_exception_is_500_without_internals(exc, caplog):
    caplog.set_level(logging.ERROR, logger="signalpost.api")
    async with _client(_app(exc)) as c:
        r = await c.get("/boom", headers={"x-request-id": "req-42"})
    assert r.status_code == 500
    error = _error(r)
    assert error == {
        "code": "internal_error",
        "message": "Internal error. Retry with exponential backoff.",
        "docs": "/docs/errors#internal_error",
    }
    for leak in ("secret", "Traceback", type(exc).__name__, "/var/lib", "boom.py", __file__):
        assert leak not in r.text
    # ... but the log has everything, with the request id.
    (record,) = [r for r in caplog.records if r.name == "signalpost.api"]
    assert "req-42" in record.getMessage()
    assert "/boom" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is exc


@pytest.mark.anyio
async def test_storage_errors_are_logged_but_their_answer_is_the_engine_message(caplog):
    caplog.set_level(logging.ERROR, logger="signalpost.api")
    async with _client(_app(errors.StorageFull("The store reached its limit."))) as c:
        r = await c.post("/boom")
    assert r.status_code == 507
    assert _error(r)["message"] == "The store reached its limit."
    assert any("The store reached its limit." in rec.getMessage() for rec in caplog.records)


@pytest.mark.anyio
async def test_the_ingestion_hot_path_renders_errors_the_same_way(caplog):
    """The plain-ASGI hot path bypasses Starlette's handlers but must answer like them."""

    class _State:
        config = type("C", (), {"max_body_bytes": 1024})()

        class engine:  # stands in for an Engine
            @staticmethod
            def authorize(key, kind):
                if key != "good":
                    raise errors.InvalidApiKey("The API key is invalid or revoked.")
                return type("K", (), {"public": False, "tenant": None})(), None

    async def secret_failure(*_):  # (state, key, body, ...) like every hot-path handler
        raise RuntimeError("secret detail")

    async def refuses(*_):
        raise errors.BatchTooLarge("too many", field="events")

    inner = Starlette()
    inner.state.signalpost = _State()
    app = IngestionApp(inner, {"/v1/events": secret_failure, "/v1/events/batch": refuses})
    caplog.set_level(logging.ERROR, logger="signalpost.api")
    async with _client(app) as c:
        r = await c.post("/v1/events", content=b"{}", headers={"authorization": "Bearer good"})
        assert r.status_code == 500
        assert _error(r)["code"] == "internal_error"
        assert "secret" not in r.text
        assert any(rec.exc_info for rec in caplog.records)

        r = await c.post(
            "/v1/events/batch", content=b"{}", headers={"authorization": "Bearer good"}
        )
        assert r.status_code == 400
        assert _error(r) == {
            "code": "batch_too_large",
            "message": "too many",
            "docs": "/docs/errors#batch_too_large",
            "field": "events",
        }

        r = await c.post("/v1/events", content=b"{}", headers={"authorization": "Bearer bad"})
        assert r.status_code == 401 and _error(r)["code"] == "invalid_api_key"

        r = await c.post(
            "/v1/events", content=b"x" * 1025, headers={"authorization": "Bearer good"}
        )
        assert r.status_code == 413 and _error(r)["code"] == "payload_too_large"


def _documented_codes() -> str:
    return resources.files("api").joinpath("static", "errors.md").read_text()


@pytest.mark.parametrize(
    "code",
    sorted(
        {code for _, _, code in EXPECTED} - {"engine_closed"}
        | {"internal_error", "method_not_allowed", "not_found"}
    ),
)
def test_every_code_is_listed_in_the_error_reference(code):
    assert f"`{code}`" in _documented_codes()


def test_engine_closed_is_listed_in_the_error_reference():
    assert "`engine_closed`" in _documented_codes()
