"""Reading request bodies with a hard size limit, before any decoding."""

from __future__ import annotations

from starlette.requests import Request

from engine.errors import InvalidInput, PayloadTooLarge


async def read_body(request: Request, limit: int, empty: bytes | None = None) -> bytes:
    """The body, at most `limit` bytes; an empty body is refused unless `empty` stands in."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise InvalidInput("Content-Length is not a number.") from None
        if declared > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        if empty is not None:
            return empty
        raise InvalidInput("The request body is empty; send a JSON object.")
    return body
