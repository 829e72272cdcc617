"""A real HTTPS receiver on loopback for the webhook tests, with a certificate made by trustme.

Every POST is recorded with its headers and raw body; what it answers is scripted per request
(status, headers, and an event to hold the answer until), so tests can make it fail, stall
until they say so, or answer 410 or 429.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import trustme

T = TypeVar("T")
# How long a test waits for something that should happen: long enough for a loaded machine,
# short enough that a test that is wrong fails rather than hangs.
PATIENCE = 30.0
# Where `Hooks.checkpoint` sends its own deliveries.
SENTINEL = "/sentinel"


def wait_until(probe: Callable[[], T], timeout: float = PATIENCE, interval: float = 0.02) -> T:
    """The first truthy value `probe()` returns; fails the test with its last one after
    `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"still {value!r} after {timeout} s"
        time.sleep(interval)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # Answer only once this is set (a test decides when), or after PATIENCE so that a failed
    # test does not leave the sender hanging.
    hold: threading.Event | None = None


Script = Callable[[Received, int], Answer]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

    def do_POST(self) -> None:
        owner: Receiver = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        answer = owner.record(got)
        if answer.hold is not None:
            answer.hold.wait(PATIENCE)
        payload = b"ok" if answer.status < 300 else b"no"
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the sender gave up (timeout) and closed the connection

    def log_message(self, *args: object) -> None:
        pass


class Receiver:
    """Use as a context manager; `url(path)` is its address, `ca_path` the CA to trust."""

    def __init__(self, directory: Path, host: str = "127.0.0.1") -> None:
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("localhost", "127.0.0.1")
        self.ca_path = directory / "receiver-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        self.server = ThreadingHTTPServer((host, 0), _Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.server.owner = self  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self.received: list[Received] = []
        self.script: Script = lambda got, n: Answer()
        self._lock = threading.Condition()
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}{path}"

    def record(self, got: Received) -> Answer:
        with self._lock:
            self.received.append(got)
            n = sum(1 for r in self.received if r.path == got.path)
            self._lock.notify_all()
        return self.script(got, n)

    def on(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(
        self, count: int, path: str | None = None, timeout: float = PATIENCE
    ) -> list[Received]:
        """At least `count` requests (to `path`, if given); fails the test after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [r for r in self.received if path is None or r.path == path]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                assert left > 0, f"receiver got {len(got)} of {count} requests"
                self._lock.wait(left)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Hooks:
    """A receiver, an engine whose webhook config trusts the receiver's CA and allows loopback,
    one `enterprise` workspace (no rate limits: tests poll the API as often as they need) and a
    synchronous client over the app."""

    def __init__(self, tmp_path: Path, **webhook_config: object) -> None:
        from _analytics_support import Api

        from api import ServerConfig, create_app
        from engine import Engine, EngineConfig, WebhookConfig

        self.receiver = Receiver(tmp_path).__enter__()
        settings: dict[str, object] = {
            "allow_private": True,
            "ca_bundle": str(self.receiver.ca_path),
            "retry_schedule": (0, 0.1, 0.3, 0.6),
            "retry_jitter": 0.0,
            "timeout_seconds": 2.0,
            "poll_interval_seconds": 0.02,
            # "{receiver}" in a string setting stands for the receiver's base URL.
            **{
                k: v.replace("{receiver}", self.receiver.url("")) if isinstance(v, str) else v
                for k, v in webhook_config.items()
            },
        }
        self.engine = Engine.open(
            tmp_path / "data",
            EngineConfig(webhooks=WebhookConfig(**settings)),  # type: ignore[arg-type]
        )
        self.ws = self.engine.create_workspace("hooks", "enterprise")
        self.sk = self.ws.keys.sk_live
        self.tenant = self.engine.authenticate(self.sk).tenant
        self.api = Api(create_app(ServerConfig(), engine=self.engine))
        self._sentinel: str | None = None

    def create(self, **body: object) -> dict:
        body.setdefault("url", self.receiver.url())
        r = self.api.post("/v1/webhooks", key=self.sk, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def identify(self, components: dict | None = None, **extra: object) -> dict:
        from _device_support import CHROME_UA, COMPONENTS

        r = self.api.post(
            "/v1/agent/identify",
            key=self.sk,
            headers={"User-Agent": CHROME_UA},
            json={"components": components or COMPONENTS, **extra},
        )
        assert r.status_code == 200, r.text
        return r.json()

    def deliveries(self, webhook_id: str, **params: object) -> list[dict]:
        r = self.api.get(f"/v1/webhooks/{webhook_id}/deliveries", key=self.sk, params=params)
        assert r.status_code == 200, r.text
        return r.json()["data"]

    def settle(self, webhook_id: str, timeout: float = PATIENCE) -> list[dict]:
        """The webhook's deliveries once none is pending any more."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.deliveries(webhook_id, limit=100)
            if all(d["status"] != "pending" for d in data):
                return data
            assert time.monotonic() < deadline, data
            time.sleep(0.02)

    def checkpoint(self) -> None:
        """Returns once the delivery worker has caught up with what was due when it was called:
        every attempt it had in flight has reached the receiver, and if anything else (not the
        sentinel's) was due and sendable, at least one more attempt of it has arrived too.
        What a test needs before it can say that something was *not* sent.

        It sends two identifications to a sentinel endpoint of its own (the receiver's script
        must answer 2xx on SENTINEL; other active endpoints get them too), one after the other;
        the engine must deliver one at a time (`max_in_flight=1`). The first is claimed only
        once nothing else is in flight, so every earlier attempt has been answered. The turn
        that records its outcome claims whatever else is due, before the second exists; the
        second is then sent only after that attempt was answered."""
        assert self.engine.config.webhooks.max_in_flight == 1, "needs max_in_flight=1"
        if self._sentinel is None:
            url = self.receiver.url(SENTINEL)
            self._sentinel = self.create(url=url, events=["identification"])["id"]
        self.identify()
        assert {d["status"] for d in self.settle(self._sentinel)} == {"delivered"}
        seen = len(self.receiver.on(SENTINEL))
        self.identify()
        self.receiver.wait_for(seen + 1, path=SENTINEL)

    def close(self) -> None:
        self.api.close()
        self.engine.close()
        self.receiver.__exit__()
