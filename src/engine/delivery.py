"""The delivery worker: sends due outbox entries to their receivers, off the request path.

One thread per engine; in a store shared by several processes exactly one of them delivers: the
one that holds an advisory lock on `webhooks.lock` in the data directory. `signalpost serve`
starts a process for that alone (`api/deliverer.py`); its granian workers' threads stand by and
retry the lock every second, so a crashed holder is replaced at once (the kernel drops the lock
of a dead process). What the previous holder had in flight is still queued and due, so the new
holder sends it again at once.

Each turn of the worker is one write to the delivery book (`attempts.turn`): new outbox
entries, finished attempts, new claims. Deliveries run as asyncio tasks on the worker's own
event loop (uvloop), at most
`max_in_flight_per_endpoint` per endpoint and `max_in_flight` in all, through one HTTP client
(`sender.py`) that keeps connections alive and resolves and vets each new connection's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

import uvloop

from . import outbox, signing, webhooks
from .attempts import Claimed, Outcome, gone_endpoints, turn
from .config import WebhookConfig
from .errors import InvalidInput
from .store import Store
from .timeutil import now_us
from .urlguard import Refused, check_url
from .writer import Writer

if TYPE_CHECKING:
    from .sender import Sender

log = logging.getLogger("signalpost.webhooks")
_USER_AGENT = b"Signalpost-Webhooks/1"
# Entries already in the book leave the event store in one commit this often: the worker's
# only regular write there, short and rare enough not to be felt by requests.
_DROP_INTERVAL_S = 2.0
_GONE_REASON = "The receiver answered 410 Gone."


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        writer: Writer,
        config: WebhookConfig,
        lock_retry: float = 1.0,
        standby: float = 0.0,
    ) -> None:
        self._store, self._writer, self._config = store, writer, config
        self._lock_retry, self._standby = lock_retry, standby
        self._stopping = threading.Event()
        self._checked: set[str] = set()
        self._refused = False  # the last attempt to disable an endpoint failed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        # Set while this process holds the delivery lock (tests and benchmarks wait on it).
        self.active = threading.Event()
        self._thread = threading.Thread(target=self._run, name="signalpost-webhooks", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    def close(self) -> None:
        self._stopping.set()
        self.poke()
        self._thread.join()

    def _run(self) -> None:
        path = self._store.path / "webhooks.lock"
        self._stopping.wait(self._standby)
        while not self._stopping.is_set():
            with open(path, "a+b") as lock_file:
                try:
                    fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass  # another process delivers
                else:
                    try:
                        # uvloop: its event loop and TLS cost about a sixth less CPU per
                        # delivery than asyncio's own, CPU the requests' cores get back.
                        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                            runner.run(self._serve())
                    except Exception:
                        log.exception("webhook delivery worker failed; restarting it")
                    finally:
                        self.active.clear()
                        self._loop = self._wake = None
            self._stopping.wait(self._lock_retry)

    async def _serve(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.active.set()
        config = self._config
        per = config.max_in_flight_per_endpoint
        finished: list[Outcome] = []
        held: list[Outcome] = []  # 410s whose endpoint the event store could not disable yet
        flying: dict[bytes, bytes] = {}  # `Q` key -> endpoint key of each delivery in flight
        in_flight: Counter[bytes] = Counter()  # per endpoint, counted from `flying` each turn

        def room(ek: bytes) -> int:
            return per - in_flight[ek]

        tasks: set[asyncio.Task[None]] = set()
        sender: Sender | None = None
        dropped, last_drop = 0, time.monotonic()
        try:
            last_write = 0.0
            while not self._stopping.is_set():
                # Spacing the worker's commits lets outcomes gather: one commit, many deliveries.
                pause = last_write + config.write_interval_seconds - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                self._wake.clear()
                done, finished[:], held = held + finished, [], []
                last_write = time.monotonic()
                try:
                    # A 410 whose endpoint could not be disabled stays in flight, unrecorded,
                    # until a later turn can; the other outcomes are recorded now.
                    held = await self._disable_gone(done)
                    if held:
                        done = [o for o in done if o not in held]
                    # A finished attempt's slot is free for this turn's claims; should the
                    # turn fail, nothing of it was written and its outcomes wait for the next.
                    ended = {o.key for o in done}
                    busy = {k: ek for k, ek in flying.items() if k not in ended}
                    in_flight.clear()
                    in_flight.update(busy.values())
                    free = config.max_in_flight - len(busy)
                    result = await asyncio.to_thread(
                        turn, self._store, config, done, free, room, busy.keys()
                    )
                except Exception:
                    log.exception("could not record webhook deliveries")
                    finished.extend(done)
                    await asyncio.sleep(config.poll_interval_seconds)
                    continue
                flying = busy
                claimed = result.claimed
                try:
                    if result.mark > dropped and last_write - last_drop >= _DROP_INTERVAL_S:
                        last_drop = last_write
                        await self._writer.submit_async(outbox.DropTaken(result.mark))
                        dropped = result.mark
                except Exception:
                    log.exception("could not update the event store after deliveries")
                if claimed and sender is None:
                    from .sender import Sender

                    sender = Sender(config)
                for c in claimed:
                    flying[c.key] = c.ek
                    task = asyncio.create_task(self._send(sender, c, finished))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if finished or (claimed and len(claimed) == free):
                    continue  # more may be due; the next scan sees the freed slots
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), config.poll_interval_seconds)
        finally:
            # Deliveries cut short here stay queued; the next holder of the lock resends them.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if sender is not None:
                await sender.aclose()

    async def _disable_gone(self, done: list[Outcome]) -> list[Outcome]:
        """Disable the endpoints that answered 410 in the event store before their outcomes
        reach the book: whoever can read a 410 delivery then reads a disabled endpoint, and no
        identification committed after it queues anything for that endpoint. Entries queued
        before are cancelled with the endpoint's other pending deliveries when the outcome is
        recorded. Should the turn fail after this, the endpoint stays disabled and the
        delivery pending, sent again once a user resumes it.

        The event store may refuse the write (full, stopped after a failed commit, closing)
        while the book, an environment of its own, still takes them: returns the 410 outcomes
        of the endpoints that could not be disabled, for the caller to hold back, and nothing
        else waits for them."""
        if not any(o.status == 410 for o in done):
            return []
        gone = await asyncio.to_thread(self._gone, done)
        refused: set[bytes] = set()
        for ek in gone:
            try:
                await self._writer.submit_async(webhooks.Disable(ek, _GONE_REASON))
            except Exception:
                if not self._refused:  # once, not every turn for as long as it lasts
                    log.exception("could not disable a webhook endpoint that answered 410")
                self._refused = True
                refused.add(ek)
        if not refused:
            self._refused = False
        return [o for o in done if o.status == 410 and o.ek in refused]

    def _gone(self, done: list[Outcome]) -> set[bytes]:
        with self._store.read_book() as txn:
            return gone_endpoints(txn, self._store, done)

    def _target(self, c: Claimed) -> str:
        url = c.url or (self._config.slack_default_url if c.kind == "slack" else None)
        if url is None:
            raise InvalidInput("No Slack URL given and no default configured.")
        # The config may have changed since the URL was accepted: checked again, once per URL
        # and process (the config does not change while a process runs).
        if url not in self._checked:
            check_url(url, self._config)
            if len(self._checked) >= 1024:
                self._checked.clear()
            self._checked.add(url)
        return url

    async def _send(self, sender: Sender, c: Claimed, finished: list[Outcome]) -> None:
        config = self._config
        started, at = time.monotonic(), now_us()
        status, error, retry_after = 0, None, None
        try:
            url = self._target(c)
            headers = [(b"content-type", b"application/json"), (b"user-agent", _USER_AGENT)]
            if c.kind == "webhook" and c.secret is not None:
                headers += signing.headers(c.secret, c.id, int(time.time()), c.body)
            status, retry_after = await sender.post(url, headers, c.body, config.timeout_seconds)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except TimeoutError:
            error = f"No answer within {config.timeout_seconds:g} s."
        except (Refused, InvalidInput) as exc:
            error = str(exc)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        elapsed = round((time.monotonic() - started) * 1000, 3)
        finished.append(Outcome(c.key, c.ek, c.id, at, status, error, elapsed, retry_after))
        if self._wake is not None:
            self._wake.set()
