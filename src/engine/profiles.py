"""User traits set by `identify`: merged into one profile per user, in the writer's transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import lmdb
import msgspec

from . import codec, cohort_watch, dictionary
from .config import EngineConfig
from .errors import InvalidInput, NotFound
from .events import Name
from .store import Store
from .tenant import Tenant
from .writer import WriteContext


class IdentifyIn(msgspec.Struct, kw_only=True):
    user_id: Name
    traits: dict[str, Any] = {}
    set_once: dict[str, Any] = {}
    unset: list[Annotated[str, msgspec.Meta(min_length=1, max_length=200)]] = []


class Profile(msgspec.Struct):
    user_id: str
    traits: dict[str, Any]
    first_seen_us: int
    updated_us: int


class IdentifyResult(msgspec.Struct):
    user_id: str
    traits: dict[str, Any]


_identify_decoder = msgspec.json.Decoder(IdentifyIn)
_profile_encoder = msgspec.msgpack.Encoder()
_profile_decoder = msgspec.msgpack.Decoder(Profile)


def decode_identify(body: bytes) -> IdentifyIn:
    return codec.decode(_identify_decoder, body)


def validate(request: IdentifyIn, config: EngineConfig) -> None:
    names = ("traits", "set_once")
    # The size first: a C encode bounds what the walks below go over.
    for name in names:
        try:
            size = len(codec.encode(getattr(request, name)))
        except RecursionError:
            raise InvalidInput(f"'{name}' is nested too deeply.", field=name) from None
        if size > config.max_properties_bytes:
            raise InvalidInput(
                f"'{name}' exceeds {config.max_properties_bytes} bytes encoded.", field=name
            )
    for name in names:
        value = getattr(request, name)
        for key in value:
            if not 1 <= len(key) <= 200:
                raise InvalidInput("Trait names are 1 to 200 characters.", field=f"{name}.{key}")
        if codec.number_out_of_range(value):
            low, high = codec.NUMBER_RANGE
            raise InvalidInput(f"'{name}' holds a number outside {low} to {high}.", field=name)


def _profile_key(prefix: bytes, user_id: str) -> bytes:
    return b"u" + prefix + user_id.encode()


class MergeTraits:
    def __init__(self, tenant: Tenant, request: IdentifyIn) -> None:
        self.tenant = tenant
        self.request = request

    def apply(self, ctx: WriteContext) -> IdentifyResult:
        req = self.request
        key = _profile_key(self.tenant.prefix, req.user_id)
        raw = ctx.txn.get(key, db=ctx.store.profiles)
        if raw is None:
            profile = Profile(req.user_id, {}, ctx.now_us, ctx.now_us)
        else:
            profile = _profile_decoder.decode(raw)
        traits = profile.traits
        for name, value in req.set_once.items():
            traits.setdefault(name, value)
        traits.update(req.traits)
        for name in req.unset:
            traits.pop(name, None)
        profile.updated_us = ctx.now_us
        ctx.txn.put(key, _profile_encoder.encode(profile), db=ctx.store.profiles)
        # An id for every identified user, so cohorts over traits reach users with no events.
        prefix = self.tenant.prefix
        known = dictionary.size(ctx.txn, ctx.store, prefix, dictionary.USER)
        ident = ctx.interner.intern(ctx.txn, prefix, dictionary.USER, req.user_id)
        watch = cohort_watch.watching(ctx, prefix)
        if watch.traits or (watch.any and ident >= known):
            cohort_watch.enqueue(ctx, prefix, [ident])
        return IdentifyResult(req.user_id, traits)


def get(txn: lmdb.Transaction, store: Store, tenant: Tenant, user_id: str) -> Profile:
    raw = txn.get(_profile_key(tenant.prefix, user_id), db=store.profiles)
    if raw is None:
        raise NotFound(f"No user {user_id}.")
    return _profile_decoder.decode(raw)


def traits_of(txn: lmdb.Transaction, store: Store, tenant: Tenant, user_id: str) -> dict[str, Any]:
    """The user's traits, or none for a user never identified."""
    raw = txn.get(_profile_key(tenant.prefix, user_id), db=store.profiles)
    return {} if raw is None else _profile_decoder.decode(raw).traits


def all_traits(
    txn: lmdb.Transaction, store: Store, tenant: Tenant
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(user id, traits) of every identified user of the tenant."""
    head = _profile_key(tenant.prefix, "")
    with txn.cursor(db=store.profiles) as cur:
        if not cur.set_range(head):
            return
        for key, value in cur:
            if not key.startswith(head):
                return
            yield bytes(key[len(head) :]).decode(), _profile_decoder.decode(value).traits
