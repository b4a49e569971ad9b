"""Every operation of the generated OpenAPI document is documented well enough to use the API from
the docs alone (issue 16 item 8): a summary and a description, a description and an example for
every request-body field, and the error responses the route can give. A route added later fails
here with a message that says what to write and where."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from reckai.bootstrap import bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from reckai.entrypoints.http.permissions import is_public

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def document_and_public() -> tuple[dict[str, Any], set[tuple[str, str]]]:
    app = create_app(bootstrap_in_memory())
    public = {(route.path_format, method.lower()) for route in app.routes
              for handler in getattr(route, "route_handlers", ()) if is_public(handler)
              for method in handler.http_methods}
    with TestClient(app) as client:
        document = client.get("/schema/openapi.json").json()
    return document, public


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _field_problems(document: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]) -> list[str]:
    """Walk a body schema: every property of every object reached (through $ref, arrays, unions)
    needs a description and an example."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return _field_problems(document, _resolve(document, schema), name, seen)
    problems: list[str] = []
    for key in ("oneOf", "anyOf", "allOf"):
        for option in schema.get(key, []):
            problems += _field_problems(document, option, where, seen)
    if "items" in schema:
        problems += _field_problems(document, schema["items"], where, seen)
    for field, definition in schema.get("properties", {}).items():
        missing = [what for what, present in (("a description", definition.get("description")),
                                              ("an example", definition.get("examples") or "example" in definition))
                   if not present]
        if missing:
            problems.append(f"body field {where}.{field} has no {' and no '.join(missing)} "
                            f"(annotate it: Annotated[type, msgspec.Meta(description=..., examples=[...])])")
        problems += _field_problems(document, definition, where, seen)
    return problems


def _expected_errors(operation: dict[str, Any], public: bool) -> set[int]:
    expected = {500}
    parameters = operation.get("parameters") or []
    if parameters or "requestBody" in operation:
        expected.add(400)
    if "requestBody" in operation:
        expected |= {413, 415}
    if any(parameter.get("in") == "path" for parameter in parameters):
        expected.add(404)
    if not public:
        expected |= {401, 403, 429}
    return expected


def test_the_document_has_operations(document_and_public: tuple[dict[str, Any], set[tuple[str, str]]]) -> None:
    document, _ = document_and_public
    assert len(_operations(document)) >= 60
    assert not [path for path in document["paths"] if path.startswith("/schema")]


def test_every_operation_body_field_and_error_is_documented(
        document_and_public: tuple[dict[str, Any], set[tuple[str, str]]]) -> None:
    document, public = document_and_public
    problems: list[str] = []
    for path, method, operation in _operations(document):
        name = f"{method.upper()} {path}"
        summary = str(operation.get("summary") or "")
        if " " not in summary.strip():
            problems.append(f"{name}: summary {summary!r} is the generated handler name; "
                            "give the route decorator summary=\"...\" (a short phrase)")
        if len(str(operation.get("description") or "").strip()) < 20:
            problems.append(f"{name}: no description; write the handler's docstring (what it does, "
                            "for whom, what it answers)")
        body = operation.get("requestBody")
        if body:
            for content in body.get("content", {}).values():
                problems += [f"{name}: {problem}" for problem in
                             _field_problems(document, content.get("schema", {}), "body", set())]
        responses = operation.get("responses", {})
        for status in sorted(_expected_errors(operation, (path, method) in public)):
            response = responses.get(str(status))
            if response is None:
                problems.append(f"{name}: error response {status} is not documented")
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") != "#/components/schemas/ErrorEnvelope":
                problems.append(f"{name}: error response {status} does not reference ErrorEnvelope")
            if len(str(response.get("description") or "")) < 15:
                problems.append(f"{name}: error response {status} has no description naming its error codes")
    assert not problems, "OpenAPI documentation gaps (docs/http.md, 'OpenAPI and docs page'):\n" + "\n".join(problems)


def test_a_route_declared_error_is_documented_with_its_words(
        document_and_public: tuple[dict[str, Any], set[tuple[str, str]]]) -> None:
    document, _ = document_and_public
    upload = document["paths"]["/api/files/{file_id}/map"]["post"]["responses"]
    assert "FILE_VERSION_CONFLICT" in upload["409"]["description"]
