"""Micro benchmarks: `pytest benchmarks --benchmark-only -o addopts=''`.

Every benchmark group holds its baseline (a test named `*baseline*`). After pytest-benchmark's
tables this prints each figure as a ratio to its group's baseline (same parameters), and the same
ratios go into the --benchmark-json file as `extra_info.ratio_to_baseline` (raw timings left
out, so the file stays small).
"""

from __future__ import annotations

import pytest


def _key(params: dict | None) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in (params or {}).items() if k != "kind"))


def _ratios(benchmarks: list) -> list[tuple[str, str, float, str, float, float]]:
    """(group, name, mean s, baseline name, baseline mean s, ratio) for every non-baseline."""
    out = []
    groups: dict[str, list] = {}
    for bench in benchmarks:
        groups.setdefault(bench.group or "", []).append(bench)
    for group, members in groups.items():
        if not group:
            continue  # ungrouped tests have no baseline of their own
        baselines = [b for b in members if "baseline" in b.name]
        for bench in members:
            if bench in baselines or not baselines:
                continue
            same = [b for b in baselines if _key(b.params) == _key(bench.params)]
            base = (same or baselines)[0]
            ratio = bench.stats.mean / base.stats.mean
            out.append((group, bench.name, bench.stats.mean, base.name, base.stats.mean, ratio))
    return out


def pytest_benchmark_update_json(config, benchmarks, output_json):
    ratios = {(g, n): (b, r) for g, n, _, b, _, r in _ratios(benchmarks)}
    for entry in output_json["benchmarks"]:
        entry["stats"].pop("data", None)
        found = ratios.get((entry["group"] or "", entry["name"]))
        if found:
            entry["extra_info"]["baseline"] = found[0]
            entry["extra_info"]["ratio_to_baseline"] = round(found[1], 3)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    terminalreporter.section("ratio to the same-run baseline (means)")
    for group, name, mean, base, base_mean, ratio in _ratios(session.benchmarks):
        terminalreporter.write_line(
            f"{group:18} {name:58} {mean * 1e6:11.2f} us = {ratio:6.2f} x "
            f"{base} ({base_mean * 1e6:.2f} us)"
        )
