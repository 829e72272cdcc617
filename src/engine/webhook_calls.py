"""The webhook calls of the engine facade (docs/webhooks.md). A mixin of `Engine`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import outbox as _outbox
from . import webhooks as _webhooks
from .tenant import Tenant
from .urlguard import check_url

if TYPE_CHECKING:
    from .config import EngineConfig
    from .store import Store
    from .writer import Writer


class WebhookCalls:
    store: Store
    writer: Writer
    config: EngineConfig

    def _create_webhook_op(
        self, tenant: Tenant, request: _webhooks.WebhookIn
    ) -> _webhooks.CreateWebhook:
        check_url(request.url, self.config.webhooks)
        return _webhooks.CreateWebhook(tenant, request)

    def create_webhook(
        self, tenant: Tenant, request: _webhooks.WebhookIn
    ) -> _webhooks.WebhookCreated:
        return self.writer.run(self._create_webhook_op(tenant, request))

    async def create_webhook_async(
        self, tenant: Tenant, request: _webhooks.WebhookIn
    ) -> _webhooks.WebhookCreated:
        return await self.writer.submit_async(self._create_webhook_op(tenant, request))

    def webhooks(
        self, tenant: Tenant, status: str | None = None, limit: int = 20, offset: int = 0
    ) -> _webhooks.WebhookPage:
        with self.store.read() as txn:
            return _webhooks.listing(txn, self.store, tenant.prefix, status, limit, offset)

    def webhook(self, tenant: Tenant, webhook_id: str) -> _webhooks.WebhookOut:
        with self.store.read() as txn:
            record = _webhooks.get(txn, self.store, tenant.prefix, webhook_id)
            ek = _outbox.endpoint_key(tenant.prefix, webhook_id)
            return _webhooks.out(record, _outbox.stats(txn, self.store, ek))

    def _update_webhook_op(
        self, tenant: Tenant, webhook_id: str, patch: _webhooks.WebhookPatch
    ) -> _webhooks.UpdateWebhook:
        if patch.url is not None:
            check_url(patch.url, self.config.webhooks)
        return _webhooks.UpdateWebhook(tenant, webhook_id, patch)

    def update_webhook(
        self, tenant: Tenant, webhook_id: str, patch: _webhooks.WebhookPatch
    ) -> _webhooks.WebhookUpdated:
        return self.writer.run(self._update_webhook_op(tenant, webhook_id, patch))

    async def update_webhook_async(
        self, tenant: Tenant, webhook_id: str, patch: _webhooks.WebhookPatch
    ) -> _webhooks.WebhookUpdated:
        return await self.writer.submit_async(self._update_webhook_op(tenant, webhook_id, patch))

    def delete_webhook(self, tenant: Tenant, webhook_id: str) -> _webhooks.WebhookDeleted:
        return self.writer.run(_webhooks.DeleteWebhook(tenant, webhook_id))

    async def delete_webhook_async(
        self, tenant: Tenant, webhook_id: str
    ) -> _webhooks.WebhookDeleted:
        return await self.writer.submit_async(_webhooks.DeleteWebhook(tenant, webhook_id))

    def webhook_deliveries(
        self, tenant: Tenant, webhook_id: str, limit: int = 20, status: str | None = None
    ) -> _outbox.DeliveryPage:
        """Recent deliveries of a webhook, newest first, with their attempts."""
        with self.store.read() as txn:
            _webhooks.get(txn, self.store, tenant.prefix, webhook_id)
            ek = _outbox.endpoint_key(tenant.prefix, webhook_id)
            return _outbox.page(txn, self.store, ek, limit, status)

    def replay_delivery(
        self, tenant: Tenant, webhook_id: str, delivery_id: str
    ) -> _outbox.DeliveryOut:
        return self.writer.run(_webhooks.ReplayDelivery(tenant, webhook_id, delivery_id))

    async def replay_delivery_async(
        self, tenant: Tenant, webhook_id: str, delivery_id: str
    ) -> _outbox.DeliveryOut:
        op = _webhooks.ReplayDelivery(tenant, webhook_id, delivery_id)
        return await self.writer.submit_async(op)
