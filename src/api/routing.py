"""One route per path: the endpoint modules declare a route per method, and a path served by
several of them is merged here into one route that dispatches on the method. Starlette answers
a method no route takes with the `Allow` header of the first route whose path matches, so
without the merge a 405 would list only that route's methods."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

Endpoint = Callable[[Request], Awaitable[Response]]


def _dispatcher(handlers: dict[str, Endpoint]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return endpoint


def merged(routes: list[BaseRoute]) -> list[Route]:
    """The routes with one Route per path, in the order each path first appears."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for route in routes:
        assert isinstance(route, Route) and route.methods, route
        handlers = by_path.setdefault(route.path, {})
        for method in route.methods - {"HEAD"}:
            assert method not in handlers, (route.path, method)
            handlers[method] = route.endpoint
    out = []
    for path, handlers in by_path.items():
        if len(handlers) == 1:
            ((method, endpoint),) = handlers.items()
            out.append(Route(path, endpoint, methods=[method]))
        else:
            out.append(Route(path, _dispatcher(handlers), methods=list(handlers)))
    return out
