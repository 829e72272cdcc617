"""The profiles read from the store at rest, with no server running."""

from __future__ import annotations

from pathlib import Path

from engine import CompactionConfig, Engine, EngineConfig, WebhookConfig
from engine.config import DiscoveryConfig
from engine.errors import NotFound
from engine.tenant import Tenant

from ._config import ACKED
from ._findings import Findings
from ._record import Ledger

REST_CONFIG = EngineConfig(
    webhooks=WebhookConfig(deliver=False),
    compaction=CompactionConfig(enabled=False),
    discovery=DiscoveryConfig(enabled=False),
)


def check_profiles_at_rest(data: Path, tenant: Tenant, ledger: Ledger, findings: Findings) -> int:
    """Read each written user's profile from the store with no server running: the last
    acknowledged `seq` (or an unknown one written after it) must be there."""
    verified = 0
    with Engine.open(data, REST_CONFIG) as engine:
        for user, writes in ledger.traits.items():
            try:
                got = engine.profile(tenant, user).traits.get("seq")
            except NotFound:
                got = None
            allowed = _allowed_seqs(writes)
            if got not in allowed:
                detail = {"got": got, "allowed": sorted(allowed, key=str)}
                findings.defect("trait_lost", user, detail)
            verified += any(o == ACKED for _, o in writes) and got in allowed
    return verified


def _allowed_seqs(writes: list[tuple[int, str]]) -> set[int | None]:
    acked = [i for i, (_, o) in enumerate(writes) if o == ACKED]
    if not acked:
        return {None} | {seq for seq, _ in writes}
    return {seq for seq, _ in writes[acked[-1] :]}
