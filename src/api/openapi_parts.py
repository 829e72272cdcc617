"""Pieces of the OpenAPI document shared by its modules: references, operations, parameters."""

from __future__ import annotations

from typing import Any

ERRORS = {
    "400": "Invalid input; `error.field` names the offending field.",
    "401": "Missing, invalid or revoked API key.",
    "403": "A public key on an endpoint that needs a secret key.",
    "404": "No such resource in the key's environment.",
    "413": "Body over 1 MB.",
    "507": "The store is full; nothing was stored.",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def operation(
    summary: str,
    *,
    body: str | None = None,
    body_required: bool = True,
    response: dict[str, Any] | None = None,
    content: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    public: bool = False,
    auth: bool = True,
    errors: tuple[str, ...] = ("400", "401", "403"),
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {}}
    if body:
        op["requestBody"] = {"required": body_required, "content": json_content(ref(body))}
    ok: dict[str, Any] = {"description": "OK"}
    if response:
        ok["content"] = json_content(response)
    if content:
        ok["content"] = content
    op["responses"]["200"] = ok
    for code in errors:
        op["responses"][code] = {
            "description": ERRORS[code],
            "content": json_content(ref("ErrorBody")),
        }
    if params:
        op["parameters"] = params
    if not auth:
        op["security"] = []
    elif public:
        op["description"] = "Accepts secret keys (plx_, sk_) and public keys (pk_)."
    else:
        op["description"] = "Secret keys only (plx_, sk_); a public key answers 403."
    return op


def query(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


def path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }
