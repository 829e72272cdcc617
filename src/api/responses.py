"""JSON answers, shared by the endpoints (query parameters are read by api.params)."""

from __future__ import annotations

from typing import NamedTuple

import msgspec
from starlette.responses import Response

_encoder = msgspec.json.Encoder()


def json_response(value: object, status: int = 200) -> Response:
    return Response(_encoder.encode(value), status_code=status, media_type="application/json")


class Reply(NamedTuple):
    """A hot-path answer: the JSON body and any headers beyond the usual ones."""

    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def response(self) -> Response:
        answer = Response(self.body, media_type="application/json")
        for name, value in self.headers:
            answer.headers.append(name.decode(), value.decode())
        return answer
