"""How every benchmark script reports: the JSON on stdout, one summary line on stderr, and the
same JSON in a results file when asked."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def emit(results: dict, summary: str, out: Path | None) -> None:
    text = json.dumps(results, indent=2)
    print(text)
    print(summary, file=sys.stderr)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
