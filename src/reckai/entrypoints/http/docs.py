"""The OpenAPI schema (`/schema/openapi.json`, served from this process) and a docs page (`/docs`).

The docs page is Swagger UI, whose script and stylesheet are vendored in this package
(`static/swagger-ui/`, with their licence) and served by this process, as is the schema it shows:
the page works on a network with no way out (docs/decisions/offline-api-docs.md). The page and its
start-up script are the only responses with a relaxed Content-Security-Policy: scripts from this
origin only, no inline script.

Litestar documents error responses in its own shape; `EnvelopedJsonRenderPlugin` rewrites every
4xx/5xx response of the schema to the error envelope the API really sends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router
from litestar.openapi.plugins import JsonRenderPlugin

from reckai.entrypoints.http.envelope import ErrorEnvelope, error_envelope

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


# Swagger UI's script, stylesheet, LICENSE and NOTICE (Apache-2.0), served from the package.
docs_static_files = create_static_files_router(
    path=DOCS_STATIC_PATH, directories=[SWAGGER_UI_DIRECTORY], opt={"public": True}, include_in_schema=False,
    cache_control=CacheControlHeader(max_age=86400, public=True), name="docs_static",
)

DOCS_ROUTE_HANDLERS = [docs_page, docs_script, docs_static_files]


def _envelope_components() -> dict[str, Any]:
    (_,), components = msgspec.json.schema_components(
        [ErrorEnvelope], ref_template="#/components/schemas/{name}"
    )
    return components


def document_error_envelope(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of the OpenAPI document whose error responses all reference `ErrorEnvelope`."""
    document: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(schema))
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(_envelope_components())
    reference = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status[:1] in ("4", "5"):
                    response["content"] = {"application/json": {"schema": reference}}
            responses.setdefault(
                "500",
                {"description": "Internal error", "content": {"application/json": {"schema": reference}}},
            )
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
            self._rendered = self.render_json(request, document_error_envelope(openapi_schema))
        return self._rendered
