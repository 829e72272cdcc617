"""Run a real `signalpost serve` as a child process: used by the e2e tests and load benchmarks.

The child gets its own process group, so `kill(hard=True)` is a `kill -9` of the server and all of
its granian workers at once: what a crash looks like.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(*args: str, data: str | os.PathLike[str], env: dict[str, str] | None = None) -> Any:
    """Run a `signalpost` subcommand with --json against a data directory; return its JSON."""
    out = subprocess.run(
        [sys.executable, "-m", "api.cli", *args, "--data", str(data), "--json"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    return json.loads(out.stdout)


class ServerProcess:
    def __init__(
        self,
        data: str | os.PathLike[str],
        *,
        workers: int = 1,
        port: int | None = None,
        env: dict[str, str] | None = None,
        log: str | os.PathLike[str] | None = None,
    ) -> None:
        self.data = Path(data)
        self.workers = workers
        self.port = port or free_port()
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(log) if log else self.data.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "api.cli",
                "serve",
                "--data",
                str(self.data),
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=0.5) as answer:
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")

    def pids(self) -> list[int]:
        """The server's process, its workers and its webhook delivery process."""
        if self.proc is None:
            return []
        pgid = self.proc.pid
        out = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == pgid:
                        out.append(int(entry.name))
                except (ProcessLookupError, PermissionError):
                    pass
        return sorted(out)

    def worker_pids(self) -> list[int]:
        """The granian workers: the group less the supervisor and the delivery process."""
        out = []
        for pid in self.pids():
            if self.proc is not None and pid == self.proc.pid:
                continue
            try:
                if b"api.deliverer" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue
            except OSError:
                continue
            out.append(pid)
        return out

    def kill(self, hard: bool = True) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL if hard else signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        # Wait until every worker of the group is gone before anyone reopens the store.
        deadline = time.monotonic() + 10
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.proc = None

    def stop(self) -> None:
        self.kill(hard=False)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
