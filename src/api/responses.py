"""JSON answers, shared by the endpoints (query parameters are read by api.params)."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

_encoder = msgspec.json.Encoder()


def json_response(value: object, status: int = 200) -> Response:
    return Response(_encoder.encode(value), status_code=status, media_type="application/json")
