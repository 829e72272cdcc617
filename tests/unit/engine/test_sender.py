"""The delivery client's HTTP/1.1 handling against scripted raw answers: chunked bodies,
Retry-After, connections closed by the receiver, keep-alive reuse, and the address guard."""

from __future__ import annotations

import asyncio

import pytest

from engine import WebhookConfig
from engine.sender import Sender
from engine.urlguard import Refused

LOCAL = WebhookConfig(allow_http=True, allow_private=True)


async def _serve(answers: list[bytes], close_after: set[int]) -> tuple[asyncio.Server, list]:
    """A server that answers the n-th request with answers[n]; `close_after` closes the
    connection after those answers. Returns the server and the list of connections seen."""
    seen: list[int] = []
    count = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        seen.append(len(seen))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                n, count = count, count + 1
                writer.write(answers[n])
                await writer.drain()
                if n in close_after:
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), seen


def test_answers_are_parsed_and_connections_reused_when_possible():
    answers = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",  # then the receiver closes
        b"HTTP/1.0 202 Accepted\r\n\r\nbody until close",
        b"HTTP/1.1 429 Slow down\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
        b"Content-Length: 0\r\n\r\n",
    ]

    async def run() -> tuple[list, list]:
        server, seen = await _serve(answers, close_after={2})
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook?x=1"
        sender = Sender(LOCAL)
        got = []
        for _ in answers:
            got.append(await sender.post(url, [(b"x-test", b"1")], b"{}", 30))
        await sender.aclose()
        server.close()
        return got, seen

    got, seen = asyncio.run(run())
    assert got == [(200, None), (503, 7.0), (200, None), (202, None), (429, 0.0)]
    # Requests 1-3 share a connection; the receiver closed it after the third, and the client
    # opened one new connection for the fourth (whether it saw the close before sending or only
    # when the fourth found the connection closed); HTTP/1.0 without a length is not kept alive.
    assert len(seen) == 3


def test_a_silent_receiver_times_out():
    async def run() -> None:
        async def handle(reader, writer):
            await reader.read()  # silent until the client hangs up

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        try:
            with pytest.raises(TimeoutError):
                await Sender(LOCAL).post(url, [], b"{}", 0.2)
        finally:
            server.close()

    asyncio.run(run())


def test_names_that_resolve_to_private_addresses_are_refused_before_connecting():
    async def run() -> None:
        with pytest.raises(Refused, match="refused address"):
            await Sender(WebhookConfig(allow_http=True)).post("http://localhost:9/", [], b"", 2)

    asyncio.run(run())


def test_answers_arriving_a_few_bytes_at_a_time_are_assembled():
    answers = [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 410 Gone\r\nContent-Length: 0\r\n\r\n",
    ]

    async def run() -> tuple[list, int]:
        connections = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            for answer in answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                for i in range(0, len(answer), 3):
                    writer.write(answer[i : i + 3])
                    await writer.drain()
                    await asyncio.sleep(0.001)  # mostly separate segments; parsed either way
            await reader.read()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        sender = Sender(LOCAL)
        got = [await sender.post(url, [], b"{}", 30) for _ in answers]
        await sender.aclose()
        server.close()
        return got, connections

    got, connections = asyncio.run(run())
    assert got == [(201, None), (200, None), (410, None)] and connections == 1


def test_a_malformed_answer_is_an_error_not_a_hang():
    async def run() -> None:
        async def handle(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 abc nonsense\r\n\r\n")
            await writer.drain()
            await reader.read()  # the connection stays open: only the parser can end the wait

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        try:
            with pytest.raises(ConnectionError, match="malformed"):
                await Sender(LOCAL).post(url, [], b"{}", 30)
        finally:
            server.close()

    asyncio.run(run())
