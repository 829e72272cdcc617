"""The Engine: the whole in-process API. The HTTP layer only decodes, calls it and encodes."""

from __future__ import annotations

import os
from collections.abc import Generator
from concurrent.futures import Future
from types import TracebackType

from . import backtest as _backtest
from . import discovery_runs as _discovery_runs
from . import events as _events
from . import export as _export
from . import identification as _ident
from . import lists as _lists
from . import pending_rows as _pending_rows
from . import profiles as _profiles
from . import rate_limits as _rate_limits
from . import rule_store as _rules
from . import usage as _usage
from . import visitors as _visitors
from . import workspaces as _workspaces
from .compaction import Compactor, merge_step
from .config import EngineConfig
from .delivery import DeliveryWorker
from .device import AgentRequest
from .errors import InvalidInput
from .ipintel import IpIntelligence
from .queries import Queries
from .segments import SCHEMAS
from .store import Store
from .tenant import Tenant
from .timeutil import month_of, month_start_us, now_us
from .urlguard import check_url
from .usage import Usage, read_usage
from .webhook_calls import WebhookCalls
from .writer import Writer


class Engine(Queries, WebhookCalls):
    """Open with `Engine.open(path, config)`; use as a context manager or call `close()`."""

    def __init__(self, path: str | os.PathLike[str], config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.store = Store(path, self.config)
        self._compactor: Compactor | None = None
        self.writer = Writer(
            self.store,
            max_group_ops=self.config.max_group_ops,
            group_wait_us=self.config.group_wait_us,
            on_commit=self._on_commit,
        )
        if self.config.compaction.enabled:
            self._compactor = Compactor(
                self.store,
                self.writer,
                self.config.compaction,
                dedup_window_us=self.config.dedup_window_seconds * 1_000_000,
                cohort_refresh_us=self.config.cohort_refresh_seconds * 1_000_000,
            )
        self._discovery: _discovery_runs.Runner | None = None
        if self.config.discovery.enabled:
            self._discovery = _discovery_runs.Runner(self.store, self.writer, self.config.discovery)
        self.ipintel = IpIntelligence(self.config.ip)
        self.limiter = _rate_limits.Limiter(self.store.path, self.config.rate_limits)
        self._rejections = _rate_limits.RejectionCounter(
            lambda counts: self.writer.run(_usage.AddRejected(counts, now_us()))
        )
        self.delivery: DeliveryWorker | None = None
        if self.config.webhooks.deliver:
            self.delivery = DeliveryWorker(
                self.store,
                self.writer,
                self.config.webhooks,
                standby=self.config.webhooks.standby_seconds,
            )

    @classmethod
    def open(cls, path: str | os.PathLike[str], config: EngineConfig | None = None) -> Engine:
        return cls(path, config)

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._rejections.close()
        self.limiter.close()
        if self._discovery is not None:
            self._discovery.close()
        if self.delivery is not None:
            self.delivery.close()
        if self._compactor is not None:
            self._compactor.close()
        self.writer.close()
        self.store.close()

    def _on_commit(self, written: set[tuple[bytes, str]]) -> None:
        if self._compactor is not None:
            self._compactor.notify(written)

    # -- workspaces and keys -------------------------------------------------------------

    def create_workspace(self, name: str, plan: str = "scale") -> _workspaces.WorkspaceWithKeys:
        return self.writer.run(_workspaces.CreateWorkspace(name, plan))

    def rotate_keys(self, workspace_id: str) -> _workspaces.WorkspaceWithKeys:
        return self.writer.run(_workspaces.RotateKeys(workspace_id))

    def set_plan(self, workspace_id: str, plan: str) -> _workspaces.Workspace:
        return self.writer.run(_workspaces.SetPlan(workspace_id, plan))

    def workspaces(self) -> list[_workspaces.Workspace]:
        with self.store.read() as txn:
            return _workspaces.list_all(txn, self.store)

    def workspace(self, workspace_id: str) -> _workspaces.Workspace:
        with self.store.read() as txn:
            return _workspaces.get(txn, self.store, workspace_id)

    def authenticate(self, api_key: str) -> _workspaces.KeyInfo:
        """Resolve a key to its workspace and environment; raises InvalidApiKey."""
        with self.store.read() as txn:
            return _workspaces.authenticate(txn, self.store, api_key)

    def authorize(
        self, api_key: str, kind: _rate_limits.LimitClass | None
    ) -> tuple[_workspaces.KeyInfo, _rate_limits.Decision | None]:
        """Authenticate, then count the request against its workspace's plan limit for `kind`
        (the plan is kept in the key record, so a plan change applies at once). Raises
        InvalidApiKey, or RateLimited (which carries the decision for the headers)."""
        with self.store.read() as txn:
            info = _workspaces.authenticate(txn, self.store, api_key)
            if kind is None or not self.config.rate_limits.enabled:
                return info, None
            plan = info.plan or _workspaces.get(txn, self.store, info.workspace_id).plan
        decision = self.limiter.check(info.workspace_id, plan, kind)
        if decision is not None and not decision.allowed:
            self._rejections.add(info.workspace_id)
            raise _rate_limits.RateLimited(decision.retry_after, decision)
        return info, decision

    # -- behavioural events --------------------------------------------------------------

    def _ingest_op(
        self, tenant: Tenant, events: list[_events.EventIn], batch: bool, decoded: bool
    ) -> _events.IngestEvents:
        # Validation happens before anything is queued: a bad event raises InvalidInput and
        # nothing of its batch is stored.
        received = now_us()
        if batch:
            rows = _events.prepare_batch(events, received, self.config, decoded)
        else:
            rows = [_events.prepare(e, received, self.config, decoded=decoded) for e in events]
        return _events.IngestEvents(
            tenant, rows, received, self.config.dedup_window_seconds * 1_000_000
        )

    def submit_events(
        self,
        tenant: Tenant,
        events: list[_events.EventIn],
        *,
        batch: bool = False,
        decoded: bool = False,
    ) -> Future[_events.IngestResult]:
        """Validate and queue events for the next group commit. The future resolves once durable.

        `decoded=True` skips the checks that `events.decode_event`/`decode_batch` already made.
        """
        return self.writer.submit(self._ingest_op(tenant, events, batch, decoded))

    async def ingest(
        self,
        tenant: Tenant,
        events: list[_events.EventIn],
        *,
        batch: bool = False,
        decoded: bool = False,
    ) -> _events.IngestResult:
        """`submit_events` for asyncio callers: returns once the events are durable."""
        return await self.writer.submit_async(self._ingest_op(tenant, events, batch, decoded))

    def track(self, tenant: Tenant, event: _events.EventIn) -> _events.IngestResult:
        return self.submit_events(tenant, [event]).result()

    def track_batch(self, tenant: Tenant, events: list[_events.EventIn]) -> _events.IngestResult:
        _events.check_batch_size(events, self.config)
        return self.submit_events(tenant, events, batch=True).result()

    # -- user traits ---------------------------------------------------------------------

    def submit_identify(
        self, tenant: Tenant, request: _profiles.IdentifyIn
    ) -> Future[_profiles.IdentifyResult]:
        _profiles.validate(request, self.config)
        return self.writer.submit(_profiles.MergeTraits(tenant, request))

    async def identify_async(
        self, tenant: Tenant, request: _profiles.IdentifyIn
    ) -> _profiles.IdentifyResult:
        _profiles.validate(request, self.config)
        return await self.writer.submit_async(_profiles.MergeTraits(tenant, request))

    def identify(self, tenant: Tenant, request: _profiles.IdentifyIn) -> _profiles.IdentifyResult:
        return self.submit_identify(tenant, request).result()

    def profile(self, tenant: Tenant, user_id: str) -> _profiles.Profile:
        with self.store.read() as txn:
            return _profiles.get(txn, self.store, tenant, user_id)

    # -- device identification -----------------------------------------------------------

    def _identify_op(
        self,
        tenant: Tenant,
        request: AgentRequest,
        client_ip: str,
        header_ua: str | None,
        forwarded: bool,
        trusted: bool,
        at_us: int | None = None,
    ) -> _ident.IdentifyDevice:
        prepared = _ident.prepare(
            request,
            self.ipintel,
            client_ip=client_ip,
            header_ua=header_ua,
            forwarded=forwarded,
            trusted_mobile=trusted,
            received_us=now_us() if at_us is None else at_us,
        )
        return _ident.IdentifyDevice(tenant, prepared)

    def identify_device(
        self,
        tenant: Tenant,
        request: AgentRequest,
        *,
        client_ip: str,
        header_ua: str | None = None,
        forwarded: bool = False,
        trusted: bool = True,
        at_us: int | None = None,
    ) -> _ident.IdentificationEvent:
        """Identify one agent call; `trusted` (a secret key) allows the mobile fields. `at_us`
        replays recorded traffic at the instant it was received (default: now)."""
        op = self._identify_op(tenant, request, client_ip, header_ua, forwarded, trusted, at_us)
        return self.writer.run(op)

    async def identify_device_async(
        self,
        tenant: Tenant,
        request: AgentRequest,
        *,
        client_ip: str,
        header_ua: str | None = None,
        forwarded: bool = False,
        trusted: bool = True,
    ) -> _ident.IdentificationEvent:
        op = self._identify_op(tenant, request, client_ip, header_ua, forwarded, trusted)
        return await self.writer.submit_async(op)

    def event_document(self, tenant: Tenant, request_id: str) -> bytes:
        """The stored JSON document of one identification."""
        with self.store.read() as txn:
            return _visitors.get_event(txn, self.store, tenant, request_id)

    def list_identifications(self, tenant: Tenant, **query: object) -> _visitors.EventPage:
        with self.store.read() as txn:
            return _visitors.list_events(txn, self.store, tenant, **query)  # type: ignore[arg-type]

    def visitor(self, tenant: Tenant, visitor_id: str) -> _visitors.Visitor:
        with self.store.read() as txn:
            return _visitors.get_visitor(txn, self.store, tenant, visitor_id)

    def delete_visitor(self, tenant: Tenant, visitor_id: str) -> _visitors.Deleted:
        return self.writer.run(_visitors.DeleteVisitor(tenant, visitor_id))

    async def delete_visitor_async(self, tenant: Tenant, visitor_id: str) -> _visitors.Deleted:
        return await self.writer.submit_async(_visitors.DeleteVisitor(tenant, visitor_id))

    # -- lists -----------------------------------------------------------------------------

    def create_list(self, tenant: Tenant, request: _lists.ListIn) -> _lists.ListOut:
        return self.writer.run(_lists.CreateList(tenant, request))

    async def create_list_async(self, tenant: Tenant, request: _lists.ListIn) -> _lists.ListOut:
        return await self.writer.submit_async(_lists.CreateList(tenant, request))

    def lists(
        self, tenant: Tenant, kind: str | None = None, limit: int = 100, offset: int = 0
    ) -> _lists.ListPage:
        with self.store.read() as txn:
            records = _lists.all_lists(txn, self.store, tenant)
        chosen = [r for r in records if kind is None or r.type == kind]
        return _lists.ListPage(
            [_lists.out(r) for r in chosen[offset : offset + limit]], len(chosen)
        )

    def _patch_op(
        self, tenant: Tenant, list_id: str, request: _lists.EntriesIn
    ) -> _lists.PatchEntries:
        if len(request.add) + len(request.remove) > _lists.MAX_ENTRIES_PER_CALL:
            raise InvalidInput(
                f"At most {_lists.MAX_ENTRIES_PER_CALL} entries per call.", field="add"
            )
        return _lists.PatchEntries(tenant, list_id, request)

    def patch_list(
        self, tenant: Tenant, list_id: str, request: _lists.EntriesIn
    ) -> _lists.EntriesResult:
        return self.writer.run(self._patch_op(tenant, list_id, request))

    async def patch_list_async(
        self, tenant: Tenant, list_id: str, request: _lists.EntriesIn
    ) -> _lists.EntriesResult:
        return await self.writer.submit_async(self._patch_op(tenant, list_id, request))

    def delete_list(self, tenant: Tenant, list_id: str) -> _lists.ListDeleted:
        return self.writer.run(_lists.DeleteList(tenant, list_id))

    async def delete_list_async(self, tenant: Tenant, list_id: str) -> _lists.ListDeleted:
        return await self.writer.submit_async(_lists.DeleteList(tenant, list_id))

    # -- rules -----------------------------------------------------------------------------

    def _check_delivery_effects(self, effects: list[_rules.SideEffect] | None, where: str) -> None:
        """Webhook and Slack side effects name targets the webhook config allows."""
        config = self.config.webhooks
        for i, effect in enumerate(effects or []):
            field = f"{where}[{i}].url"
            if effect.type not in ("webhook", "slack"):
                continue
            if effect.url is not None:
                check_url(effect.url, config, field)
            elif effect.type == "slack" and not config.slack_default_url:
                raise InvalidInput(
                    "'url' is required: no default Slack URL is configured.", field=field
                )

    def _create_rule_op(self, tenant: Tenant, request: _rules.RuleIn) -> _rules.CreateRule:
        self._check_delivery_effects(request.action.sideEffects, "action.sideEffects")
        return _rules.CreateRule(tenant, request, now_us())

    async def create_rule_async(self, tenant: Tenant, request: _rules.RuleIn) -> _rules.RuleWritten:
        return await self.writer.submit_async(self._create_rule_op(tenant, request))

    def create_rule(self, tenant: Tenant, request: _rules.RuleIn) -> _rules.RuleWritten:
        return self.writer.run(self._create_rule_op(tenant, request))

    def _update_rule_op(
        self, tenant: Tenant, rule_id: str, patch: _rules.RulePatch
    ) -> _rules.UpdateRule:
        if patch.action is not None:
            self._check_delivery_effects(patch.action.sideEffects, "action.sideEffects")
        self._check_delivery_effects(patch.sideEffects, "sideEffects")
        return _rules.UpdateRule(tenant, rule_id, patch, now_us())

    def update_rule(
        self, tenant: Tenant, rule_id: str, patch: _rules.RulePatch
    ) -> _rules.RuleWritten:
        return self.writer.run(self._update_rule_op(tenant, rule_id, patch))

    async def update_rule_async(
        self, tenant: Tenant, rule_id: str, patch: _rules.RulePatch
    ) -> _rules.RuleWritten:
        return await self.writer.submit_async(self._update_rule_op(tenant, rule_id, patch))

    async def delete_rule_async(self, tenant: Tenant, rule_id: str) -> _rules.RuleDeleted:
        return await self.writer.submit_async(_rules.DeleteRule(tenant, rule_id))

    def rules(self, tenant: Tenant) -> list[_rules.RuleOut]:
        with self.store.read() as txn:
            return [
                _rules.out(r, _rules.stats_of(txn, self.store, tenant.prefix, r.id))
                for r in _rules.all_rules(txn, self.store, tenant.prefix)
            ]

    def backtest(
        self,
        tenant: Tenant,
        rule_id: str,
        request: _backtest.BacktestIn | None = None,
        *,
        now: int | None = None,
    ) -> _backtest.BacktestResult:
        """Evaluate a rule over the identifications of the last `days` (docs/rules.md)."""
        return _backtest.backtest(
            self.store, tenant, rule_id, request or _backtest.BacktestIn(), now
        )

    # -- reading back --------------------------------------------------------------------

    def usage(self, workspace_id: str, at_us: int | None = None) -> Usage:
        at = now_us() if at_us is None else at_us
        with self.store.read() as txn:
            return read_usage(txn, self.store, workspace_id, month_of(at), month_start_us(at))

    def export_ndjson(
        self, tenant: Tenant, from_us: int, to_us: int
    ) -> Generator[bytes, None, None]:
        """NDJSON chunks from one read snapshot, held until the generator ends or is closed:
        close it when done early."""
        return _export.ndjson(self.store, tenant, from_us, to_us)

    def export_parquet(self, tenant: Tenant, from_us: int, to_us: int) -> bytes:
        return _export.parquet(self.store, tenant, from_us, to_us)

    def compact(self, tenant: Tenant) -> int:
        """Run every due merge step of the tenant's tables now; returns the steps taken."""
        steps = 0
        for table in SCHEMAS:
            limit = self.config.compaction.max_step_rows
            _pending_rows.drain_all(self.store, self.writer, tenant.prefix, table, limit)
            while merge_step(self.store, self.writer, tenant.prefix, table, self.config.compaction):
                steps += 1
        return steps
