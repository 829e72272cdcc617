"""The webhook delivery process that `signalpost serve` starts beside its granian workers.

Deliveries then never share a worker's interpreter (and its GIL) with request handling. The
process takes the store's delivery lock first; each worker's own delivery thread keeps trying
that lock in the background and takes over within a second should this process die. It exits
when it is told to (SIGTERM, SIGINT) or when the server that started it is gone.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading

import msgspec

from engine import Engine

from .config import load_config


def run(data_dir: str) -> int:
    # Deliveries yield the CPU to request handling: on busy cores the identification path keeps
    # its latency and deliveries wait a little (they are asynchronous by contract).
    os.nice(10)
    config = load_config()
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    # This process writes only delivery records: no segments to compact here.
    engine_config = msgspec.structs.replace(
        config.engine,
        compaction=msgspec.structs.replace(config.engine.compaction, enabled=False),
        webhooks=msgspec.structs.replace(config.engine.webhooks, deliver=True, standby_seconds=0.0),
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()
    with Engine.open(data_dir, engine_config):
        gc.freeze()  # as in the workers (app.py): long-lived objects out of every collection
        while not stop.wait(0.5):
            if os.getppid() != parent:
                break  # the server is gone: so is the reason to deliver from here
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
