"""Shared pieces of the load benchmarks: wrk scripts and runners, a fallback asyncio client,
hey for fixed-rate runs, and the server's CPU and memory readings from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_TICKS = os.sysconf("SC_CLK_TCK")

# Appended to every wrk script: each thread gets an id and counts the requests it generated
# (`request()` runs once per request written), and `done()` prints their sum. wrk's own
# request count only covers answered requests: those in flight when the clock ran out were
# sent (and may be stored) but are not counted.
_LUA_COUNTING = """
local threads = {}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end
tag = "r"
sent = 0
function init(args)
  if args[1] then tag = args[1] end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("sent") end
  io.write(string.format("SENT %d\\n", total))
end
"""


def _lua_headers(key: str) -> str:
    return f"""
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.headers["Content-Type"] = "application/json"
"""


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def lua_cycling(bodies: list[str], key: str) -> str:
    """A wrk script that POSTs the bodies in turn with a bearer key, counting what it sends."""
    quoted = ",\n".join("[==[" + b + "]==]" for b in bodies)
    return (
        _lua_headers(key)
        + _LUA_COUNTING
        + f"""
local bodies = {{ {quoted} }}
function request()
  sent = sent + 1
  return wrk.format(nil, nil, nil, bodies[((sent + tid * 7) % #bodies) + 1])
end
"""
    )


def lua_single_events(key: str) -> str:
    """A wrk script that sends one event per request, each with a user id of its own
    (`u<tag>-<thread>-<n>`, the tag given as the script's argument)."""
    return (
        _lua_headers(key)
        + _LUA_COUNTING
        + """
function request()
  sent = sent + 1
  return wrk.format(nil, nil, nil, '{"user_id":"u' .. tag .. '-' .. tid .. '-' .. sent ..
    '","event":"page_viewed","properties":{"path":"/p/' .. (sent % 97) ..
    '","plan":"growth","n":' .. sent .. '}}')
end
"""
    )


def single_event_body(tag: str, n: int) -> bytes:
    """The body `lua_single_events` sends, for the Python client."""
    return (
        f'{{"user_id":"u{tag}-0-{n}","event":"page_viewed",'
        f'"properties":{{"path":"/p/{n % 97}","plan":"growth","n":{n}}}}}'
    ).encode()


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    url: str,
    script: Path,
    duration: float,
    connections: int,
    *,
    threads: int = 2,
    script_args: tuple[str, ...] = (),
) -> dict:
    """Closed-loop load with wrk; returns throughput, latency percentiles and error counts."""
    cpu = _children_cpu()
    # wrk takes whole seconds.
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
           "--latency", "-s", str(script), url]  # fmt: skip
    if script_args:
        cmd += ["--", *script_args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr}{proc.stdout}")
    out = proc.stdout
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    answered = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    sent = re.search(r"^SENT (\d+)$", out, re.M)
    non_2xx = int(bad.group(1)) if bad else 0
    return {
        "client": "wrk",
        "rps": rps,
        "answered": answered,
        "ok_2xx": answered - non_2xx,
        "non_2xx": non_2xx,
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
        "sent": int(sent.group(1)) if sent else None,
        "p50_ms": _ms(lat["50"]),
        "p90_ms": _ms(lat["90"]),
        "p99_ms": _ms(lat["99"]),
        "client_cpu_s": round(_children_cpu() - cpu, 2),
    }


def run_python_client(
    url: str,
    body: Callable[[int], bytes],
    key: str,
    duration: float,
    connections: int,
) -> dict:
    """The fallback when wrk is missing: `connections` asyncio tasks on uvloop, each with one
    keep-alive HTTP/1.1 connection, writing each request in one piece. (httpx was tried first:
    it sends headers and body in separate writes and stalls on Nagle and delayed ACKs, a few
    hundred requests/s.) Still costs far more CPU per request than wrk, taken from the server
    on a small machine, so its figures are lower bounds."""
    from urllib.parse import urlsplit

    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    latencies: list[float] = []
    counts = {"sent": 0, "ok": 0, "non_2xx": 0, "errors": 0}

    async def worker(deadline: float) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                counts["sent"] += 1
                data = body(counts["sent"])
                start = time.perf_counter()
                try:
                    writer.write(head + str(len(data)).encode() + b"\r\n\r\n" + data)
                    status_line = await reader.readuntil(b"\r\n")
                    headers = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in headers.split(b"\r\n"):
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    await reader.readexactly(length)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    counts["errors"] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append((time.perf_counter() - start) * 1000)
                status = int(status_line.split()[1])
                counts["ok" if 200 <= status < 300 else "non_2xx"] += 1
        finally:
            writer.close()

    async def main() -> float:
        start = time.perf_counter()
        deadline = start + duration
        await asyncio.gather(*(worker(deadline) for _ in range(connections)))
        return time.perf_counter() - start

    cpu = time.process_time()
    elapsed = asyncio.run(main())
    asyncio.set_event_loop_policy(None)
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2)

    answered = counts["ok"] + counts["non_2xx"]
    return {
        "client": "python-asyncio",
        "rps": round(answered / elapsed, 2),
        "answered": answered,
        "ok_2xx": counts["ok"],
        "non_2xx": counts["non_2xx"],
        "socket_errors": counts["errors"],
        "sent": counts["sent"],
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "client_cpu_s": round(time.process_time() - cpu, 2),
    }


def run_hey(url: str, body: Path, key: str, duration: int, rate: int) -> dict:
    """Open-loop-ish load at a fixed total rate (10 workers, each rate/10 per second)."""
    workers = 10
    out = subprocess.run(
        ["hey", "-z", f"{duration}s", "-c", str(workers), "-q", str(rate // workers), "-m", "POST",
         "-T", "application/json", "-H", f"Authorization: Bearer {key}", "-D", str(body), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    pct = {int(p): float(v) * 1000 for p, v in re.findall(r"(\d+)% in ([\d.]+) secs", out)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    codes = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    return {"rps": rps, "p50_ms": pct[50], "p99_ms": pct[99],
            "non_2xx": sum(int(n) for c, n in codes.items() if not c.startswith("2"))}  # fmt: skip


def run_h2load(url: str, body: Path, key: str, duration: int, rate: int, clients: int = 50) -> dict:
    """A fixed total rate from `h2load` (Debian `nghttp2-client`) over HTTP/1.1: `clients`
    connections, each sending rate/clients requests per second. h2load is C and keeps a rate
    the Go client `hey` cannot on two shared cores; it reports the mean, not percentiles."""
    out = subprocess.run(
        ["h2load", "--h1", "-c", str(clients), "-t", "1", "--rps", str(rate / clients),
         "-D", str(duration), "-d", str(body), "-H", f"authorization: Bearer {key}",
         "-H", "content-type: application/json", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out)
    if not (done and codes and rps and mean):
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    return {
        "client": "h2load",
        "rps": float(rps.group(1)),
        "answered": int(done.group(1)),
        "ok_2xx": int(codes.group(1)),
        "non_2xx": sum(int(codes.group(i)) for i in (2, 3, 4)),
        "mean_ms": _ms(mean.group(1)),
    }


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes (utime and stime of /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in pids}


def reset_peak_rss(pids: list[int]) -> bool:
    """Reset VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`, Linux >= 4.0, needs
    the right to write there): the next reading is the peak of what ran in between."""
    ok = True
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def peak_rss_mb(pids: list[int]) -> tuple[float, float]:
    """(largest, sum) of VmHWM over the processes, in MB."""
    peaks = []
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"VmHWM:\s+(\d+) kB", text)
        if match:
            peaks.append(int(match.group(1)) / 1024)
    return (max(peaks, default=0.0), sum(peaks))


def pss_mb(pids: list[int]) -> float:
    """Proportional set size summed over the processes, in MB: shared pages (the LMDB map,
    libraries) counted once in total rather than once per process."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        match = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        if match:
            total += int(match.group(1))
    return total / 1024


def wait_idle(pids: list[int], quiet: float = 0.03, step: float = 0.5, limit: float = 60) -> float:
    """Wait until the processes use less than `quiet` CPU seconds per `step` (background
    compaction done); returns the CPU seconds they used while we waited."""
    start = last = cpu_seconds(pids)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(step)
        now = cpu_seconds(pids)
        if now - last < quiet:
            break
        last = now
    return cpu_seconds(pids) - start


def system_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores; /proc/stat minus idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / _TICKS


def own_cpu_seconds() -> float:
    """CPU of this process and its finished children (wrk)."""
    return time.process_time() + _children_cpu()


@contextlib.contextmanager
def source_trees(base: str) -> Iterator[tuple[dict[str, Path], str]]:
    """The `src` directories to compare, {"base": ..., "this": ...}, and the base's short name.
    `base` is a commit, checked out in a temporary git worktree for the duration, or `.` for
    this checkout (to compare settings of one tree)."""
    if base == ".":
        yield {"base": ROOT / "src", "this": ROOT / "src"}, "this tree"
        return
    git = ["git", "-C", str(ROOT)]
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "base"
        subprocess.run([*git, "worktree", "add", "--detach", str(worktree), base],
                       check=True, capture_output=True)  # fmt: skip
        try:
            rev = subprocess.run([*git, "rev-parse", "--short", base],
                                 capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
            yield {"base": worktree / "src", "this": ROOT / "src"}, rev
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(worktree)],
                           check=False, capture_output=True)  # fmt: skip


def alternating(rounds: int) -> Iterator[str]:
    """ "base", "this", then "this", "base", ...: neither side always runs first."""
    for n in range(rounds):
        yield from ("base", "this") if n % 2 == 0 else ("this", "base")
