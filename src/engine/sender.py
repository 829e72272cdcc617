"""The HTTP client of the delivery worker: pooled keep-alive connections over TLS, with the
server-side request forgery guard applied to every new connection.

Imported only when a worker first has something to send, so opening an engine stays cheap.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpcore

from .config import WebhookConfig
from .urlguard import Refused, address_allowed

_MAX_ANSWER_BYTES = 64 * 1024  # read of a receiver's answer body, which nobody looks at


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses it unless every address is allowed, and connects to
    an address it checked, so a DNS answer cannot change between check and connect."""

    def __init__(self, config: WebhookConfig) -> None:
        self._config = config
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        refused = [a for a in addresses if not address_allowed(a, self._config)]
        if refused or not addresses:
            raise Refused(f"{host} resolves to a refused address ({', '.join(refused)}).")
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error or httpcore.ConnectError(f"cannot connect to {host}")

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise Refused("Unix sockets are not webhook targets.")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _retry_after(headers: list[tuple[bytes, bytes]]) -> float | None:
    for name, value in headers:
        if name.lower() != b"retry-after":
            continue
        text = value.decode("latin-1").strip()
        if text.isdigit():
            return float(text)
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return None


class Sender:
    """One pooled HTTPS client for every delivery of a worker."""

    def __init__(self, config: WebhookConfig) -> None:
        context = ssl.create_default_context()
        if config.ca_bundle:
            context.load_verify_locations(config.ca_bundle)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=config.max_in_flight,
            keepalive_expiry=30.0,
            network_backend=_GuardedBackend(config),
        )

    async def post(
        self, url: str, headers: list[tuple[bytes, bytes]], body: bytes, timeout: float
    ) -> tuple[int, float | None]:
        """The answer's status and Retry-After (seconds), within `timeout` in all."""
        limits = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        async with (
            asyncio.timeout(timeout),
            self._pool.stream(
                "POST", url, headers=headers, content=body, extensions={"timeout": limits}
            ) as answer,
        ):
            read = 0
            async for chunk in answer.aiter_stream():
                read += len(chunk)
                if read > _MAX_ANSWER_BYTES:
                    break
            return answer.status, _retry_after(answer.headers)

    async def aclose(self) -> None:
        await self._pool.aclose()
