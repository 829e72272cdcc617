"""The OpenAPI document lists every route the app serves, with every method."""

from __future__ import annotations

import msgspec

from api import ServerConfig, create_app
from api.openapi import build, document


def test_every_route_and_method_is_documented():
    doc = build()
    app = create_app(ServerConfig())
    assert app.routes, "the app has routes"
    for route in app.routes:
        assert route.path in doc["paths"], route.path
        for method in route.methods - {"HEAD"}:
            assert method.lower() in doc["paths"][route.path], (route.path, method)


def test_benchmark_baselines_are_not_routes_unless_enabled():
    paths = {r.path for r in create_app(ServerConfig()).routes}
    assert not any("_baseline" in p for p in paths)
    enabled = {r.path for r in create_app(ServerConfig(benchmark_endpoints=True)).routes}
    assert "/v1/_baseline/events" in enabled


def test_document_is_openapi_31_json_with_resolvable_refs():
    doc = msgspec.json.decode(document())
    assert doc["openapi"] == "3.1.0"
    schemas = doc["components"]["schemas"]
    text = msgspec.json.encode(doc).decode()
    import re

    for name in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert name in schemas, name
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert any(code.startswith("2") for code in op["responses"]), (path, method)
