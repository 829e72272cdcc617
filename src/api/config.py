"""Server configuration: one TOML file plus SIGNALPOST_* environment variables, all optional."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec

from engine.config import EngineConfig


class ServerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    data_dir: str = "./signalpost-data"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    workers: Annotated[int, msgspec.Meta(ge=1, le=256)] = 1
    # With two workers or more, each runs on a core of its own (api/worker_cpus.py).
    pin_workers: bool = True
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1024 * 1024
    # Decode-and-discard endpoints used as the same-run baseline of the benchmarks.
    benchmark_endpoints: bool = False
    log_level: str = "warning"
    # Peers (CIDRs) whose X-Forwarded-For is believed; everyone else's is a proxy signal.
    trusted_proxies: list[str] = []
    # An NDJSON export whose client takes nothing for this long is closed with its snapshot.
    export_idle_seconds: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    # NDJSON exports served at once by each worker process; more wait their turn.
    max_exports: Annotated[int, msgspec.Meta(ge=1, le=64)] = 8
    engine: EngineConfig = EngineConfig()


class ConfigError(Exception):
    pass


# Environment variable -> (table, dotted for nested tables; key; type). `list` is a
# comma-separated list of numbers.
_ENV: dict[str, tuple[str | None, str, type]] = {
    "SIGNALPOST_DATA": (None, "data_dir", str),
    "SIGNALPOST_HOST": (None, "host", str),
    "SIGNALPOST_PORT": (None, "port", int),
    "SIGNALPOST_WORKERS": (None, "workers", int),
    "SIGNALPOST_PIN_WORKERS": (None, "pin_workers", bool),
    "SIGNALPOST_BENCHMARK_ENDPOINTS": (None, "benchmark_endpoints", bool),
    "SIGNALPOST_LOG_LEVEL": (None, "log_level", str),
    "SIGNALPOST_EXPORT_IDLE_SECONDS": (None, "export_idle_seconds", float),
    "SIGNALPOST_MAX_EXPORTS": (None, "max_exports", int),
    "SIGNALPOST_DURABILITY": ("engine", "durability", str),
    "SIGNALPOST_MAX_SIZE_BYTES": ("engine", "max_size_bytes", int),
    "SIGNALPOST_GROUP_WAIT_US": ("engine", "group_wait_us", int),
    "SIGNALPOST_WEBHOOKS_ALLOW_HTTP": ("engine.webhooks", "allow_http", bool),
    "SIGNALPOST_WEBHOOKS_ALLOW_PRIVATE": ("engine.webhooks", "allow_private", bool),
    "SIGNALPOST_WEBHOOKS_CA_BUNDLE": ("engine.webhooks", "ca_bundle", str),
    "SIGNALPOST_WEBHOOKS_RETRY_SCHEDULE": ("engine.webhooks", "retry_schedule", list),
    "SIGNALPOST_WEBHOOKS_TIMEOUT_SECONDS": ("engine.webhooks", "timeout_seconds", float),
    "SIGNALPOST_WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT": (
        "engine.webhooks",
        "max_in_flight_per_endpoint",
        int,
    ),
    "SIGNALPOST_SLACK_DEFAULT_URL": ("engine.webhooks", "slack_default_url", str),
    "SIGNALPOST_WEBHOOKS_STANDBY_SECONDS": ("engine.webhooks", "standby_seconds", float),
}


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _parse(value: str, kind: type) -> Any:
    if kind is bool:
        text = value.strip().lower()
        if text not in _TRUE + _FALSE:
            raise ValueError(f"expected one of {', '.join(_TRUE + _FALSE)}, got {value!r}")
        return text in _TRUE
    if kind is list:
        return [float(part) for part in value.split(",") if part.strip()]
    return kind(value)


def _copy_tables(data: dict[str, Any]) -> dict[str, Any]:
    """A copy whose tables, at any depth, can take values without changing the parsed file."""
    return {k: (_copy_tables(v) if isinstance(v, dict) else v) for k, v in data.items()}


def load_config(
    path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> ServerConfig:
    """Read the TOML file (top-level keys plus an [engine] table), then apply the environment."""
    env = dict(os.environ) if env is None else env
    path = path or env.get("SIGNALPOST_CONFIG")
    data: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    data = _copy_tables(data)
    for name, (table, key, kind) in _ENV.items():
        if name in env and env[name] != "":
            try:
                value = _parse(env[name], kind)
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from exc
            target = data
            for part in table.split(".") if table else ():
                target = target.setdefault(part, {})
                if not isinstance(target, dict):
                    raise ConfigError(f"{name}: [{table}] in the config file is not a table")
            target[key] = value
    try:
        return msgspec.convert(data, ServerConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
