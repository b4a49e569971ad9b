"""The OpenAPI schema (`/schema/openapi.json`, served from this process) and a docs page (`/docs`).

The docs page is Swagger UI, whose script and stylesheet are vendored in this package
(`static/swagger-ui/`, with their licence) and served by this process, as is the schema it shows:
the page works on a network with no way out (docs/decisions/offline-api-docs.md). The page and its
start-up script are the only responses with a relaxed Content-Security-Policy: scripts from this
origin only, no inline script.

Litestar documents error responses in its own shape; `EnvelopedJsonRenderPlugin` rewrites every
4xx/5xx response of the schema to the error envelope the API really sends, and documents on every
operation the errors its shape and guards imply plus those its handler declares
(`opt={"errors": {...}}`). `tests/unit/test_openapi_documented.py` fails for an operation without a
summary or description, a body field without a description or example, or a missing error response.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute

from reckai.application.ports.rate_limit import TIERS
from reckai.entrypoints.http.auth import ALLOW_EXPIRED_PASSWORD, route_tiers
from reckai.entrypoints.http.envelope import ErrorEnvelope, error_envelope
from reckai.entrypoints.http.permissions import declared_permission, is_public

SCHEMA_PATH = "/schema"
OPENAPI_JSON_PATH = f"{SCHEMA_PATH}/openapi.json"
DOCS_PATH = "/docs"

SWAGGER_UI_VERSION = "5.17.14"  # the npm package swagger-ui-dist, vendored (docs/decisions/offline-api-docs.md)
SWAGGER_UI_DIRECTORY = Path(__file__).parent / "static" / "swagger-ui"
DOCS_STATIC_PATH = f"{DOCS_PATH}/static"

# Everything the page loads comes from this origin: a bank's network has no CDN.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    "script-src 'self'; "
    # Swagger UI sets inline style attributes; no inline script is allowed.
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "font-src 'self'; "
    "connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_DOCS_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ReckAI API</title>
<link rel="stylesheet" href="{DOCS_STATIC_PATH}/swagger-ui.css">
</head>
<body>
<noscript>The schema is at <a href="{OPENAPI_JSON_PATH}">{OPENAPI_JSON_PATH}</a>.</noscript>
<div id="swagger-ui"></div>
<script src="{DOCS_STATIC_PATH}/swagger-ui-bundle.js"></script>
<script src="{DOCS_PATH}/start.js"></script>
</body>
</html>
"""

_DOCS_SCRIPT = f"""window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{ url: "{OPENAPI_JSON_PATH}", dom_id: "#swagger-ui" }});
}});
"""

_DOCS_HEADERS = {"Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY}


@get(DOCS_PATH, include_in_schema=False, opt={"public": True}, media_type=MediaType.HTML)
async def docs_page() -> Response[str]:
    return Response(_DOCS_PAGE, media_type=MediaType.HTML, headers=_DOCS_HEADERS)


@get(f"{DOCS_PATH}/start.js", include_in_schema=False, opt={"public": True})
async def docs_script() -> Response[str]:
    return Response(_DOCS_SCRIPT, media_type="text/javascript; charset=utf-8", headers=_DOCS_HEADERS)


# Swagger UI's script, stylesheet, LICENSE and NOTICE (Apache-2.0), served from the package. A fixed
# list, read once: a request names one of these or gets the 404 envelope, and no path it sends ever
# reaches the filesystem (a static-files router answered an over-long name with a 500).
DOCS_STATIC_FILES = {
    "swagger-ui-bundle.js": "text/javascript",  # Litestar adds the charset
    "swagger-ui.css": "text/css",
    "LICENSE": "text/plain",
    "NOTICE": "text/plain",
}


@functools.cache
def _static_file(name: str) -> bytes:
    return (SWAGGER_UI_DIRECTORY / name).read_bytes()


@get(f"{DOCS_STATIC_PATH}/{{name:str}}", include_in_schema=False, opt={"public": True}, sync_to_thread=False)
def docs_static_file(name: str) -> Response[bytes]:
    media_type = DOCS_STATIC_FILES.get(name)
    if media_type is None:
        raise NotFoundException()
    return Response(_static_file(name), media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


DOCS_ROUTE_HANDLERS = [docs_page, docs_script, docs_static_file]


def _envelope_components() -> dict[str, Any]:
    (_,), components = msgspec.json.schema_components(
        [ErrorEnvelope], ref_template="#/components/schemas/{name}"
    )
    return components


# A route adds the errors its use case answers with (beyond the ones its shape implies, below) as
# `opt={"errors": {409: "FILE_STATE_CONFLICT: the file is already mapped ..."}}`.
ERRORS_OPT = "errors"


@dataclass(frozen=True)
class OperationFacts:
    """What the generated schema cannot say about an operation: who may call it."""

    public: bool
    permission: str | None
    rate_limits: tuple[str, ...]
    allows_expired_password: bool
    declared_errors: Mapping[int, str]


def operation_facts(app: Litestar) -> dict[tuple[str, str], OperationFacts]:
    """(OpenAPI path, lower-case method) -> the facts of its handler, for every HTTP route."""
    facts: dict[tuple[str, str], OperationFacts] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            declared = handler.opt.get(ERRORS_OPT) or {}
            for method in handler.http_methods:
                facts[(route.path_format, method.lower())] = OperationFacts(
                    public=is_public(handler), permission=declared_permission(handler),
                    rate_limits=route_tiers(handler), declared_errors=dict(declared),
                    allows_expired_password=bool(handler.opt.get(ALLOW_EXPIRED_PASSWORD)))
    return facts


def implied_errors(operation: Mapping[str, Any], facts: OperationFacts | None) -> dict[int, str]:
    """The error responses an operation can give because of its shape and the app's guards: every
    route can fail (500); a route with input can refuse it (400), a body can be too large or of the
    wrong type (413, 415); a path with an id can name nothing (404); a non-public route needs a
    token (401), a role with its permission (403) and stays within the rate limits (429)."""
    errors = {500: "INTERNAL_ERROR: an unexpected fault; quote the answer's X-Request-ID header when reporting it."}
    parameters = operation.get("parameters") or []
    has_body = "requestBody" in operation
    if has_body or parameters:
        errors[400] = ("VALIDATION_ERROR (a field or parameter breaks its type or rule; `details` names each), "
                       "MALFORMED_BODY or BAD_REQUEST.")
    if has_body:
        errors[413] = "PAYLOAD_TOO_LARGE: the body is larger than this route accepts."
        errors[415] = "UNSUPPORTED_MEDIA_TYPE: the body is not of the media type this route reads."
    if any(parameter.get("in") == "path" for parameter in parameters):
        errors[404] = ("NOT_FOUND: nothing with this id in the caller's organization (another organization's "
                       "resources are never revealed).")
    if facts is not None and not facts.public:
        errors[401] = "UNAUTHENTICATED: no bearer access token, or it is invalid, expired or revoked."
        needs = f"the `{facts.permission}` permission" if facts.permission else "a permission"
        expired = "" if facts.allows_expired_password else (
            "; PASSWORD_CHANGE_REQUIRED: the password has expired (change it first)")
        errors[403] = f"PERMISSION_DENIED: the caller's role lacks {needs}{expired}."
        tiers = " and ".join(f"the `{name}` tier ({TIERS[name].subject})" for name in facts.rate_limits)
        tier = f" and {tiers}" if tiers else ""
        errors[429] = (f"RATE_LIMITED: the `api` tier (per user){tier} is used up; retry after `Retry-After` "
                       "seconds.")
    for status, text in (facts.declared_errors.items() if facts is not None else ()):
        errors[int(status)] = f"{errors[int(status)]} Also {text}" if int(status) in errors else text
    return errors


def document_error_envelope(schema: dict[str, Any],
                            facts: Mapping[tuple[str, str], OperationFacts] | None = None) -> dict[str, Any]:
    """A copy of the OpenAPI document in which every operation lists the error responses it can
    give (`implied_errors`), each described and referencing `ErrorEnvelope`."""
    document: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(schema))
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(_envelope_components())
    reference = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            for status, description in implied_errors(operation, (facts or {}).get((path, method))).items():
                written = responses.get(str(status), {}).get("description")
                # Litestar's stock phrase is replaced; an operation's own words (an operation_class) stay.
                if not written or written in (HTTPStatus(status).description, HTTPStatus(status).phrase):
                    responses[str(status)] = {"description": description}
            for status, response in responses.items():
                if status[:1] in ("4", "5"):
                    response["content"] = {"application/json": {"schema": reference}}
    return document


def schema_errors_as_envelope(response: Response[Any]) -> Response[Any]:
    """`after_request` of the schema router: Litestar answers an unknown `/schema/...` path with
    its own HTML 404 page; the API answers every error with the envelope."""
    status = response.status_code or 200
    if status >= 400:
        return Response(error_envelope("NOT_FOUND", "Resource not found") if status == 404
                        else error_envelope("HTTP_ERROR", "The request could not be served"),
                        status_code=status, media_type=MediaType.JSON)
    return response


class EnvelopedJsonRenderPlugin(JsonRenderPlugin):
    def __init__(self) -> None:
        super().__init__(path=["/openapi.json"])
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            self._rendered = self.render_json(
                request, document_error_envelope(openapi_schema, operation_facts(request.app)))
        return self._rendered
