"""Entry point for granian worker processes: the app built from the environment's config."""

from __future__ import annotations

import logging

from starlette.applications import Starlette

from .app import create_app
from .config import load_config
from .worker_cpus import pin_worker


def app_from_env() -> Starlette:
    config = load_config()
    if config.pin_workers:
        # Before the engine starts its threads, so that they run on the same core.
        pin_worker(config.data_dir, config.workers)
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    return create_app(config)
