"""The request edge: what every HTTP exchange gets, whatever route (or no route) answers it.

Litestar applies app-level middleware per route handler, so an unknown path (404), a wrong method
(405) or a CORS preflight would bypass it. `RequestEdge` therefore runs around the whole app (see
`app.ReckaiApp.__call__`) and, for every HTTP request:

- accepts a well-formed incoming `X-Request-ID` or makes a UUID, keeps it in `scope["state"]`
  (`request.state.request_id`) and answers it in the `X-Request-ID` header;
- works out the client address (honouring `X-Forwarded-For` only from trusted proxies) into
  `scope["state"]["client_ip"]`, which rate limiting and audit reuse;
- adds the security headers (restrictive CSP unless the route set its own, nosniff, DENY,
  no-referrer, HSTS, `Cache-Control: no-store` unless the route set its own);
- logs one `http.request` line with method, path (no query string: it may carry tokens; a token
  in the path, such as the download URL's, redacted: `safe_path`), status,
  duration and request id, plus the organization and user that authentication leaves in
  `scope["state"]["organization_id"]` / `["user_id"]`. Bodies are never logged.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.handlers import BaseRouteHandler
from litestar.params import BodyKwarg

from reckai.domain.audit.redaction import is_secret_key, redact_path
from reckai.logging_setup import LogContext, log_context, log_event

logger = logging.getLogger("reckai.http")

REQUEST_ID_HEADER = "X-Request-ID"
# Accepted as given only when short and plain: it is echoed in headers and written to logs.
_WELL_FORMED_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("strict-transport-security", "max-age=31536000; includeSubDomains"),
)
# §8.3 alerts on API responses slower than 2 s; such requests are logged at WARN (§4.1).
SLOW_REQUEST_MS = 2000.0

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Inner = Callable[[Any, Any, Any], Awaitable[None]]


def _networks(entries: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


@dataclass(frozen=True)
class RequestEdge:
    trusted_proxies: tuple[str, ...] = ()
    slow_request_ms: float = SLOW_REQUEST_MS
    _proxy_networks: tuple[Any, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_proxy_networks", _networks(self.trusted_proxies))

    async def __call__(self, scope: Scope, receive: Receive, send: Send, inner: Inner) -> None:
        started = time.perf_counter()
        headers = _header_map(scope)
        request_id = _request_id_from(headers.get("x-request-id"))
        client_ip = self.client_ip(scope, headers.get("x-forwarded-for"))
        user_agent = headers.get("user-agent")
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_ip"] = client_ip
        outcome = {"status": 0}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                response_headers = MutableScopeHeaders(cast("Any", message))
                response_headers[REQUEST_ID_HEADER] = request_id
                if "content-security-policy" not in response_headers:
                    response_headers["content-security-policy"] = API_CONTENT_SECURITY_POLICY
                if "cache-control" not in response_headers:
                    response_headers["cache-control"] = "no-store"
                for name, value in SECURITY_HEADERS:
                    response_headers[name] = value
            await send(message)

        context = LogContext(request_id=request_id, ip_address=client_ip, user_agent=user_agent)
        with log_context(context):
            try:
                await inner(scope, receive, send_with_headers)
            except BaseException:
                outcome["status"] = outcome["status"] or 500
                raise
            finally:
                self._log_request(scope, state, outcome["status"], started)

    def client_ip(self, scope: Scope, forwarded_for: str | None) -> str | None:
        client = scope.get("client")
        peer = client[0] if client else None
        if not forwarded_for or not self._proxy_networks or not self._is_trusted(peer):
            return peer
        # Walk X-Forwarded-For from the nearest hop; the first address not ours is the client.
        for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
            if not self._is_trusted(hop):
                return hop if _is_ip(hop) else peer
        return peer

    def _is_trusted(self, address: str | None) -> bool:
        if not address or not _is_ip(address):
            return False
        parsed = ipaddress.ip_address(address)
        return any(parsed in network for network in self._proxy_networks)

    def _log_request(self, scope: Scope, state: dict[str, Any], status: int, started: float) -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        level = logging.WARNING if status >= 500 or duration_ms > self.slow_request_ms else logging.INFO
        path = safe_path(scope)
        log_event(
            logger,
            "http.request",
            level=level,
            message=f"{scope.get('method')} {path} {status} {duration_ms}ms",
            organization_id=state.get("organization_id"),
            user_id=state.get("user_id"),
            metadata={
                "method": scope.get("method"),
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "request_id": state.get("request_id"),
            },
        )


def safe_path(scope: Scope) -> str:
    """The request's path (no query string) fit for a log line or an audit row: path parameters
    with a secret-looking name (`{token}`) and segments that are signed tokens are redacted."""
    params = scope.get("path_params") or {}
    secrets = tuple(str(value) for name, value in params.items()
                    if value and not isinstance(value, uuid.UUID) and not _is_uuid(str(value))
                    and is_secret_key(str(name)))
    return redact_path(str(scope.get("path") or ""), secret_values=secrets)


def _is_uuid(text: str) -> bool:
    """An id (a session's, a file's) is no secret, whatever its parameter is called."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _header_map(scope: Scope) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        if name not in values:
            values[name] = raw_value.decode("latin-1")
    return values


def _request_id_from(incoming: str | None) -> str:
    if incoming and _WELL_FORMED_REQUEST_ID.match(incoming):
        return incoming
    return str(uuid.uuid4())


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# --- 415: request bodies must be of a media type the handler reads ---------------------------

JSON_MEDIA_TYPE = "application/json"
MEDIA_TYPES_OPT = "media_types"


def accepted_media_types(handler: BaseRouteHandler) -> tuple[str, ...]:
    """`opt={"media_types": [...]}` if the handler says; else what its `data` parameter is declared
    as (`Body(media_type=RequestEncodingType.MULTI_PART)` for uploads); else JSON."""
    declared = handler.opt.get(MEDIA_TYPES_OPT)
    if declared:
        return tuple(str(item).lower() for item in declared)
    data = handler.parsed_fn_signature.parameters.get("data")
    kwarg = getattr(data, "kwarg_definition", None)
    if isinstance(kwarg, BodyKwarg):
        return (str(getattr(kwarg.media_type, "value", kwarg.media_type)).lower(),)
    return (JSON_MEDIA_TYPE,)


def require_supported_media_type(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """App-level guard: a request that carries a body must say it is a media type the handler reads
    (JSON unless declared otherwise), or it gets 415 before anything parses it."""
    if connection.scope["type"] != ScopeType.HTTP:
        return
    content_length = connection.headers.get("content-length")
    has_body = bool(connection.headers.get("transfer-encoding")) or (
        content_length is not None and content_length.strip() not in ("", "0")
    )
    if not has_body:
        return
    media_type = connection.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    accepted = accepted_media_types(handler)
    if media_type in accepted:
        return
    if JSON_MEDIA_TYPE in accepted and media_type.startswith("application/") and media_type.endswith("+json"):
        return
    raise HTTPException(status_code=415, detail=f"Content-Type must be {' or '.join(accepted)}")
