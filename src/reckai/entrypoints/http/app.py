"""The Litestar app factory: `create_app(container)` builds the whole HTTP surface from the
composition root it is given (the real one from `bootstrap(settings)`, or `bootstrap_in_memory()`
in tests). Nothing here reads the environment or opens a connection.

Routes come from four places: the health checks and docs page (here), the HTML pages behind mail
links (`pages.py`), and every feature module under `reckai.entrypoints.http.routes` (see its
docstring). docs/http.md describes the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from reckai.bootstrap import Container
from reckai.entrypoints.http.auth import AUTH_DEPENDENCIES, authorize_request, release_refused_hit
from reckai.entrypoints.http.docs import (
    DOCS_ROUTE_HANDLERS,
    SCHEMA_PATH,
    EnvelopedJsonRenderPlugin,
    schema_errors_as_envelope,
)
from reckai.entrypoints.http.envelope import provide_pagination
from reckai.entrypoints.http.errors import make_exception_handler
from reckai.entrypoints.http.health import DEFAULT_TIMEOUT_SECONDS, HealthController, HealthProbe
from reckai.entrypoints.http.middleware import RequestEdge, require_supported_media_type
from reckai.entrypoints.http.pages import pages_router
from reckai.entrypoints.http.request import (
    ReckaiRequest,
    refuse_nul_characters,
    refuse_unknown_query_parameters,
)
from reckai.entrypoints.http.routes import collect_routes
from reckai.settings import HttpSettings, SettingsError

# JSON bodies are small; a route that takes files raises its own limit with
# `request_max_body_size=` on the handler.
DEFAULT_MAX_BODY_BYTES = 1_048_576

CORS_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]
CORS_ALLOWED_HEADERS = ["Content-Type", "Authorization"]
CORS_EXPOSED_HEADERS = ["X-Request-ID", "Retry-After"]
CORS_MAX_AGE_SECONDS = 86400


class ReckaiApp(Litestar):
    """A Litestar app whose every HTTP exchange passes through the `RequestEdge` first (request id,
    security headers, request log), including 404s, 405s and CORS preflights that never reach a
    route handler's middleware."""

    def __init__(self, *, edge: RequestEdge, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.edge = edge

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        await self.edge(scope, receive, send, super().__call__)


def cors_config(http: HttpSettings) -> CORSConfig | None:
    """Spec §2.4 CORS: the listed origins only, with credentials. No origins, no CORS headers."""
    if not http.allowed_origins:
        return None
    if "*" in http.allowed_origins:
        raise SettingsError(
            "ALLOWED_ORIGINS must list origins; '*' is refused because credentials are allowed"
        )
    return CORSConfig(
        allow_origins=list(http.allowed_origins),
        allow_credentials=True,
        allow_methods=list(CORS_METHODS),  # type: ignore[arg-type]
        allow_headers=list(CORS_ALLOWED_HEADERS),
        expose_headers=list(CORS_EXPOSED_HEADERS),
        max_age=CORS_MAX_AGE_SECONDS,
    )


def create_app(
    container: Container,
    *,
    health_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    extra_route_handlers: Sequence[Any] = (),
) -> Litestar:
    http = container.settings.http
    routes = collect_routes()
    probe = HealthProbe(container.health_checks, timeout_seconds=health_timeout_seconds)

    def provide_container() -> Container:
        return container

    def provide_health_probe() -> HealthProbe:
        return probe

    return ReckaiApp(
        edge=RequestEdge(trusted_proxies=http.trusted_proxies),
        route_handlers=[HealthController, *DOCS_ROUTE_HANDLERS, *routes.handlers, *extra_route_handlers,
                        # The pages behind mail links (invitation, password reset): HTML forms.
                        pages_router(jwt_secret=container.settings.security.jwt_secret,
                                     secure_cookie=http.public_base_url.lower().startswith("https://"))],
        dependencies={
            "container": Provide(provide_container, sync_to_thread=False),
            "health_probe": Provide(provide_health_probe, sync_to_thread=False),
            "pagination": Provide(provide_pagination, sync_to_thread=False),
            **AUTH_DEPENDENCIES,  # principal, uow_factory, identity, request_info (docs/identity.md)
        },
        exception_handlers={Exception: make_exception_handler(routes.error_statuses)},
        # A request refused after it was counted in its route's tier gives the hit back (auth.py).
        after_exception=[release_refused_hit],
        # Authentication and the declared permission first (401/403 before anything reads the body).
        # Then bad input anywhere in the URL: a NUL character, a query parameter the route does not take.
        guards=[authorize_request, require_supported_media_type, refuse_nul_characters,
                refuse_unknown_query_parameters],
        cors_config=cors_config(http),
        openapi_config=OpenAPIConfig(
            title="ReckAI API",
            version="0.1.0",
            description="Multi-tenant reconciliation backend. Every answer uses the success or error envelope.",
            render_plugins=[EnvelopedJsonRenderPlugin()],
            use_handler_docstrings=True,  # a handler's docstring is its operation's description
            openapi_router=Router(path=SCHEMA_PATH, route_handlers=[], opt={"public": True}, include_in_schema=False,
                                  after_request=schema_errors_as_envelope),
        ),
        request_max_body_size=DEFAULT_MAX_BODY_BYTES,
        # JSON bodies nested too deeply are refused before any code walks them (request.py).
        request_class=ReckaiRequest,
        # Logging is configured by the entrypoint (reckai.logging_setup); Litestar must not add its own.
        logging_config=None,
        state=State({"container": container}),
        debug=False,
    )
