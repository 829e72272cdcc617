"""A request refused before its body was read (a bad key, a rate limit) leaves its keep-alive
connection usable: the body that arrives after the decision is read and dropped, not taken for
the next request. Raw sockets, so the body can arrive in a segment of its own."""

from __future__ import annotations

import json
import socket
import time

import pytest

from api.process import ServerProcess, cli

BODY = json.dumps({"events": [{"user_id": "u", "event": "e"}]}).encode()


def _head(path: str, key: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _status(conn: socket.socket) -> int | None:
    """The status of the next response on the connection (None if the server closed it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(
        int(v) for k, _, v in (x.partition(b":") for x in lines) if k.lower() == b"content-length"
    )
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return int(lines[0].split()[1])


@pytest.mark.parametrize("path", ["/v1/events/batch", "/v1/rules"])
def test_a_refused_request_keeps_its_connection(tmp_path, servers, path):
    data = tmp_path / "data"
    ws = cli("workspace", "create", "--name", "conn", "--plan", "enterprise", data=data)
    server = ServerProcess(data, workers=1)
    servers.append(server)
    server.start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(_head(path, "plx_live_not_a_key", len(BODY)))
        time.sleep(0.05)  # the body follows in a later segment
        conn.sendall(BODY)
        assert _status(conn) == 401
        # The same connection serves the next request.
        conn.sendall(_head("/v1/events/batch", ws["keys"]["plx_live"], len(BODY)) + BODY)
        assert _status(conn) == 200
