"""The compiled kernels and the dataframe library, imported on first use.

numba (with llvmlite) and polars add about 35 MB of private memory and 45 MB of mapped
libraries to every process that imports them. A server that only ingests and identifies never
needs them, so the modules that do (funnels, cohorts, discovery, Parquet export) reach them
through these functions rather than at import. The rule and backtest kernels load the same way
where they are used.
"""

from __future__ import annotations

from types import ModuleType


def funnels() -> ModuleType:
    from . import funnel_kernel

    return funnel_kernel


def discovery() -> ModuleType:
    from . import discovery_kernel

    return discovery_kernel


def polars() -> ModuleType:
    import polars

    return polars
