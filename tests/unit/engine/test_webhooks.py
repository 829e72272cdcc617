"""Webhook pieces without a receiver: signatures, the address guard, the retry schedule, and the
outbox and delivery book's take/claim/record/recover cycle driven by hand."""

from __future__ import annotations

import hashlib
import hmac
import time

import msgspec
import pytest
import standardwebhooks

from engine import (
    CompactionConfig,
    Engine,
    EngineConfig,
    WebhookConfig,
    attempts,
    delivery_book,
    outbox,
    publish,
    signing,
    webhooks,
)
from engine.errors import InvalidInput
from engine.urlguard import address_allowed, check_url


@pytest.fixture
def engine(tmp_path):
    config = EngineConfig(
        compaction=CompactionConfig(enabled=False),
        webhooks=WebhookConfig(deliver=False, history_per_endpoint=3),
    )
    e = Engine.open(tmp_path / "data", config)
    yield e
    e.close()


@pytest.fixture
def tenant(engine):
    return engine.authenticate(engine.create_workspace("unit").keys.sk_live).tenant


# -- signatures ------------------------------------------------------------------------------


def test_standard_signature_verifies_with_the_reference_library():
    secret, body = signing.new_secret(), b'{"event":"identification"}'
    now = int(time.time())
    headers = {k.decode(): v.decode() for k, v in signing.headers(secret, "msg_1", now, body)}
    assert standardwebhooks.Webhook(secret).verify(body, headers) == {"event": "identification"}
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-prynt-signature"] == expected
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == str(now)


def test_a_secret_that_is_not_base64_signs_with_its_bytes():
    assert signing.standard_key("whsec_!!!not-base64!!!") == b"whsec_!!!not-base64!!!"
    assert signing.standard_key("plain-secret-of-mine") == b"plain-secret-of-mine"
    assert len(signing.standard_key(signing.new_secret())) == 24


# -- the address guard -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.0.10", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("not-an-address", False),
    ],
)
def test_resolved_addresses(address, allowed):
    assert address_allowed(address, WebhookConfig()) is allowed
    assert address_allowed(address, WebhookConfig(allow_private=True)) is True


def test_urls_at_creation():
    config = WebhookConfig()
    assert check_url("https://hooks.example.com:8443/x?y=1", config)
    assert check_url("https://localhost/x", config)  # a name: checked when connecting
    for bad in ("http://example.com", "https://10.0.0.1/x", "https://[::1]/", "https://",
                "https://example.com:99999/", "mailto:a@b.c", "https://exa mple.com/"):  # fmt: skip
        with pytest.raises(InvalidInput):
            check_url(bad, config)
    assert check_url("http://10.0.0.1/x", WebhookConfig(allow_http=True, allow_private=True))


def test_config_refuses_a_schedule_that_goes_back_in_time():
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"retry_schedule": [0, 5, 1]}, WebhookConfig)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"retry_schedule": []}, WebhookConfig)


# -- the retry schedule ------------------------------------------------------------------------


def _delivery(tries: int, start: int = 1_000_000_000) -> delivery_book.Delivery:
    return delivery_book.Delivery("msg_x", "whk_000000000000", "webhook", "identification", b"{}",
                           start, round_start_us=start, round_tries=tries)  # fmt: skip


def test_next_attempt_is_due_at_the_schedules_offset_with_bounded_jitter():
    config = WebhookConfig()  # 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 24 h
    start = 1_000_000_000
    assert attempts.next_due(_delivery(1), config, start, None) is not None
    for tries, offset, previous in ((1, 5, 0), (2, 300, 5), (7, 86400, 36000)):
        for _ in range(20):
            due = attempts.next_due(_delivery(tries), config, start, None)
            gap = (offset - previous) * 0.1e6
            assert start + offset * 1e6 - gap <= due <= start + offset * 1e6 + gap
    assert attempts.next_due(_delivery(8), config, start, None) is None  # spent: 24 h
    # A due time in the past (after downtime) means at once; Retry-After pushes it later.
    late = start + 10**12
    assert attempts.next_due(_delivery(1), config, late, None) == late
    exact = WebhookConfig(retry_jitter=0.0)
    assert attempts.next_due(_delivery(1), exact, start, 60.0) == start + 60_000_000


# -- the outbox and the delivery book, driven by hand ---------------------------------------------


class _Enqueue:
    def __init__(self, ek: bytes, n: int) -> None:
        self.ek, self.n = ek, n

    def apply(self, ctx) -> list[str]:
        return [
            outbox.enqueue(
                ctx.txn,
                ctx.store,
                self.ek,
                "webhook",
                "identification",
                b'{"n":%d}' % i,
                ctx.now_us,
            )
            for i in range(self.n)
        ]


def _hook(engine, tenant, url: str = "https://example.com/h") -> tuple[str, bytes]:
    created = engine.create_webhook(tenant, webhooks.WebhookIn(url=url))
    return created.id, outbox.endpoint_key(tenant.prefix, created.id)


def _now() -> int:
    return time.time_ns() // 1000


def _claim(engine, room=lambda ek: 100, total: int = 1000, flying=frozenset()):
    """One turn of the delivery worker with no outcomes: take the outbox, claim what is due
    (and not in flight)."""
    return attempts.turn(engine.store, WebhookConfig(), [], total, room, flying).claimed


def _outcome(c, status: int, error: str | None = None) -> attempts.Outcome:
    return attempts.Outcome(c.key, c.ek, c.id, _now(), status, error, 1.0)


def _record(engine, outcomes, config) -> int:
    """Record outcomes as the worker does: 410s disable their endpoints in the event store
    first."""
    with engine.store.read_book() as txn:
        gone = attempts.gone_endpoints(txn, engine.store, outcomes)
    for ek in gone:
        engine.writer.run(webhooks.Disable(ek, "gone"))
    with engine.store.write_book() as txn:
        return attempts.record(txn, engine.store, outcomes, config, _now())


def _due(engine, now: int | None = None) -> list[bytes]:
    with engine.store.read_book() as txn, engine.store.read() as main:
        endpoints = attempts.Endpoints(main, engine.store)
        at = now if now is not None else _now()
        return attempts.scan_due(txn, engine.store, endpoints, at, lambda ek: 100, 1000)


def _keys(engine, head: bytes) -> list[bytes]:
    with engine.store.read_book() as txn, txn.cursor(db=engine.store.book) as cur:
        return [bytes(k) for k in cur.iternext(values=False) if bytes(k).startswith(head)]


def _outbox_keys(engine) -> list[bytes]:
    with engine.store.read() as txn, txn.cursor(db=engine.store.webhooks) as cur:
        return [bytes(k) for k in cur.iternext(values=False) if bytes(k)[:1] == b"I"]


def test_claim_record_and_retry_cycle(engine, tenant):
    config = WebhookConfig(retry_schedule=(0, 60), retry_jitter=0.0)
    hook, ek = _hook(engine, tenant)
    (msg,) = engine.writer.run(_Enqueue(ek, 1))
    # Before the worker takes it, the delivery is listed from the outbox, pending.
    (listed,) = engine.webhook_deliveries(tenant, hook).data
    assert (listed.id, listed.status, listed.attempts) == (msg, "pending", 0)
    (claimed,) = _claim(engine)
    assert (claimed.id, claimed.attempt, claimed.url) == (msg, 1, "https://example.com/h")
    assert claimed.secret.startswith("whsec_")
    # A claim writes nothing: the key stays due, and only the claims in flight keep it out.
    assert _due(engine) == [claimed.key]
    assert _claim(engine, flying={claimed.key}) == []

    fail = _outcome(claimed, 500, "HTTP 500")
    assert _record(engine, [fail], config) == 1
    assert _due(engine) == []  # due in 60 s
    assert len(_due(engine, now=_now() + 61_000_000)) == 1
    page = engine.webhook_deliveries(tenant, hook)
    assert [d.id for d in page.data] == [msg]
    assert page.data[0].status == "pending" and page.data[0].lastStatus == 500

    # An outcome for a delivery that is no longer claimed changes nothing.
    assert _record(engine, [fail], config) == 0
    out = engine.webhook(tenant, hook)
    assert out.successRate == 0.0 and out.lastDeliveryAt is not None


def test_the_outbox_is_read_in_commit_order_and_dropped_below_the_mark(engine, tenant):
    _, ek = _hook(engine, tenant)
    engine.writer.run(_Enqueue(ek, 3))
    with engine.store.read() as txn:
        entries, upto = outbox.read_new(txn, engine.store, 0, 100)
    assert upto == 3 and [outbox.decode(e).body for e in entries] == [
        b'{"n":0}',
        b'{"n":1}',
        b'{"n":2}',
    ]
    first = _claim(engine)
    assert len(first) == 3
    with engine.store.read_book() as txn:
        assert delivery_book.mark(txn, engine.store) == 3
    # Entries the book holds leave the event store; the highest stays, so numbers go on.
    assert engine.writer.run(outbox.DropTaken(3)) == 2
    assert _outbox_keys(engine) == [b"I" + (3).to_bytes(8, "big")]
    engine.writer.run(_Enqueue(ek, 1))
    flying = {c.key for c in first}
    (again,) = _claim(engine, flying=flying)
    assert engine.webhook_deliveries(tenant, _hook_id(ek)).data[0].id == again.id
    with engine.store.read() as txn:
        assert outbox.last_seq(txn, engine.store) == 4
    # Taken once: another turn takes nothing new.
    assert _claim(engine, flying=flying | {again.key}) == []


def _hook_id(ek: bytes) -> str:
    return ek[-16:].decode()


def test_claims_cut_short_are_sent_again_with_their_message_ids(engine, tenant):
    _, ek = _hook(engine, tenant)
    engine.writer.run(_Enqueue(ek, 3))
    claimed = _claim(engine)
    assert len(claimed) == 3
    # The worker dies with the three in flight; the next one finds them due, unattempted.
    again = _claim(engine)
    assert sorted(c.id for c in again) == sorted(c.id for c in claimed)
    assert {c.attempt for c in again} == {1}
    assert _record(engine, [_outcome(c, 200) for c in again], WebhookConfig()) == 3
    # Recorded: a late outcome of the first claims changes nothing, nothing is due.
    assert _record(engine, [_outcome(c, 200) for c in claimed], WebhookConfig()) == 0
    assert _claim(engine) == []


def test_scan_takes_at_most_the_room_of_each_endpoint_and_skips_paused_ones(engine, tenant):
    _, busy = _hook(engine, tenant, "https://busy.example.com/")
    _, quiet = _hook(engine, tenant, "https://quiet.example.com/")
    paused, held = _hook(engine, tenant, "https://paused.example.com/")
    engine.writer.run(_Enqueue(busy, 50))
    engine.writer.run(_Enqueue(quiet, 1))
    engine.writer.run(_Enqueue(held, 5))
    engine.update_webhook(tenant, paused, webhooks.WebhookPatch(status="paused"))
    claimed = _claim(engine, room=lambda ek: 2, total=2)
    assert len(claimed) == 2
    room = lambda ek: 2 - sum(c.ek == ek for c in claimed)  # noqa: E731
    claimed += _claim(engine, room=room, flying={c.key for c in claimed})
    assert sum(c.ek == busy for c in claimed) == 2
    assert sum(c.ek == quiet for c in claimed) == 1
    assert not any(c.ek == held for c in claimed)
    assert len(_keys(engine, b"Q" + held)) == 5


def test_finished_deliveries_are_trimmed_to_the_history_size(engine, tenant):
    config = WebhookConfig(history_per_endpoint=3)
    hook, ek = _hook(engine, tenant)
    engine.writer.run(_Enqueue(ek, 6))
    claimed = _claim(engine)
    _record(engine, [_outcome(c, 200) for c in claimed], config)
    kept = engine.webhook_deliveries(tenant, hook, limit=100).data
    assert [d.id for d in kept] == sorted((c.id for c in claimed), reverse=True)[:3]
    assert engine.webhook(tenant, hook).successRate == 1.0


def test_delete_removes_every_delivery_of_the_endpoint(engine, tenant):
    hook, ek = _hook(engine, tenant)
    _, other = _hook(engine, tenant, "https://other.example.com/")
    engine.writer.run(_Enqueue(ek, 4))
    engine.writer.run(_Enqueue(other, 1))
    flying = {c.key for c in _claim(engine, room=lambda e: 1)}
    engine.writer.run(_Enqueue(ek, 2))  # still in the outbox when the webhook goes
    engine.delete_webhook(tenant, hook)
    assert [k for k in _keys(engine, b"") if ek in k] == []
    assert len(_keys(engine, b"D" + other)) == 1
    assert _claim(engine, flying=flying) == []
    assert [k for k in _keys(engine, b"") if ek in k] == []


def test_what_a_crash_left_of_a_deleted_endpoint_is_dropped_when_met(engine, tenant):
    hook, ek = _hook(engine, tenant)
    engine.writer.run(_Enqueue(ek, 2))
    _claim(engine, room=lambda e: 1)
    # The record goes but the process dies before the book is cleaned.
    engine.writer.run(webhooks.DeleteWebhook(tenant, hook))
    assert len(_keys(engine, b"D" + ek)) == 2
    assert _claim(engine) == []
    assert [k for k in _keys(engine, b"") if ek in k] == []


def test_a_410_disables_and_cancels_the_rest(engine, tenant):
    hook, ek = _hook(engine, tenant)
    engine.writer.run(_Enqueue(ek, 3))
    first = _claim(engine, room=lambda e: 1)[0]
    _record(engine, [_outcome(first, 410, "HTTP 410")], WebhookConfig())
    assert engine.webhook(tenant, hook).status == "disabled"
    states = sorted(d.status for d in engine.webhook_deliveries(tenant, hook).data)
    assert states == ["cancelled", "cancelled", "failed"] and _due(engine) == []


def test_a_late_410_after_a_resume_does_not_disable_again(engine, tenant):
    """Two attempts in flight both answer 410: the first disables the endpoint and cancels the
    second, a user resumes the endpoint, then the second's answer comes. It is not recorded
    (cancelled in flight), so it must not disable the endpoint either."""
    hook, ek = _hook(engine, tenant)
    engine.writer.run(_Enqueue(ek, 2))
    first, second = _claim(engine)
    assert _record(engine, [_outcome(first, 410, "HTTP 410")], WebhookConfig()) == 1
    assert engine.webhook(tenant, hook).status == "disabled"
    engine.update_webhook(tenant, hook, webhooks.WebhookPatch(status="active"))
    assert _record(engine, [_outcome(second, 410, "HTTP 410")], WebhookConfig()) == 0
    assert engine.webhook(tenant, hook).status == "active"
    states = sorted(d.status for d in engine.webhook_deliveries(tenant, hook).data)
    assert states == ["cancelled", "failed"]


def test_only_410s_whose_outcome_is_recorded_disable(engine, tenant):
    _, ek = _hook(engine, tenant)
    engine.writer.run(_Enqueue(ek, 2))
    first, second = _claim(engine)
    gone = [_outcome(first, 410), _outcome(second, 410)]
    with engine.store.read_book() as txn:
        assert attempts.gone_endpoints(txn, engine.store, gone) == {ek}
    _record(engine, [_outcome(first, 200)], WebhookConfig())
    with engine.store.read_book() as txn:  # the first is delivered: only the second counts
        assert attempts.gone_endpoints(txn, engine.store, gone) == {ek}
        assert attempts.gone_endpoints(txn, engine.store, gone[:1]) == set()


def test_a_410_leaves_a_paused_endpoint_paused(engine, tenant):
    """A user paused the endpoint while the attempt was in flight: it stays paused (it sends
    and queues nothing either way), the 410 fails the delivery and cancels the rest."""
    hook, ek = _hook(engine, tenant)
    engine.writer.run(_Enqueue(ek, 2))
    first = _claim(engine, room=lambda e: 1)[0]
    engine.update_webhook(tenant, hook, webhooks.WebhookPatch(status="paused"))
    assert _record(engine, [_outcome(first, 410, "HTTP 410")], WebhookConfig()) == 1
    assert engine.webhook(tenant, hook).status == "paused"
    states = sorted(d.status for d in engine.webhook_deliveries(tenant, hook).data)
    assert states == ["cancelled", "failed"]


def test_disabling_changes_only_an_active_endpoint(engine, tenant):
    _, ek = _hook(engine, tenant)
    engine.writer.run(webhooks.Disable(ek, "first"))
    with engine.store.read() as txn:
        before = webhooks.find(txn, engine.store, ek)
        version = webhooks.version(txn, engine.store, tenant.prefix)
    engine.writer.run(webhooks.Disable(ek, "second"))
    with engine.store.read() as txn:
        assert webhooks.find(txn, engine.store, ek) == before  # reason and time kept
        assert webhooks.version(txn, engine.store, tenant.prefix) == version
    assert before.status == "disabled" and before.disabled_reason == "first"


def test_a_slack_410_fails_only_its_delivery(engine, tenant):
    ek = outbox.endpoint_key(tenant.prefix, publish.slack_endpoint_id(None))
    assert attempts.is_slack(ek)
    engine.writer.run(_SlackEnqueue(ek, 2))
    first = _claim(engine, room=lambda e: 1)[0]
    gone = _outcome(first, 410, "HTTP 410")
    with engine.store.read_book() as txn:
        assert attempts.gone_endpoints(txn, engine.store, [gone]) == set()
    assert _record(engine, [gone], WebhookConfig()) == 1
    assert len(_keys(engine, b"Q" + ek)) == 1  # the other one is still queued


class _SlackEnqueue(_Enqueue):
    def apply(self, ctx) -> list[str]:
        return [
            outbox.enqueue(ctx.txn, ctx.store, self.ek, "slack", "rule_match", b"{}", ctx.now_us)
            for _ in range(self.n)
        ]


def test_endpoint_cache_reloads_when_the_version_moves(engine, tenant):
    cache = webhooks.EndpointCache()
    with engine.store.read() as txn:
        assert cache.get(txn, engine.store, tenant.prefix) == []
    hook, _ = _hook(engine, tenant)
    with engine.store.read() as txn:
        assert [r.id for r in cache.get(txn, engine.store, tenant.prefix)] == [hook]
    engine.update_webhook(tenant, hook, webhooks.WebhookPatch(status="paused"))
    with engine.store.read() as txn:
        assert cache.get(txn, engine.store, tenant.prefix)[0].status == "paused"


def test_filters():
    f = webhooks.Filters(verdict=["block"], botDetected=True)
    assert publish.passes(f, "block", None, True)
    assert not publish.passes(f, "allow", None, True)
    assert not publish.passes(f, "block", None, False)
    assert publish.passes(webhooks.Filters(), None, None, False)
    assert not publish.passes(webhooks.Filters(ruleId=["rul_a"]), "block", None, False)
    assert publish.passes(webhooks.Filters(ruleId=["rul_a"]), "block", "rul_a", False)


def test_identification_payload_is_the_stored_document_and_goes_with_it(engine, tenant):
    from engine.device import AgentRequest

    hook, _ = _hook(engine, tenant)
    first = engine.identify_device(tenant, AgentRequest(), client_ip="8.8.8.8")
    (claimed,) = _claim(engine)
    payload = msgspec.json.decode(claimed.body)
    assert payload["event"] == "identification"
    assert payload["data"] == msgspec.json.decode(engine.event_document(tenant, first.requestId))
    # A deleted visitor's identifications are not sent any more.
    second = engine.identify_device(tenant, AgentRequest(), client_ip="8.8.4.4")
    engine.delete_visitor(tenant, second.visitorId)
    assert _claim(engine, flying={claimed.key}) == []
    states = {d.id: d.status for d in engine.webhook_deliveries(tenant, hook).data}
    assert sorted(states.values()) == ["cancelled", "pending"]


def test_no_webhook_means_nothing_written_for_identifications(engine, tenant):
    from engine.device import AgentRequest

    engine.identify_device(tenant, AgentRequest(), client_ip="8.8.8.8")
    assert _outbox_keys(engine) == [] and _keys(engine, b"") == []
