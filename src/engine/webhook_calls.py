"""The webhook calls of the engine facade (docs/webhooks.md). A mixin of `Engine`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import lmdb

from . import delivery_book as _book
from . import outbox as _outbox
from . import webhooks as _webhooks
from .errors import InvalidInput
from .tenant import Tenant
from .timeutil import now_us
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
        with self.store.read() as txn, self.store.read_book() as book_txn:
            return _webhooks.listing(
                txn, book_txn, self.store, tenant.prefix, status, limit, offset
            )

    def webhook(self, tenant: Tenant, webhook_id: str) -> _webhooks.WebhookOut:
        with self.store.read() as txn, self.store.read_book() as book_txn:
            record = _webhooks.get(txn, self.store, tenant.prefix, webhook_id)
            ek = _outbox.endpoint_key(tenant.prefix, webhook_id)
            return _webhooks.out(record, _book.stats(book_txn, self.store, ek))

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

    def _forget_endpoint(self, tenant: Tenant, webhook_id: str) -> None:
        """After the record is gone: its deliveries leave the book. Should this not happen (a
        crash in between), the delivery worker drops them when it meets them."""
        with self.store.write_book() as txn:
            ek = _outbox.endpoint_key(tenant.prefix, webhook_id)
            _book.remove_endpoint(txn, self.store, ek)

    def delete_webhook(self, tenant: Tenant, webhook_id: str) -> _webhooks.WebhookDeleted:
        deleted = self.writer.run(_webhooks.DeleteWebhook(tenant, webhook_id))
        self._forget_endpoint(tenant, deleted.webhookId)
        return deleted

    async def delete_webhook_async(
        self, tenant: Tenant, webhook_id: str
    ) -> _webhooks.WebhookDeleted:
        deleted = await self.writer.submit_async(_webhooks.DeleteWebhook(tenant, webhook_id))
        await asyncio.to_thread(self._forget_endpoint, tenant, deleted.webhookId)
        return deleted

    def _endpoint(
        self, txn: lmdb.Transaction, book_txn: lmdb.Transaction, tenant: Tenant, webhook_id: str
    ) -> tuple[bytes, list[_book.Delivery]]:
        """A webhook's endpoint key (NotFound if there is no such webhook) and its deliveries
        still in the outbox."""
        _webhooks.get(txn, self.store, tenant.prefix, webhook_id)
        ek = _outbox.endpoint_key(tenant.prefix, webhook_id)
        return ek, _outbox.pending_of(txn, self.store, ek, _book.mark(book_txn, self.store))

    def webhook_deliveries(
        self, tenant: Tenant, webhook_id: str, limit: int = 20, status: str | None = None
    ) -> _book.DeliveryPage:
        """Recent deliveries of a webhook, newest first, with their attempts."""
        store = self.store
        with store.read_book() as book_txn, store.read() as txn:
            ek, fresh = self._endpoint(txn, book_txn, tenant, webhook_id)
            return _book.page(book_txn, txn, store, ek, limit, status, fresh)

    def replay_delivery(
        self, tenant: Tenant, webhook_id: str, delivery_id: str
    ) -> _book.DeliveryOut:
        """Send a finished delivery again, with the same message id and a fresh schedule."""
        store = self.store
        with store.write_book() as book_txn, store.read() as txn:
            ek, fresh = self._endpoint(txn, book_txn, tenant, webhook_id)
            if any(d.id == delivery_id for d in fresh):
                raise InvalidInput("The delivery is still pending.", field="deliveryId")
            delivery = _book.replay(book_txn, store, ek, delivery_id, now_us())
            return _book.out(delivery, _book.body_of(txn, store, ek, delivery))

    async def replay_delivery_async(
        self, tenant: Tenant, webhook_id: str, delivery_id: str
    ) -> _book.DeliveryOut:
        return await asyncio.to_thread(self.replay_delivery, tenant, webhook_id, delivery_id)
