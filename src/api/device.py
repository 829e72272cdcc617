"""Device API endpoints: agent identification, events and visitors."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import get_args

import msgspec
from starlette.requests import Request, cookie_parser
from starlette.responses import Response
from starlette.routing import Route

from engine import codec, identification, visitors
from engine.device import AgentRequest
from engine.errors import InvalidInput
from engine.identification import AgentAnswer
from engine.rules import Verdict
from engine.timeutil import now_us
from engine.workspaces import KeyInfo

from .auth import authenticate
from .body import read_body
from .params import BoolParam, ChoiceParam, InstantParam, TextParam, limit
from .responses import Reply, json_response
from .state import AppState, state_of

_encoder = msgspec.json.Encoder()
_agent_decoder = msgspec.json.Decoder(AgentRequest)
_FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "via", "x-real-ip", "client-ip")
# The agent keeps its visitor id in script storage, which Safari deletes after seven days
# without a visit; a cookie set by a server on the site's own host keeps its lifetime. So the
# answer to a public key also sets this cookie, and a request whose agent lost its storage is
# read from it (docs/identification.md: deploy on the site's host for it to count).
STORAGE_COOKIE = "_spid"
_COOKIE_MAX_AGE = 400 * 86_400  # the longest lifetime browsers grant a cookie
STORAGE_COOKIE_PARAM = {
    "name": STORAGE_COOKIE,
    "in": "cookie",
    "required": False,
    "description": "`<visitor id>.<storage id>`, set by an earlier answer to a public key: read "
    "when the body has no storedVisitorId; ignored unless well formed.",
    "schema": {"type": "string"},
}
STORAGE_COOKIE_HEADER = {
    "description": f"Public keys only: `{STORAGE_COOKIE}=<visitor id>.<storage id>`, HttpOnly, "
    "SameSite=Lax, 400 days (Secure over HTTPS).",
    "schema": {"type": "string"},
}
_COOKIE_VALUE = re.compile(
    r"(?P<visitor>pv_[A-Za-z0-9]{1,32})(?:\.(?P<storage>[A-Za-z0-9]{1,64}))?"
)


@lru_cache(maxsize=16)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _trusted(address: str, cidrs: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(cidrs))


def client_address(
    peer: str, headers: Mapping[str, str], trusted_proxies: tuple[str, ...]
) -> tuple[str, bool]:
    """The client's IP and whether the request carried forwarding headers we do not trust.

    The socket peer is the client unless it is a configured trusted proxy; then the right-most
    X-Forwarded-For entry that is not itself a trusted proxy is. A forged X-Forwarded-For from
    an untrusted peer is ignored for the address and reported as a proxy signal.
    """
    if trusted_proxies and _trusted(peer, trusted_proxies):
        chain = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
        for hop in reversed(chain):
            if not _trusted(hop, trusted_proxies):
                return hop, False
        return peer, False
    return peer, any(name in headers for name in _FORWARDING_HEADERS)


def _stored_cookie(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The visitor id and storage id of the server's cookie, when the request carries a
    well-formed one."""
    value = cookie_parser(headers.get("cookie", "")).get(STORAGE_COOKIE, "")
    if found := _COOKIE_VALUE.fullmatch(value):
        return found["visitor"], found["storage"]
    return None, None


def _storage_cookie(visitor_id: str, storage_id: str | None, secure: bool) -> bytes:
    value = visitor_id if storage_id is None else f"{visitor_id}.{storage_id}"
    flags = "; Secure" if secure else ""
    cookie = f"{STORAGE_COOKIE}={value}; Max-Age={_COOKIE_MAX_AGE}; Path=/; HttpOnly; SameSite=Lax"
    return (cookie + flags).encode()


async def identify(
    st: AppState,
    key: KeyInfo,
    body: bytes,
    peer: str,
    headers: Mapping[str, str],
    *,
    secure: bool = False,
) -> Reply:
    """POST /v1/agent/identify; also served by the plain-ASGI hot path (ingest_path)."""
    payload = codec.decode(_agent_decoder, body)
    if key.public and payload.storedVisitorId is None:
        stored, storage = _stored_cookie(headers)
        if stored is not None:  # the agent's storage is gone, the server's cookie is not
            payload.storedVisitorId = stored
            payload.storageId = storage or payload.storageId
    address, forwarded = client_address(peer, headers, tuple(st.config.trusted_proxies))
    event = await st.engine.identify_device_async(
        key.tenant,
        payload,
        client_ip=address,
        header_ua=headers.get("user-agent"),
        forwarded=forwarded,
        trusted=not key.public,
    )
    if key.public:
        answer = AgentAnswer(event.requestId, event.visitorId, event.confidence, event.visitorFound)
        cookie = _storage_cookie(event.visitorId, payload.storageId, secure)
        return Reply(_encoder.encode(answer), ((b"set-cookie", cookie),))
    return Reply(_encoder.encode(event))


async def agent_identify(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine, public_ok=True)
    body = await read_body(request, st.config.max_body_bytes)
    peer = request.client.host if request.client else "0.0.0.0"
    secure = request.url.scheme == "https"
    return (await identify(st, key, body, peer, request.headers, secure=secure)).response()


async def discard_identify(request: Request) -> Response:
    """Benchmark baseline: agent identification up to the writer (decode, user agent, IP,
    signals, features), without matching or storing."""
    st = state_of(request)
    key = authenticate(request, st.engine, public_ok=True)
    body = await read_body(request, st.config.max_body_bytes)
    payload = codec.decode(_agent_decoder, body)
    peer = request.client.host if request.client else "0.0.0.0"
    address, forwarded = client_address(peer, request.headers, tuple(st.config.trusted_proxies))
    prepared = identification.prepare(
        payload,
        st.engine.ipintel,
        client_ip=address,
        header_ua=request.headers.get("user-agent"),
        forwarded=forwarded,
        trusted_mobile=not key.public,
        received_us=now_us(),
    )
    return json_response(
        AgentAnswer("req_baseline", "pv_baseline", 0.0, prepared.keys.exact is not None)
    )


async def get_event(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    doc = st.engine.event_document(key.tenant, request.path_params["request_id"])
    return Response(doc, media_type="application/json")


BEFORE = InstantParam(name="before", description="ISO 8601: only events before this instant.")
AFTER = InstantParam(name="after", description="ISO 8601: only events after this instant.")
LIMIT = limit(20, 100)
CURSOR = TextParam(
    name="cursor",
    description="nextCursor of the previous page.",
    max_length=400,
    pattern=visitors.CURSOR_PATTERN,
)
PAGE_PARAMS = (BEFORE, AFTER, LIMIT, CURSOR)
VISITOR = TextParam(name="visitorId", description="Only this visitor's events.")
VERDICT = ChoiceParam(
    name="verdict",
    description="Only events of this verdict.",
    choices=get_args(Verdict),
)
BOT = BoolParam(name="bot", description="Only events whose bot signal is this.")
LIST_PARAMS = (VISITOR, VERDICT, BOT, *PAGE_PARAMS)


def _page_query(request: Request) -> dict[str, object]:
    before, after = BEFORE.read(request, None), AFTER.read(request, None)
    if before is not None and after is not None and after >= before:
        raise InvalidInput("'after' must be earlier than 'before'.", field="after")
    return {
        "limit": LIMIT.read(request),
        "before_us": before,
        "after_us": after,
        "cursor": CURSOR.read(request),
    }


async def list_events(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    query = _page_query(request)
    verdict, want_bot, visitor = VERDICT.read(request), BOT.read(request), VISITOR.read(request)

    def accept(summary) -> bool:  # type: ignore[no-untyped-def]
        return (
            (verdict is None or summary.verdict == verdict)
            and (want_bot is None or summary.bot == want_bot)
            and (visitor is None or summary.visitor == visitor)
        )

    page = st.engine.list_identifications(key.tenant, accept=accept, **query)
    return json_response(page)


async def get_visitor(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    return json_response(st.engine.visitor(key.tenant, request.path_params["visitor_id"]))


async def visitor_events(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    visitor_id = request.path_params["visitor_id"]
    st.engine.visitor(key.tenant, visitor_id)  # 404 for an unknown visitor
    page = st.engine.list_identifications(key.tenant, visitor_id=visitor_id, **_page_query(request))
    return json_response(page)


async def delete_visitor(request: Request) -> Response:
    st = state_of(request)
    key = authenticate(request, st.engine)
    result = await st.engine.delete_visitor_async(key.tenant, request.path_params["visitor_id"])
    return json_response(result)


routes = [
    Route("/v1/agent/identify", agent_identify, methods=["POST"]),
    Route("/v1/events/{request_id}", get_event, methods=["GET"]),
    Route("/v1/events", list_events, methods=["GET"]),
    Route("/v1/visitors/{visitor_id}", get_visitor, methods=["GET"]),
    Route("/v1/visitors/{visitor_id}", delete_visitor, methods=["DELETE"]),
    Route("/v1/visitors/{visitor_id}/events", visitor_events, methods=["GET"]),
]

benchmark_routes = [Route("/v1/_baseline/agent/identify", discard_identify, methods=["POST"])]
