"""The API docs page needs nothing but this app (issue 16 item 8): Swagger UI's script and
stylesheet are vendored with their licence and served from a fixed list. The browser-level proof
(every operation rendered, no request to another host) is tests/integration/test_browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from reckai.entrypoints.http.docs import DOCS_CONTENT_SECURITY_POLICY, DOCS_STATIC_FILES, SWAGGER_UI_DIRECTORY


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(bootstrap_in_memory())) as client:
        yield client


def test_the_page_and_its_policy_name_no_other_host(client: TestClient) -> None:
    page = client.get("/docs").text
    assert not re.findall(r"(?:src|href)=\"(?:https?:)?//", page)
    assert "http" not in DOCS_CONTENT_SECURITY_POLICY
    for source in re.findall(r"(?:src|href)=\"([^\"]+)\"", page):
        assert client.get(source).status_code == 200, source


def test_the_vendored_files_are_served_with_their_licence(client: TestClient) -> None:
    assert sorted(path.name for path in SWAGGER_UI_DIRECTORY.iterdir()) == sorted(DOCS_STATIC_FILES)
    script = client.get("/docs/static/swagger-ui-bundle.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in script.text
    assert "Apache License" in client.get("/docs/static/LICENSE").text
    assert "SmartBear" in client.get("/docs/static/NOTICE").text


@pytest.mark.parametrize("name", ["swagger-ui.css.map", "..%2Fdocs.py", "x" * 300, "index.html"])
def test_any_other_name_is_the_404_envelope(client: TestClient, name: str) -> None:
    # an over-long name made Litestar's static-files router answer 500 (found by the API fuzzer)
    answer = client.get(f"/docs/static/{name}")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"
