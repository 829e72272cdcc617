"""The JSON-ready summary of a run, and the errors the server logged."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._config import ACKED, UNKNOWN

if TYPE_CHECKING:
    from ._harness import Harness


def summarize(h: Harness, seconds: float) -> dict[str, Any]:
    """The summary of the run `h`, which took `seconds`."""
    acked = {k: n for (k, o), n in sorted(h.ledger.counts.items()) if o == ACKED}
    unknown = {k: n for (k, o), n in sorted(h.ledger.counts.items()) if o == UNKNOWN}
    requests, markers = h.expected_deliveries()
    got_requests, got_markers = h.sink.snapshot()
    duplicates, redelivered = h.sink.duplicates()
    deleted = {r for d in h.ledger.devices if d.deletion is not None for r in d.requests}
    return {
        "seed": h.config.seed,
        "kills": h.findings.kills,
        "workers": h.config.workers,
        "seconds": round(seconds, 1),
        "kill_after_acknowledged_writes": h.kill_after,
        "acknowledged": acked,
        "acknowledged_total": sum(acked.values()),
        "acknowledged_batch_events": sum(len(ids) for ids, o in h.ledger.batches if o == ACKED),
        "unknown": unknown,
        "unknown_total": sum(unknown.values()),
        "verified_final": {**h.verified, "traits_at_rest": h.traits_at_rest},
        "checks_all_passes": dict(sorted(h.checked.items())),
        "verification_passes": h.passes,
        "deliveries": {
            "identifications_expected": len(requests),
            "identifications_received": len(requests & got_requests),
            "list_updates_expected": len(markers),
            "list_updates_received": len(markers & got_markers),
            "deleted_visitor_identifications_received": len(deleted & got_requests),
            "unacknowledged_identifications_received": len(
                got_requests - {r for d in h.ledger.devices for r in d.requests}
            ),
            "messages": len(h.sink.attempts),
            "attempts": sum(h.sink.attempts.values()),
            "duplicates": duplicates,
            "messages_redelivered": redelivered,
        },
        "discovery_runs": dict(getattr(h, "run_states", Counter())),
        "server_log": server_log_errors(h.directory / "server.log"),
        "observations": h.findings.observations(),
        "defects": h.findings.defects(),
    }


_EXCEPTION_LINE = re.compile(r"^\w[\w.]*(Error|Exception|Exit)\b.*$", re.MULTILINE)


def server_log_errors(path: Path) -> dict[str, Any]:
    """Tracebacks the server wrote, by their exception line: the run's side channel."""
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = Counter(match.group(0)[:200] for match in _EXCEPTION_LINE.finditer(text))
    return {"tracebacks": text.count("Traceback"), "exceptions": dict(lines.most_common(10))}
