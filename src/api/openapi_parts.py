"""Pieces of the OpenAPI document shared by its modules: references, operations, parameters,
links, and the errors every operation can answer."""

from __future__ import annotations

from typing import Any

from .params import QueryParam

ERRORS = {
    "400": "Invalid input; `error.field` names the offending field.",
    "401": "Missing, invalid or revoked API key.",
    "403": "A public key (pk_) on an endpoint that needs a secret key.",
    "404": "No such resource in the key's environment.",
    "413": "Body over the server's limit (1 MB unless configured).",
    "429": "Rate limited; `Retry-After` says when to try again.",
    "503": "Writes are stopped after a failed flush, until the server restarts; nothing was "
    "stored.",
    "507": "The store is full; nothing was stored.",
}
# What every operation that stores something can answer besides its own errors.
WRITE_ERRORS = ("503", "507")
SUCCESS = {"200": "OK", "201": "Created", "202": "Accepted"}
SECRET = [{"secretKey": []}]
PUBLIC = [{"secretKey": []}, {"publicKey": []}]
# Extensions that state what JSON Schema cannot; the contract tests read them. Error fields
# (`*` for any run of characters) whose 400 depends on what is stored: cursors are valid only as
# issued, names must be unique, list references must name a list of the right type, entries
# must be of their list's type.
STATE_FIELDS = "x-state-dependent-fields"
# Pairs of instants (query parameters, or keys of any object of the body) that must increase.
INSTANT_ORDER = "x-instant-order"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link: values of the answer (runtime expressions) as the target's parameters."""
    return {"operationId": operation_id, "parameters": parameters, "description": description}


def operation(
    operation_id: str,
    summary: str,
    *,
    body: str | None = None,
    body_required: bool = True,
    response: dict[str, Any] | None = None,
    content: dict[str, Any] | None = None,
    status: str = "200",
    links: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | tuple[QueryParam, ...] | None = None,
    public: bool = False,
    auth: bool = True,
    errors: tuple[str, ...] = (),
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`errors` lists what the operation adds to the errors every authenticated one can answer
    (401, 429; 403 for a secret-key endpoint; 400 and 413 when it reads a body)."""
    op: dict[str, Any] = {"operationId": operation_id, "summary": summary, "responses": {}}
    if body:
        op["requestBody"] = {"required": body_required, "content": json_content(ref(body))}
    ok: dict[str, Any] = {"description": SUCCESS[status]}
    if response:
        ok["content"] = json_content(response)
    if content:
        ok["content"] = content
    if links:
        ok["links"] = links
    if headers:
        ok["headers"] = headers
    op["responses"][status] = ok
    codes = set(errors)
    if auth:
        codes |= {"401", "429"} | (set() if public else {"403"})
    if body:
        codes |= {"400", "413"}
    for code in sorted(codes):
        op["responses"][code] = {
            "description": ERRORS[code],
            "content": json_content(ref("ErrorBody")),
        }
    if params:
        op["parameters"] = [p.doc() if isinstance(p, QueryParam) else p for p in params]
    if not auth:
        op["security"] = []
    elif public:
        op["security"] = PUBLIC
        op["tags"] = ["public key"]
    else:
        op["security"] = SECRET
        op["tags"] = ["secret key"]
    op.update(extensions or {})
    return op


def path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }
