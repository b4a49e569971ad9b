"""How a route declares who may call it; the identity feature's guards read these declarations.

Convention (route handler or controller `opt`, inherited down the layers):

- `opt={"permission": "reconciliations:write"}`: the caller must hold this permission (names as
  in spec §2.2, `resource:action`).
- `opt={"public": True}`: no authentication (health checks, docs, login, sign-up).

A route with neither is a mistake; `undeclared_routes(app)` lists them so a test can walk the app
and fail on any route that forgot to say.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.handlers import BaseRouteHandler
from litestar.routes import HTTPRoute

PERMISSION = "permission"
PUBLIC = "public"


def declared_permission(handler: BaseRouteHandler) -> str | None:
    permission = handler.opt.get(PERMISSION)
    return permission if isinstance(permission, str) and permission else None


def is_public(handler: BaseRouteHandler) -> bool:
    return handler.opt.get(PUBLIC) is True


def undeclared_routes(app: Litestar) -> list[str]:
    """`"METHOD /path"` of every HTTP route whose handler declares neither a permission nor public."""
    missing: list[str] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if set(handler.http_methods) == {"OPTIONS"}:
                continue  # Litestar's automatic OPTIONS (CORS preflight) answer, not a business route
            if declared_permission(handler) is None and not is_public(handler):
                methods: Any = sorted(handler.http_methods)
                missing.extend(f"{method} {route.path}" for method in methods)
    return sorted(missing)
