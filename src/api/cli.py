"""The `signalpost` command line: serve, workspace create|list|set-plan, keys rotate.

Its flags and its --json output are a stable contract that scripts depend on.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import msgspec

from engine import Engine, EngineConfig, write_fault
from engine.errors import SignalpostError
from engine.workspaces import PLANS

from .config import ConfigError, ServerConfig, load_config


def _data_dir(args: argparse.Namespace, config: ServerConfig | None = None) -> str:
    if getattr(args, "data", None):
        return args.data
    if config is not None:
        return config.data_dir
    return os.environ.get("SIGNALPOST_DATA") or "./signalpost-data"


def _short_lived(config: EngineConfig) -> EngineConfig:
    """An engine opened for one command sends no webhooks: the server's worker does."""
    return msgspec.structs.replace(
        config, webhooks=msgspec.structs.replace(config.webhooks, deliver=False)
    )


def _open(args: argparse.Namespace) -> Engine:
    config = load_config(getattr(args, "config", None))
    return Engine.open(_data_dir(args, config), _short_lived(config.engine))


def _print_json(value: object) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
    sys.stdout.flush()


def _print_keys(keys: object) -> None:
    for name, value in msgspec.structs.asdict(keys).items():  # type: ignore[arg-type]
        print(f"  {name:9} {value}")


def _serve(args: argparse.Namespace) -> int:
    overrides = {
        "SIGNALPOST_DATA": args.data,
        "SIGNALPOST_HOST": args.host,
        "SIGNALPOST_PORT": None if args.port is None else str(args.port),
        "SIGNALPOST_WORKERS": None if args.workers is None else str(args.workers),
        "SIGNALPOST_CONFIG": args.config,
    }
    for name, value in overrides.items():
        if value is not None:
            os.environ[name] = value
    config = load_config()
    data_dir = str(Path(config.data_dir).resolve())
    # Workers re-read the config from the environment; pin the resolved data directory.
    os.environ["SIGNALPOST_DATA"] = data_dir
    if write_fault.clear(data_dir):
        print(f"Writes were stopped by a failed flush ({data_dir}/{write_fault.MARKER}); "
              "this restart accepts them again.")  # fmt: skip
    with Engine.open(data_dir, _short_lived(config.engine)) as engine:
        if not engine.workspaces():
            created = engine.create_workspace("default", "scale")
            print(f"Created workspace {created.id} ('default', plan scale) in {data_dir}.")
            print("Its API keys are shown only this once:")
            _print_keys(created.keys)
            sys.stdout.flush()

    deliverer = None
    if config.engine.webhooks.deliver:
        # Webhook deliveries run in a process of their own, off the workers' request path.
        deliverer = subprocess.Popen([sys.executable, "-m", "api.deliverer", data_dir])
        # The workers' own delivery threads only stand by, to take over should it die.
        os.environ["SIGNALPOST_WEBHOOKS_STANDBY_SECONDS"] = "5"
    print(
        f"Signalpost listening on http://{config.host}:{config.port} ({config.workers} worker(s))"
    )
    sys.stdout.flush()
    try:
        _granian(config)
    finally:
        if deliverer is not None:
            deliverer.terminate()
            deliverer.wait(timeout=30)
    return 0


def _granian(config: ServerConfig) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops, TaskImpl

    Granian(
        "api.server:app_from_env",
        factory=True,
        address=config.host,
        port=config.port,
        workers=config.workers,
        interface=Interfaces.ASGI,
        log_level=config.log_level,  # type: ignore[arg-type]
        backlog=2048,
        loop=Loops(os.environ.get("SIGNALPOST_LOOP", "auto")),
        task_impl=TaskImpl(os.environ.get("SIGNALPOST_TASK_IMPL", "asyncio")),
    ).serve()


def _workspace_create(args: argparse.Namespace) -> int:
    with _open(args) as engine:
        created = engine.create_workspace(args.name, args.plan)
    if args.json:
        _print_json(created)
    else:
        print(f"{created.id}  {created.name}  plan={created.plan}")
        _print_keys(created.keys)
    return 0


def _workspace_list(args: argparse.Namespace) -> int:
    with _open(args) as engine:
        workspaces = engine.workspaces()
    if args.json:
        _print_json([{"id": w.id, "name": w.name, "plan": w.plan} for w in workspaces])
    else:
        for w in workspaces:
            print(f"{w.id}  {w.name}  plan={w.plan}")
    return 0


def _workspace_set_plan(args: argparse.Namespace) -> int:
    with _open(args) as engine:
        ws = engine.set_plan(args.workspace, args.plan)
    if args.json:
        _print_json({"id": ws.id, "name": ws.name, "plan": ws.plan})
    else:
        print(f"{ws.id}  {ws.name}  plan={ws.plan}")
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    with _open(args) as engine:
        rotated = engine.rotate_keys(args.workspace)
    if args.json:
        _print_json(rotated)
    else:
        print(f"New keys for {rotated.id}; every earlier key is revoked:")
        _print_keys(rotated.keys)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signalpost", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def store_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data", help="data directory (default: $SIGNALPOST_DATA or ./signalpost-data)"
        )
        p.add_argument("--config", help="TOML config file")
        p.add_argument("--json", action="store_true", help="print one JSON document")

    serve = sub.add_parser("serve", help="run the HTTP API under granian")
    serve.add_argument("--data")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--config")
    serve.set_defaults(func=_serve)

    workspace = sub.add_parser("workspace", help="manage workspaces")
    wsub = workspace.add_subparsers(dest="action", required=True)
    create = wsub.add_parser("create", help="create a workspace and print its keys")
    create.add_argument("--name", required=True)
    create.add_argument("--plan", choices=PLANS, default="scale")
    store_args(create)
    create.set_defaults(func=_workspace_create)
    listing = wsub.add_parser("list", help="list workspaces")
    store_args(listing)
    listing.set_defaults(func=_workspace_list)
    set_plan = wsub.add_parser(
        "set-plan", help="change a workspace's plan (a running server applies it at once)"
    )
    set_plan.add_argument("--workspace", required=True)
    set_plan.add_argument("--plan", choices=PLANS, required=True)
    store_args(set_plan)
    set_plan.set_defaults(func=_workspace_set_plan)

    keys = sub.add_parser("keys", help="manage API keys")
    ksub = keys.add_subparsers(dest="action", required=True)
    rotate = ksub.add_parser("rotate", help="replace every key of a workspace")
    rotate.add_argument("--workspace", required=True)
    store_args(rotate)
    rotate.set_defaults(func=_keys_rotate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (SignalpostError, ConfigError) as exc:
        print(f"signalpost: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
