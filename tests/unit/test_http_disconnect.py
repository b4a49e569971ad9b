"""A client that hangs up before its body is complete gets 400 REQUEST_INTERRUPTED on every route,
never a 500 (Litestar reports `http.disconnect` as an InternalServerException)."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
import pytest

from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.http.app import create_app


def post_then_disconnect(app: Any, path: str) -> tuple[int | None, dict[str, Any] | None]:
    events: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"organization_code": "AC', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if events:
            return events.pop(0)
        await anyio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"test"), (b"content-type", b"application/json"), (b"content-length", b"500")],
        "state": {},
    }
    anyio.run(app, scope, receive, send)
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return (start["status"] if start else None), (msgspec.json.decode(body) if body else None)


@pytest.mark.parametrize("path", ["/api/auth/login", "/api/organizations"])
def test_body_cut_short_by_the_client_is_a_400_envelope(path: str) -> None:
    container = bootstrap_in_memory()
    try:
        status, payload = post_then_disconnect(create_app(container), path)
    finally:
        container.close()
    assert status == 400
    assert payload is not None
    assert payload["success"] is False
    assert payload["error"]["code"] == "REQUEST_INTERRUPTED"
