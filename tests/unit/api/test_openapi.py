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


def test_each_path_is_one_route_with_exactly_the_documented_methods():
    """A 405's Allow header lists the methods of the route that matched the path."""
    doc = build()
    routes = create_app(ServerConfig()).routes
    assert len({r.path for r in routes}) == len(routes)
    for route in routes:
        documented = {m.upper() for m in doc["paths"][route.path]}
        assert route.methods - {"HEAD"} == documented, route.path


def test_links_name_operations_and_their_parameters():
    doc = build()
    ops = {op["operationId"]: op for item in doc["paths"].values() for op in item.values()}
    for op in ops.values():
        for answer in op["responses"].values():
            for link in answer.get("links", {}).values():
                target = ops[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", [])}
                assert set(link["parameters"]) <= names, link


def test_secret_key_operations_document_the_403_of_a_public_key():
    for item in build()["paths"].values():
        for op in item.values():
            if op.get("security") == [{"secretKey": []}]:
                assert "403" in op["responses"], op["operationId"]
            if "requestBody" in op:
                assert {"400", "413"} <= set(op["responses"]), op["operationId"]
