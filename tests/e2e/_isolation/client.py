"""HTTP/1.1 to the server under test: an answer that knows which granian worker gave it, and a
client that pins kept-alive connections to one worker or looks the worker of a fresh one up in
/proc.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from _device_support import CHROME_UA

from api.process import ServerProcess


class Defect(AssertionError):
    """An answer the contract forbids (a leak, a 5xx, a revoked key that works)."""


@dataclass
class Answer:
    method: str
    path: str
    who: str  # the owner and kind of key that asked, e.g. "own1al/sk"
    sent: bytes | None
    status: int
    body: bytes
    worker: int | None  # pid of the granian worker, when the connection was looked up

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def describe(self) -> str:
        sent = f" {self.sent.decode()}" if self.sent else ""
        on = f" (worker {self.worker})" if self.worker else ""
        return f"{self.method} {self.path} as {self.who}{sent} -> {self.status}{on} {self.text}"

    def expect(self, status: int) -> Any:
        if self.status != status:
            raise Defect(f"expected {status}: {self.describe()}")
        return self.json() if self.body else None

    def expect_error(self, status: int, code: str) -> dict[str, Any]:
        body = self.expect(status)
        if not isinstance(body, dict) or set(body) != {"error"} or body["error"]["code"] != code:
            raise Defect(f"expected error {code}: {self.describe()}")
        return body["error"]


_RETRYABLE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Http:
    """HTTP/1.1 to one server. Each request goes over a kept-alive connection pinned to one
    worker (so a test chooses which worker answers) or over a fresh connection whose worker is
    looked up in /proc after the answer. Counts every request it sends."""

    def __init__(self, server: ServerProcess, workers: int = 2, timeout: float = 30.0) -> None:
        self.server = server
        self.port = server.port
        # The server answers health checks once one worker is up; wait for all of them.
        deadline = time.monotonic() + timeout
        while len(server.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.05)
        self.workers = sorted(server.worker_pids())
        if len(self.workers) != workers:
            raise RuntimeError(f"expected {workers} granian workers, found {self.workers}")
        self.requests = 0
        self.by_worker: Counter[int] = Counter()
        self._pinned: dict[int, http.client.HTTPConnection] = {}

    def close(self) -> None:
        for conn in self._pinned.values():
            conn.close()
        self._pinned.clear()

    # -- which worker holds a connection ---------------------------------------------------

    def _server_inode(self, client_port: int) -> str | None:
        with open("/proc/net/tcp") as table:
            next(table)
            for line in table:
                cols = line.split()
                local, remote = cols[1], cols[2]
                if (
                    int(local.rsplit(":", 1)[1], 16) == self.port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port
                ):
                    return cols[9]
        return None

    def worker_of(self, conn: http.client.HTTPConnection) -> int:
        """The worker holding the server end of an open, already answered connection."""
        assert conn.sock is not None
        inode = self._server_inode(conn.sock.getsockname()[1])
        target = f"socket:[{inode}]"
        for pid in self.workers:
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except FileNotFoundError:
                now = self.server.worker_pids()
                raise Defect(f"worker {pid} is gone; the workers are now {now}") from None
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
                except OSError:
                    continue
        raise AssertionError(f"no worker holds the connection (inode {inode})")

    def _pin(self, index: int) -> http.client.HTTPConnection:
        """A kept-alive connection that worker `index` accepted: connections are opened until
        the kernel hands one to that worker."""
        want = self.workers[index]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            self.requests += 1
            if self.worker_of(conn) == want:
                self._pinned[index] = conn
                return conn
            conn.close()
        raise AssertionError(f"no connection reached worker {want} in 30 s")

    # -- requests ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None,
        who: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        worker: int = 0,
        fresh: bool = False,
    ) -> Answer:
        if params:
            path = f"{path}?{urlencode(params)}"
        headers = {"User-Agent": CHROME_UA}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        sent = None
        if body is not None:
            sent = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if fresh:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                conn.request(method, path, body=sent, headers=headers)
                response = conn.getresponse()
                data = response.read()
                pid = self.worker_of(conn)
            finally:
                conn.close()
        else:
            response, data, pid = self._on_pinned(worker, method, path, sent, headers)
        self.requests += 1
        self.by_worker[pid] += 1
        answer = Answer(method, path, who, sent, response.status, data, pid)
        if answer.status >= 500:
            raise Defect(f"server error: {answer.describe()}")
        return answer

    def _on_pinned(
        self, index: int, method: str, path: str, sent: bytes | None, headers: dict[str, str]
    ) -> tuple[http.client.HTTPResponse, bytes, int]:
        for attempt in (0, 1):
            reused = index in self._pinned
            conn = self._pinned[index] if reused else self._pin(index)
            try:
                conn.request(method, path, body=sent, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except _RETRYABLE:
                conn.close()
                self._pinned.pop(index, None)
                # A kept-alive connection the worker closed while idle: the request was not
                # read, so it goes again on a new connection. On a new one it is a failure.
                if attempt or not reused:
                    raise
                continue
            if response.will_close:
                conn.close()
                self._pinned.pop(index, None)
            return response, data, self.workers[index]
        raise AssertionError("unreachable")
