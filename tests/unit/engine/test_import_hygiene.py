"""`import engine` pulls in no HTTP framework: other front ends embed it."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("starlette", "granian", "api")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_engine_loads_no_http_framework():
    code = (
        "import sys, engine\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "assert 'engine' in sys.modules\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = _run(code)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_engine_module_loads_an_http_framework():
    code = (
        "import importlib, pkgutil, sys, engine\n"
        "names = [m.name for m in pkgutil.iter_modules(engine.__path__, 'engine.')]\n"
        "assert len(names) > 10, names\n"
        "[importlib.import_module(n) for n in names]\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = _run(code)
    assert result.returncode == 0, result.stdout + result.stderr


def test_serving_loads_no_compiled_kernels_until_a_query_needs_them():
    # numba and polars cost every server process about 80 MB (engine/_kernels.py); ingestion
    # and identification never need them.
    code = (
        "import sys, api.app\n"
        "heavy = ('numba', 'llvmlite', 'polars')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = _run(code)
    assert result.returncode == 0, result.stdout + result.stderr
