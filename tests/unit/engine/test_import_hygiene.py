"""`import engine` pulls in no HTTP framework: other front ends embed it."""

from __future__ import annotations

import subprocess
import sys


def test_engine_imports_without_starlette_or_granian():
    code = (
        "import sys, engine, engine.engine, engine.identification, engine.visitors;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('starlette', 'granian', 'api')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
