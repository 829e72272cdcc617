"""Workspaces and their API keys. Only SHA-256 hashes of keys are stored.

Each workspace has six keys: plx_ and sk_ secret keys and pk_ public keys, one per environment.
Rotation replaces all six in one transaction, so every earlier key fails at once in every process.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

import lmdb
import msgspec

from .errors import InvalidApiKey, InvalidInput, NotFound
from .store import Store
from .tenant import Environment, Tenant
from .writer import WriteContext

Plan = Literal["starter", "growth", "pro", "scale", "enterprise"]
PLANS: tuple[str, ...] = ("starter", "growth", "pro", "scale", "enterprise")
KEY_KINDS: tuple[str, ...] = ("plx_live", "plx_test", "sk_live", "sk_test", "pk_live", "pk_test")


class Workspace(msgspec.Struct, frozen=True):
    id: str
    name: str
    plan: Plan
    created_us: int


class KeyInfo(msgspec.Struct, frozen=True, array_like=True):
    workspace_id: str
    environment: Environment
    public: bool
    # The workspace's plan, copied into each key record (and rewritten by SetPlan) so that the
    # one read that authenticates a request also yields its rate limits.
    plan: str = ""

    @property
    def tenant(self) -> Tenant:
        return Tenant(self.workspace_id, self.environment)


class Keys(msgspec.Struct, frozen=True):
    plx_live: str
    plx_test: str
    sk_live: str
    sk_test: str
    pk_live: str
    pk_test: str


class WorkspaceWithKeys(msgspec.Struct, frozen=True):
    id: str
    name: str
    plan: Plan
    keys: Keys


_ws_encoder = msgspec.msgpack.Encoder()
_ws_decoder = msgspec.msgpack.Decoder(Workspace)
_key_decoder = msgspec.msgpack.Decoder(KeyInfo)
_hashes_decoder = msgspec.msgpack.Decoder(list[bytes])


def _ws_key(workspace_id: str) -> bytes:
    return b"ws\x00" + workspace_id.encode()


def _key_key(api_key: str) -> bytes:
    return b"key\x00" + hashlib.sha256(api_key.encode()).digest()


def _index_key(workspace_id: str) -> bytes:
    return b"wskeys\x00" + workspace_id.encode()


def _new_keys() -> Keys:
    return Keys(**{kind: f"{kind}_{secrets.token_urlsafe(24)}" for kind in KEY_KINDS})


def _install_keys(
    txn: lmdb.Transaction, store: Store, workspace_id: str, keys: Keys, plan: str
) -> None:
    old = txn.get(_index_key(workspace_id), db=store.catalog)
    if old is not None:
        for key_hash in _hashes_decoder.decode(old):
            txn.delete(key_hash, db=store.catalog)
    hashes = []
    for kind in KEY_KINDS:
        value = getattr(keys, kind)
        env = "live" if "live" in kind else "test"
        info = KeyInfo(workspace_id, env, kind.startswith("pk"), plan)  # type: ignore[arg-type]
        key = _key_key(value)
        txn.put(key, _ws_encoder.encode(info), db=store.catalog)
        hashes.append(key)
    txn.put(_index_key(workspace_id), _ws_encoder.encode(hashes), db=store.catalog)


class CreateWorkspace:
    def __init__(self, name: str, plan: str) -> None:
        if not 1 <= len(name) <= 200:
            raise InvalidInput("'name' must be 1 to 200 characters.", field="name")
        if plan not in PLANS:
            raise InvalidInput(f"'plan' must be one of {', '.join(PLANS)}.", field="plan")
        self.name = name
        self.plan = plan

    def apply(self, ctx: WriteContext) -> WorkspaceWithKeys:
        ws = Workspace(f"ws_{secrets.token_hex(8)}", self.name, self.plan, ctx.now_us)  # type: ignore[arg-type]
        ctx.txn.put(_ws_key(ws.id), _ws_encoder.encode(ws), db=ctx.store.catalog)
        keys = _new_keys()
        _install_keys(ctx.txn, ctx.store, ws.id, keys, ws.plan)
        return WorkspaceWithKeys(ws.id, ws.name, ws.plan, keys)


class RotateKeys:
    def __init__(self, workspace_id: str) -> None:
        self.workspace_id = workspace_id

    def apply(self, ctx: WriteContext) -> WorkspaceWithKeys:
        raw = ctx.txn.get(_ws_key(self.workspace_id), db=ctx.store.catalog)
        if raw is None:
            raise NotFound(f"No workspace {self.workspace_id}.", field="workspace")
        ws = _ws_decoder.decode(raw)
        keys = _new_keys()
        _install_keys(ctx.txn, ctx.store, ws.id, keys, ws.plan)
        return WorkspaceWithKeys(ws.id, ws.name, ws.plan, keys)


class SetPlan:
    """Change a workspace's plan; requests read it with their key, so it applies at once."""

    def __init__(self, workspace_id: str, plan: str) -> None:
        if plan not in PLANS:
            raise InvalidInput(f"'plan' must be one of {', '.join(PLANS)}.", field="plan")
        self.workspace_id, self.plan = workspace_id, plan

    def apply(self, ctx: WriteContext) -> Workspace:
        raw = ctx.txn.get(_ws_key(self.workspace_id), db=ctx.store.catalog)
        if raw is None:
            raise NotFound(f"No workspace {self.workspace_id}.", field="workspace")
        ws = msgspec.structs.replace(_ws_decoder.decode(raw), plan=self.plan)
        ctx.txn.put(_ws_key(ws.id), _ws_encoder.encode(ws), db=ctx.store.catalog)
        hashes = ctx.txn.get(_index_key(ws.id), db=ctx.store.catalog)
        for key_hash in _hashes_decoder.decode(hashes) if hashes is not None else []:
            raw_info = ctx.txn.get(key_hash, db=ctx.store.catalog)
            if raw_info is not None:
                info = msgspec.structs.replace(_key_decoder.decode(raw_info), plan=self.plan)
                ctx.txn.put(key_hash, _ws_encoder.encode(info), db=ctx.store.catalog)
        return ws


def authenticate(txn: lmdb.Transaction, store: Store, api_key: str) -> KeyInfo:
    raw = txn.get(_key_key(api_key), db=store.catalog)
    if raw is None:
        raise InvalidApiKey("The API key is invalid or revoked.")
    return _key_decoder.decode(raw)


def get(txn: lmdb.Transaction, store: Store, workspace_id: str) -> Workspace:
    raw = txn.get(_ws_key(workspace_id), db=store.catalog)
    if raw is None:
        raise NotFound(f"No workspace {workspace_id}.")
    return _ws_decoder.decode(raw)


def plan_of(ctx: WriteContext, workspace_id: str) -> str:
    """The workspace's plan as of this transaction. The decoded record is kept beside its bytes
    in the writer's caches, so the many reads of an unchanged record decode it once."""
    raw = ctx.txn.get(_ws_key(workspace_id), db=ctx.store.catalog)
    if raw is None:
        raise NotFound(f"No workspace {workspace_id}.")
    cache: dict[str, tuple[bytes, Workspace]] = ctx.caches.setdefault("workspaces", {})
    cached = cache.get(workspace_id)
    if cached is None or cached[0] != raw:
        cached = cache[workspace_id] = (raw, _ws_decoder.decode(raw))
    return cached[1].plan


def list_all(txn: lmdb.Transaction, store: Store) -> list[Workspace]:
    out = []
    with txn.cursor(db=store.catalog) as cur:
        if cur.set_range(b"ws\x00"):
            for key, value in cur:
                if not key.startswith(b"ws\x00"):
                    break
                out.append(_ws_decoder.decode(value))
    return sorted(out, key=lambda w: w.created_us)
