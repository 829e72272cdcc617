"""Endpoints without authentication (health, the OpenAPI document, the error reference) and the
OpenAPI document checked against the app: structure, references, and every route documented."""

from __future__ import annotations

import re
from typing import Any

import pytest
from _analytics_support import Api, assert_error
from _device_support import COMPONENTS

from api import ServerConfig, create_app

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def doc(stack) -> dict[str, Any]:
    r = stack.api.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def _operations(doc: dict[str, Any]):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield path, method, op


def _refs(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return doc["components"]["schemas"][name]


def test_healthz_needs_no_key_and_ignores_a_bad_one(stack):
    for headers in ({}, {"Authorization": "Bearer plx_live_nope"}, {"Authorization": "junk"}):
        r = stack.api.get("/healthz", headers=headers)
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}


def test_error_reference_needs_no_key(stack):
    r = stack.api.get("/docs/errors")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/markdown")
    for code in ("validation_error", "invalid_json", "batch_too_large", "invalid_api_key"):
        assert f"`{code}`" in r.text


def test_openapi_document_is_structurally_valid_openapi_3_1(doc):
    assert re.fullmatch(r"3\.1\.\d+", doc["openapi"])
    assert isinstance(doc["info"]["title"], str) and doc["info"]["title"]
    assert isinstance(doc["info"]["version"], str) and doc["info"]["version"]
    assert set(doc) <= {
        "openapi",
        "info",
        "jsonSchemaDialect",
        "servers",
        "paths",
        "webhooks",
        "components",
        "security",
        "tags",
        "externalDocs",
    }
    schemes = doc["components"]["securitySchemes"]
    for scheme in schemes.values():
        assert scheme["type"] in {"apiKey", "http", "mutualTLS", "oauth2", "openIdConnect"}
        if scheme["type"] == "http":
            assert scheme["scheme"].lower() == "bearer"
    for requirement in doc.get("security", []):
        assert set(requirement) <= set(schemes)
    for name in doc["components"]["schemas"]:
        assert re.fullmatch(r"[a-zA-Z0-9._-]+", name), name

    operation_ids = []
    for path, method, op in _operations(doc):
        assert path.startswith("/"), path
        assert op["responses"], (path, method)
        for status, response in op["responses"].items():
            assert re.fullmatch(r"[1-5](\d\d|XX)|default", status), (path, method, status)
            assert isinstance(response["description"], str), (path, method, status)
            for media in response.get("content", {}).values():
                assert "schema" in media
        for requirement in op.get("security", []):
            assert set(requirement) <= set(schemes)
        declared = set()
        for param in op.get("parameters", []):
            assert param["in"] in {"query", "header", "path", "cookie"}, param
            assert isinstance(param["name"], str) and param["name"], param
            assert "schema" in param or "content" in param, param
            if param["in"] == "path":
                assert param["required"] is True, param
                declared.add(param["name"])
        assert declared == set(re.findall(r"{([^}]+)}", path)), (path, method)
        if "requestBody" in op:
            assert op["requestBody"]["content"], (path, method)
        if "operationId" in op:
            operation_ids.append(op["operationId"])
    assert len(operation_ids) == len(set(operation_ids))

    refs = list(_refs(doc))
    assert refs, "the schemas are expected to be referenced"
    for ref in refs:
        _resolve(doc, ref)


def test_openapi_schemas_match_what_the_server_answers(stack, doc):
    api, keys = stack.api, stack.ws.keys

    def fields(name: str) -> tuple[set[str], set[str]]:
        schema = _schema(doc, name)
        assert schema["type"] == "object"
        return set(schema.get("required", [])), set(schema["properties"])

    required, known = fields("EventIn")
    assert required == {"user_id", "event"}
    assert known == {
        "user_id",
        "event",
        "timestamp",
        "properties",
        "insert_id",
        "sent_at",
        "request_id",
    }
    assert fields("BatchIn")[0] == {"events"}
    assert fields("IdentifyIn") == ({"user_id"}, {"user_id", "traits", "set_once", "unset"})

    answer = api.event(keys.plx_live).json()
    assert fields("IngestResult") == (set(answer), set(answer))
    usage = api.usage(keys.sk_live)
    assert fields("Usage") == (set(usage), set(usage))
    identified = api.post("/v1/identify", key=keys.sk_live, json={"user_id": "u"}).json()
    assert fields("IdentifyResult") == (set(identified), set(identified))

    body_required, body_known = fields("ErrorBody")
    assert body_required == body_known == {"error"}
    detail = _resolve(doc, _schema(doc, "ErrorBody")["properties"]["error"]["$ref"])
    assert set(detail["required"]) == {"code", "message", "docs"}
    assert set(detail["properties"]) == {"code", "message", "docs", "field", "retryAfter"}
    error = api.post("/v1/events", key=keys.plx_live, json={"user_id": "u"}).json()["error"]
    assert set(detail["required"]) <= set(error) <= set(detail["properties"])


def test_openapi_operations_reference_the_right_schemas(doc):
    ops = {(path, method): op for path, method, op in _operations(doc)}
    bodies = {
        ("/v1/events", "post"): "EventIn",
        ("/v1/events/batch", "post"): "BatchIn",
        ("/v1/identify", "post"): "IdentifyIn",
    }
    for key, name in bodies.items():
        schema = ops[key]["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{name}"}
    for (path, _method), op in ops.items():
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)
    export = ops[("/v1/export", "get")]
    assert {p["name"] for p in export["parameters"]} == {"from", "to", "format"}
    assert set(export["responses"]["200"]["content"]) == {
        "application/x-ndjson",
        "application/vnd.apache.parquet",
    }
    # The unauthenticated endpoints say so; the rest inherit the bearer requirement.
    open_ops = {key for key, op in ops.items() if op.get("security") == []}
    assert open_ops == {
        ("/healthz", "get"),
        ("/openapi.json", "get"),
        ("/docs/errors", "get"),
        ("/agent.js", "get"),
        ("/demo", "get"),
    }


def test_every_documented_operation_exists_and_asks_for_the_documented_auth(stack, doc):
    for path, method, op in _operations(doc):
        r = stack.api.request(method.upper(), path)
        if op.get("security") == []:
            assert r.status_code == 200, (path, method, r.status_code)
        else:
            assert_error(r, 401, "invalid_api_key")


def _route_methods(app) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for route in app.routes:
        methods = {m.lower() for m in (route.methods or ())} - {"head"}
        out.setdefault(route.path, set()).update(methods)
    return out


def _documented(doc: dict[str, Any]) -> dict[str, set[str]]:
    return {path: set(item) & HTTP_METHODS for path, item in doc["paths"].items()}


def test_every_analytics_and_system_route_is_documented(stack, doc):
    from api import analytics

    documented = _documented(doc)
    expected = {
        "/v1/events": {"post"},
        "/v1/events/batch": {"post"},
        "/v1/identify": {"post"},
        "/v1/usage": {"get"},
        "/v1/export": {"get"},
        "/healthz": {"get"},
        "/openapi.json": {"get"},
        "/docs/errors": {"get"},
    }
    for route in analytics.routes:
        assert route.path in expected
    for path, methods in expected.items():
        assert methods <= _route_methods(stack.app).get(path, set()), path
        assert methods <= documented.get(path, set()), path


def test_every_route_of_the_app_is_in_the_openapi_document(stack, doc):
    documented = _documented(doc)
    missing = {
        f"{method.upper()} {path}"
        for path, methods in _route_methods(stack.app).items()
        for method in methods - documented.get(path, set())
    }
    assert not missing, sorted(missing)


def test_benchmark_baselines_exist_only_when_configured(stack, tmp_path):
    assert_error(stack.api.post("/v1/_baseline/events", json={}), 404, "not_found")
    app = create_app(ServerConfig(benchmark_endpoints=True), engine=stack.engine)
    paths = {route.path for route in app.routes}
    assert {"/v1/_baseline/events", "/v1/_baseline/events/batch"} <= paths
    bench = Api(app)
    try:
        r = bench.post(
            "/v1/_baseline/events", key=stack.ws.keys.plx_live, json={"user_id": "u", "event": "e"}
        )
        assert r.json() == {"accepted": 1, "stored": 0, "deduplicated": 0}
        r = bench.post(
            "/v1/_baseline/events/batch",
            key=stack.ws.keys.plx_live,
            json={"events": [{"user_id": "u", "event": "e"}] * 3},
        )
        assert r.json() == {"accepted": 3, "stored": 0, "deduplicated": 0}
        assert_error(
            bench.post("/v1/_baseline/events", key=stack.ws.keys.plx_live, json={}),
            400,
            "validation_error",
            field="user_id",
        )
        # The identification baseline prepares the request as the real endpoint does.
        r = bench.post(
            "/v1/_baseline/agent/identify",
            key=stack.ws.keys.pk_live,
            json={"components": COMPONENTS},
        )
        assert r.status_code == 200, r.text
        assert r.json()["visitorFound"] is True  # the device reported enough to be matched
        listed = stack.api.get("/v1/events", key=stack.ws.keys.sk_live)
        assert listed.json()["data"] == []
    finally:
        bench.close()
    assert stack.api.export(stack.ws.keys.sk_live) == []
