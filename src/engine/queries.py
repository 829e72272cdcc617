"""The analytics queries of the engine facade: funnels, cohorts, device analytics and
auto-discovery. A mixin of `Engine`, kept apart so each file stays one concern."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import cohort_store as _cohort_store
from . import cohorts as _cohorts
from . import device_analytics as _device_analytics
from . import discovery_runs as _discovery_runs
from . import funnels as _funnels
from .tenant import Tenant
from .timeutil import now_us

if TYPE_CHECKING:
    from .config import EngineConfig
    from .store import Store
    from .writer import Writer


class Queries:
    store: Store
    writer: Writer
    config: EngineConfig
    _discovery: _discovery_runs.Runner | None

    def funnel(self, tenant: Tenant, query: _funnels.FunnelQuery) -> _funnels.FunnelResult:
        with self.store.read() as txn:
            members = None
            if query.cohort_id is not None:
                record = _cohort_store.get(txn, self.store, tenant.prefix, query.cohort_id)
                members = _cohort_store.members(txn, self.store, tenant.prefix, record)
            return _funnels.run(txn, self.store, tenant, query, members)

    # -- device analytics ------------------------------------------------------------------

    def identification_analytics(
        self, tenant: Tenant, lo: int, hi: int, group_by: str | None, verdict: str | None
    ) -> _device_analytics.EventsAnswer:
        with self.store.read() as txn:
            return _device_analytics.events(txn, self.store, tenant, lo, hi, group_by, verdict)  # type: ignore[arg-type]

    def signal_analytics(
        self, tenant: Tenant, lo: int, hi: int, group_by: str | None, signal: str | None
    ) -> _device_analytics.SignalsAnswer:
        with self.store.read() as txn:
            return _device_analytics.signals(txn, self.store, tenant, lo, hi, group_by, signal)  # type: ignore[arg-type]

    # -- auto-discovery --------------------------------------------------------------------

    def trigger_discovery(self, tenant: Tenant) -> _discovery_runs.RunAnswer:
        """Queue a run (or answer the one queued or running); the runner starts it shortly."""
        run = self.writer.run(_discovery_runs.Trigger(tenant.prefix))
        if self._discovery is not None:
            self._discovery.notify()
        return _discovery_runs.answer(run, 0)

    def discovery_results(self, tenant: Tenant, limit: int = 20) -> _discovery_runs.RunAnswer:
        with self.store.read() as txn:
            run = _discovery_runs.latest_completed(txn, self.store, tenant.prefix)
        return _discovery_runs.answer(run, limit)

    def discovery_run(
        self, tenant: Tenant, run_id: str, limit: int = 20
    ) -> _discovery_runs.RunAnswer:
        with self.store.read() as txn:
            run = _discovery_runs.get_run(txn, self.store, tenant.prefix, run_id)
        return _discovery_runs.answer(run, limit)

    # -- cohorts ---------------------------------------------------------------------------

    def create_cohort(
        self, tenant: Tenant, request: _cohort_store.CohortIn
    ) -> _cohort_store.CohortOut:
        """Evaluates the definition over every user in a snapshot, then stores it."""
        with self.store.read() as txn:
            at = now_us()
            bitmap = _cohorts.evaluate(txn, self.store, tenant, request.definition, at)
        return self.writer.run(_cohort_store.CreateCohort(tenant, request, bitmap, at))

    def cohorts(self, tenant: Tenant, limit: int, offset: int) -> _cohort_store.CohortPage:
        with self.store.read() as txn:
            found = _cohort_store.records(txn, self.store, tenant.prefix)
        page = [_cohort_store.out(r) for r in found[offset : offset + limit]]
        return _cohort_store.CohortPage(page, len(found))

    def cohort(self, tenant: Tenant, cohort_id: str) -> _cohort_store.CohortOut:
        with self.store.read() as txn:
            return _cohort_store.out(_cohort_store.get(txn, self.store, tenant.prefix, cohort_id))

    def cohort_members(
        self, tenant: Tenant, cohort_id: str, limit: int = 500, cursor: str | None = None
    ) -> _cohort_store.MembersPage:
        with self.store.read() as txn:
            return _cohort_store.page_members(txn, self.store, tenant, cohort_id, limit, cursor)

    def delete_cohort(self, tenant: Tenant, cohort_id: str) -> _cohort_store.CohortDeleted:
        return self.writer.run(_cohort_store.DeleteCohort(tenant, cohort_id))

    def refresh_cohorts(self, tenant: Tenant) -> int:
        """Apply what ingestion queued for the tenant's cohorts now (the compactor does it about
        every second); returns how many cohorts changed."""
        refresh_us = self.config.cohort_refresh_seconds * 1_000_000
        return _cohort_store.refresh(self.store, self.writer, tenant.prefix, refresh_us)
