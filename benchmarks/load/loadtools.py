"""Shared pieces of the load benchmarks: wrk and hey runners, server CPU and memory readings."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_TICKS = os.sysconf("SC_CLK_TCK")


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def lua_cycling(bodies: list[str], key: str) -> str:
    """A wrk script that POSTs the bodies in turn with a bearer key."""
    quoted = ",\n".join("[==[" + b + "]==]" for b in bodies)
    return f"""
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.headers["Content-Type"] = "application/json"
local bodies = {{ {quoted} }}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])
end
"""


def lua_numbered_events(key: str) -> str:
    """A wrk script that sends single events, each with its own user id and counter."""
    return f"""
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, '{{"user_id":"u' .. (n % 50000) .. '","event":"page_viewed","properties":{{"path":"/p/' .. (n % 97) .. '","n":' .. n .. '}}}}')
end
"""


def run_wrk(url: str, script: Path, duration: int, connections: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "requests": total, "p50_ms": _ms(lat["50"]), "p99_ms": _ms(lat["99"]),
            "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else None}  # fmt: skip


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
