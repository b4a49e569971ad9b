"""Authentication and authorization for every route (docs/identity.md, "HTTP guard").

`authorize_request` is an app-level guard. For a route that declares `opt={"public": True}` it
does nothing. For every other route it requires `Authorization: Bearer <access token>` and:

1. verifies the token (signature by `kid`, algorithm, `aud`, `iss`, `typ`, `exp`, claims), that its
   `jti` is not blacklisted, and that the user and the organization are active *now* and the
   user's token version equals the token's: deactivation, role change and password change take
   effect on the next request (401 UNAUTHENTICATED otherwise);
2. puts the caller in `request.state.principal` (a `reckai.domain.identity.principal.Principal`)
   and `scope["state"]["organization_id"]` / `["user_id"]` for the request log;
3. refuses every route but those marked `opt={"allow_expired_password": True}` (password change,
   logout, own profile) while the password has expired: 403 PASSWORD_CHANGE_REQUIRED;
4. counts the request in the `api` rate-limit tier (100/min per user by default; the limits are
   settings, an organization may override some: domain/settings_registry.py): 429 with Retry-After;
5. checks the declared `opt={"permission": P}` against the permission matrix with the user's
   *current* role: 403 PERMISSION_DENIED, audited as `authz.denied` in its own transaction.
   A route that declares neither permission nor public is refused (deny by default);
6. when the route says `opt={"rate_limit": "upload"}` (or "report", or a tuple such as
   `("export", "export_organization")`), counts it in those tiers too, per user or, for a tier whose
   subject is the organization, per organization (429); if the request is refused afterwards
   (`release_refused_hit`, an after-exception hook), the hits are given back: only accepted uploads
   use up the allowance.

Handlers take the caller with `principal: NamedDependency[Principal]`, a unit-of-work factory
bound to the caller's organization with `uow_factory: NamedDependency[TenantUnitOfWorkFactory]`
(`with uow_factory() as uow: ...`: row-level security limits it to the caller's tenant), and the
identity services with `identity: NamedDependency[IdentityServices]`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import anyio.to_thread
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.handlers import BaseRouteHandler

from reckai.application.context import Outcome, RequestInfo
from reckai.application.errors import PermissionDenied, Unauthenticated
from reckai.application.identity.authenticate import AuthenticatedCaller, authenticate_access_token
from reckai.application.identity.common import IdentityServices
from reckai.application.identity.errors import PasswordChangeRequired
from reckai.application.ports.rate_limit import ORGANIZATION_SUBJECT, TIERS
from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.bootstrap import Container
from reckai.domain.identity.devices import DEVICE_ID_HEADER
from reckai.domain.identity.permissions import has_permission
from reckai.domain.identity.principal import Principal
from reckai.entrypoints.http.audit_status import audit_status
from reckai.entrypoints.http.middleware import safe_path
from reckai.entrypoints.http.permissions import declared_permission, is_public
from reckai.logging_setup import bind_actor

logger = logging.getLogger("reckai.http.auth")

ALLOW_EXPIRED_PASSWORD = "allow_expired_password"
RATE_LIMIT = "rate_limit"
STATE_PRINCIPAL = "principal"
STATE_ACCESS_EXPIRES_AT = "access_expires_at"
STATE_ROUTE_TIER_HIT = "route_tier_hit"


def app_container(connection: ASGIConnection[Any, Any, Any, Any]) -> Container:
    """The composition root this app was built with (`create_app(container)`)."""
    container = connection.app.state["container"]
    if not isinstance(container, Container):
        raise TypeError("the application state holds no Container")
    return container


def request_info(connection: ASGIConnection[Any, Any, Any, Any]) -> RequestInfo:
    headers = connection.headers
    state = connection.scope.get("state", {})
    client = connection.scope.get("client")
    return RequestInfo(
        ip_address=_valid_ip(state.get("client_ip") or (client[0] if client else None)),
        user_agent=headers.get("user-agent"),
        accept_language=headers.get("accept-language"),
        device_id=headers.get(DEVICE_ID_HEADER.lower()),
        method=str(connection.scope.get("method") or "") or None,
        path=safe_path(cast("Any", connection.scope)) or None,
        request_id=state.get("request_id"),
        statuses=audit_status,
    )


def _valid_ip(text: str | None) -> str | None:
    """Only an IP address is recorded (the column is INET); a test client's "testclient" is not."""
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authorize_request(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    if connection.scope["type"] != ScopeType.HTTP or is_public(handler):
        return
    if set(getattr(handler, "http_methods", ())) == {"OPTIONS"}:
        return  # Litestar's automatic OPTIONS answer (CORS preflight): no business data
    permission = declared_permission(handler)
    token = bearer_token(connection)
    if token is None:
        raise Unauthenticated("Authentication required: send Authorization: Bearer <access token>",
                              reason="missing_token")
    services = app_container(connection).identity
    caller: AuthenticatedCaller = await anyio.to_thread.run_sync(authenticate_access_token, services, token)
    principal = caller.principal
    state = connection.scope.setdefault("state", {})
    state[STATE_PRINCIPAL] = principal
    state[STATE_ACCESS_EXPIRES_AT] = caller.access_expires_at
    state["organization_id"] = str(principal.organization_id)
    state["user_id"] = str(principal.user_id)
    bind_actor(principal.organization_id, principal.user_id)
    if caller.password_expired and not handler.opt.get(ALLOW_EXPIRED_PASSWORD):
        raise PasswordChangeRequired()
    limits = caller.organization_settings
    await anyio.to_thread.run_sync(services.limit, "api", str(principal.user_id), limits)
    if permission is None or not has_permission(principal.role, permission):
        await anyio.to_thread.run_sync(_audit_denied, services, request_info(connection), principal, permission)
        raise PermissionDenied(permission)
    counted: list[tuple[str, str, str]] = []
    state[STATE_ROUTE_TIER_HIT] = counted  # a later refusal (this guard's included) gives these back
    for tier in route_tiers(handler):
        subject = str(principal.organization_id if TIERS[tier].subject == ORGANIZATION_SUBJECT else principal.user_id)
        hit_id = await anyio.to_thread.run_sync(services.limit, tier, subject, limits)
        if hit_id is not None:
            counted.append((tier, subject, hit_id))


def route_tiers(handler: BaseRouteHandler) -> tuple[str, ...]:
    """The route's own rate-limit tiers: `opt={"rate_limit": "upload"}` or a tuple of tiers
    (`("export", "export_organization")`: per user and per organization)."""
    declared = handler.opt.get(RATE_LIMIT)
    if not declared:
        return ()
    return (str(declared),) if isinstance(declared, str) else tuple(str(tier) for tier in declared)


async def release_refused_hit(exc: Exception, scope: Any) -> None:
    """After-exception hook: a request refused after it was counted in its route's own tier
    (upload, report, export, export_organization) gives its hits back, so refused uploads do not use up the hourly allowance
    (issue 16). Every request still counts in the `api` tier."""
    counted = scope.get("state", {}).pop(STATE_ROUTE_TIER_HIT, None)
    if not counted:
        return
    container = scope["app"].state["container"]
    if isinstance(container, Container):
        for hit in counted:
            await anyio.to_thread.run_sync(container.identity.release, *hit)


def _audit_denied(services: IdentityServices, request: RequestInfo, principal: Principal, permission: str | None) -> None:
    services.audit_log.record_independently(services.event(
        "authz.denied", request, organization_id=principal.organization_id, user_id=principal.user_id,
        outcome=Outcome.DENIED, metadata={"permission": permission, "role": principal.role}))


# --- dependencies -----------------------------------------------------------------------------


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = request.scope.get("state", {}).get(STATE_PRINCIPAL)
    if not isinstance(principal, Principal):
        # A public route asked for the caller: a programming error, not the client's.
        raise Unauthenticated("Authentication required", reason="no_principal_on_public_route")
    return principal


@dataclass(frozen=True)
class TenantUnitOfWorkFactory:
    """`uow_factory()` opens a new unit of work bound to the caller's organization."""

    database: Any
    organization_id: Any

    def __call__(self) -> UnitOfWork:
        unit_of_work: UnitOfWork = self.database.unit_of_work(self.organization_id)
        return unit_of_work


def provide_uow_factory(request: Request[Any, Any, Any]) -> TenantUnitOfWorkFactory:
    principal = provide_principal(request)
    return TenantUnitOfWorkFactory(app_container(request).database, principal.organization_id)


def provide_identity(request: Request[Any, Any, Any]) -> IdentityServices:
    return app_container(request).identity


def provide_request_info(request: Request[Any, Any, Any]) -> RequestInfo:
    return request_info(request)


AUTH_DEPENDENCIES: dict[str, Provide] = {
    "principal": Provide(provide_principal, sync_to_thread=False),
    "uow_factory": Provide(provide_uow_factory, sync_to_thread=False),
    "identity": Provide(provide_identity, sync_to_thread=False),
    "request_info": Provide(provide_request_info, sync_to_thread=False),
}

GUARDS: list[Callable[..., Any]] = [authorize_request]
