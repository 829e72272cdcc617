"""The HTTP client of the delivery worker: HTTP/1.1 POSTs over an asyncio protocol, TLS verified,
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


class _Connection(asyncio.Protocol):
    """One kept-alive connection: a request written, its answer parsed as its bytes arrive
    (a protocol, not streams: a delivery is then a write and one callback per answer)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.keep = False
        self._buf = bytearray()
        self._answer: asyncio.Future[tuple[int, float | None]] | None = None
        self._reused = False
        self._got_bytes = False
        # status, Retry-After, keep-alive, and the body's length (-1: chunked) once the head
        # of the current answer is in
        self._head: tuple[int, float | None, bool, int] | None = None
        self._body_seen = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        self._buf += data
        answer = self._answer
        if answer is not None and not answer.done():
            try:
                self._parse(answer)
            except (ValueError, IndexError) as exc:
                answer.set_exception(ConnectionError(f"malformed answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is not None and not answer.done():
            if self._reused and not self._got_bytes:
                answer.set_exception(_Stale())
            else:
                answer.set_exception(ConnectionResetError("the receiver closed the connection"))

    def send(self, request: bytes, reused: bool) -> asyncio.Future[tuple[int, float | None]]:
        assert self.transport is not None
        self._buf.clear()
        self._head, self._body_seen, self.keep = None, 0, False
        self._reused, self._got_bytes = reused, False
        self._answer = self._loop.create_future()
        self.transport.write(request)
        return self._answer

    def _parse(self, answer: asyncio.Future[tuple[int, float | None]]) -> None:
        buf = self._buf
        while self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_ANSWER_BYTES:
                    raise ValueError("head too long")
                return
            version, status, fields = _parse_head(bytes(buf[:end]))
            del buf[: end + 4]
            if 100 <= status < 200:
                continue  # interim answers carry no body
            keep = version == b"HTTP/1.1" and fields.get(b"connection", b"").lower() != b"close"
            retry = _retry_after(fields.get(b"retry-after"))
            if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
                self._head = (status, retry, keep, -1)
            elif (
                b"content-length" in fields and int(fields[b"content-length"]) <= _MAX_ANSWER_BYTES
            ):
                self._head = (status, retry, keep, int(fields[b"content-length"]))
            else:  # no length (the body runs to the end of the connection), or too long
                self._finish(answer, status, retry, False)
                return
        status, retry, keep, length = self._head
        if length >= 0:
            if len(buf) >= length:
                del buf[:length]
                self._finish(answer, status, retry, keep)
            return
        while True:  # chunked: size line, data, CRLF; a zero size ends it
            end = buf.find(b"\r\n")
            if end < 0:
                return
            size = int(bytes(buf[:end]).split(b";")[0], 16)
            if len(buf) < end + 2 + size + 2:
                return
            del buf[: end + 2 + size + 2]
            self._body_seen += size
            if self._body_seen > _MAX_ANSWER_BYTES:
                self._finish(answer, status, retry, False)
                return
            if size == 0:
                self._finish(answer, status, retry, keep)
                return

    def _finish(
        self,
        answer: asyncio.Future[tuple[int, float | None]],
        status: int,
        retry: float | None,
        keep: bool,
    ) -> None:
        self._head, self.keep = None, keep
        answer.set_result((status, retry))


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
        self._idle: dict[_Origin, list[tuple[float, _Connection]]] = {}

    async def post(
        self, url: str, headers: list[tuple[bytes, bytes]], body: bytes, timeout: float
    ) -> tuple[int, float | None]:
        """The answer's status and Retry-After (seconds), within `timeout` in all."""
        origin, first_lines = _target(url)
        scheme, host, port = origin
        request = b"%sContent-Length: %d\r\n%s\r\n%s" % (
            first_lines,
            len(body),
            b"".join(name + b": " + value + b"\r\n" for name, value in headers),
            body,
        )
        async with asyncio.timeout(timeout):
            conn = self._take(origin)
            if conn is not None:
                try:
                    return await self._exchange(origin, conn, request, reused=True)
                except _Stale:
                    pass  # closed while idle: once more on a new connection
            conn = await self._connect(scheme, host, port)
            return await self._exchange(origin, conn, request, reused=False)

    def _take(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            since, conn = idle.pop()
            if now - since < _KEEPALIVE_S and not conn.closed:
                return conn
            if conn.transport is not None:
                conn.transport.close()
        return None

    async def _connect(self, scheme: str, host: str, port: int) -> _Connection:
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
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop),
                    address,
                    port,
                    ssl=tls,
                    server_hostname=host if tls else None,
                )
                return conn
            except OSError as exc:
                error = exc
        raise error or OSError(f"cannot connect to {host}")

    async def _exchange(
        self, origin: _Origin, conn: _Connection, request: bytes, reused: bool
    ) -> tuple[int, float | None]:
        keep = False
        try:
            answer = await conn.send(request, reused)
            keep = conn.keep and not conn.closed
            return answer
        finally:
            if keep:
                idle = self._idle.setdefault(origin, [])
                idle.append((time.monotonic(), conn))
                del idle[: -self._config.max_in_flight_per_endpoint]
            elif conn.transport is not None:
                conn.transport.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for _, conn in idle:
                if conn.transport is not None:
                    conn.transport.close()
        self._idle.clear()
