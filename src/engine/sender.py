"""The HTTP client of the delivery worker: HTTP/1.1 POSTs over asyncio streams, TLS verified,
connections kept alive per origin, and the server-side request forgery guard applied to every
new connection.

A small client of our own rather than a general one: a delivery is one POST with a body we hold
in memory, and only the status and `Retry-After` of the answer matter. Pooled general clients
cost several times more per request here as concurrency grows (they scan every pooled
connection per request), which capped deliveries/s well below what the receiver could take.

Imported only when a worker first has something to send, so opening an engine stays cheap.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import socket
import ssl
import time
from urllib.parse import urlsplit

from .config import WebhookConfig
from .urlguard import Refused, address_allowed

_MAX_ANSWER_BYTES = 64 * 1024  # of a receiver's answer body, which nobody looks at
_KEEPALIVE_S = 30.0
_Origin = tuple[str, str, int]
_Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class _Stale(Exception):
    """A kept-alive connection was closed by the receiver before it answered anything."""


def _retry_after(value: bytes | None) -> float | None:
    if value is None:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _parse_head(head: bytes) -> tuple[bytes, int, dict[bytes, bytes]]:
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    status = int(rest[:3])
    fields = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return version, status, fields


async def _read_chunked(reader: asyncio.StreamReader) -> bool:
    """Read a chunked body; False when it is too long to bother (the connection is dropped)."""
    total = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        total += size
        if total > _MAX_ANSWER_BYTES:
            return False
        await reader.readexactly(size + 2)
        if size == 0:
            return True


@functools.lru_cache(maxsize=1024)
def _target(url: str) -> tuple[_Origin, bytes]:
    """The origin of a URL and the request line and Host header of a POST to it."""
    parts = urlsplit(url)
    scheme, host = parts.scheme, parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    netloc = parts.netloc.rpartition("@")[2]
    return (scheme, host, port), b"POST %s HTTP/1.1\r\nHost: %s\r\n" % (
        target.encode(),
        netloc.encode(),
    )


class Sender:
    """One client for every delivery of a worker."""

    def __init__(self, config: WebhookConfig) -> None:
        self._config = config
        self._context = ssl.create_default_context()
        if config.ca_bundle:
            self._context.load_verify_locations(config.ca_bundle)
        self._idle: dict[_Origin, list[tuple[float, _Stream]]] = {}

    async def post(
        self, url: str, headers: list[tuple[bytes, bytes]], body: bytes, timeout: float
    ) -> tuple[int, float | None]:
        """The answer's status and Retry-After (seconds), within `timeout` in all."""
        origin, first_lines = _target(url)
        scheme, host, port = origin
        head = b"%sContent-Length: %d\r\n%s\r\n" % (
            first_lines,
            len(body),
            b"".join(name + b": " + value + b"\r\n" for name, value in headers),
        )
        async with asyncio.timeout(timeout):
            stream = self._take(origin)
            if stream is not None:
                try:
                    return await self._exchange(origin, stream, head + body, reused=True)
                except _Stale:
                    pass  # closed while idle: once more on a new connection
            stream = await self._connect(scheme, host, port)
            return await self._exchange(origin, stream, head + body, reused=False)

    def _take(self, origin: _Origin) -> _Stream | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            since, stream = idle.pop()
            if now - since < _KEEPALIVE_S and not stream[0].at_eof():
                return stream
            stream[1].close()
        return None

    async def _connect(self, scheme: str, host: str, port: int) -> _Stream:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        refused = [a for a in addresses if not address_allowed(a, self._config)]
        if refused or not addresses:
            raise Refused(f"{host} resolves to a refused address ({', '.join(refused)}).")
        tls = self._context if scheme == "https" else None
        error: OSError | None = None
        # Connect to an address that was checked: a second lookup could answer differently.
        for address in addresses:
            try:
                return await asyncio.open_connection(
                    address, port, ssl=tls, server_hostname=host if tls else None
                )
            except OSError as exc:
                error = exc
        raise error or OSError(f"cannot connect to {host}")

    async def _exchange(
        self, origin: _Origin, stream: _Stream, request: bytes, reused: bool
    ) -> tuple[int, float | None]:
        reader, writer = stream
        keep = False
        try:
            writer.write(request)
            await writer.drain()
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                if reused and not getattr(exc, "partial", b""):
                    raise _Stale from exc
                raise
            version, status, fields = _parse_head(raw)
            while 100 <= status < 200:  # interim answers carry no body
                version, status, fields = _parse_head(await reader.readuntil(b"\r\n\r\n"))
            keep = version == b"HTTP/1.1" and fields.get(b"connection", b"").lower() != b"close"
            if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
                keep = await _read_chunked(reader) and keep
            elif b"content-length" in fields:
                length = int(fields[b"content-length"])
                if length > _MAX_ANSWER_BYTES:
                    keep = False
                else:
                    await reader.readexactly(length)
            else:
                keep = False  # the body runs to the end of the connection
            return status, _retry_after(fields.get(b"retry-after"))
        finally:
            if keep:
                idle = self._idle.setdefault(origin, [])
                idle.append((time.monotonic(), stream))
                del idle[: -self._config.max_in_flight_per_endpoint]
            else:
                writer.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for _, (_, writer) in idle:
                writer.close()
        self._idle.clear()
