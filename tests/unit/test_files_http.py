"""The file API over HTTP on the in-memory container (tests/integration/test_files_http_services.py
runs the same flow against PostgreSQL, a real S3 server and a real clamd)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from litestar.testing import TestClient

from reckai.adapters.memory.scanner import EICAR, InMemoryScanner
from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.domain.ingestion.storage_keys import organization_prefix
from reckai.entrypoints.http.app import create_app
from tests.support.files_corpus import EXPLICIT_MAPPING, GOOD_CSV, UNPARSEABLE_CSV, BadFile, refused_at_upload
from tests.support.identity import bearer, create_user_with_role, login, onboard

BOUNDARY = "reckai-test-boundary"


def multipart(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    """Encode (name, filename, value) parts in the given order."""
    out = bytearray()
    for name, filename, value in parts:
        out += f"--{BOUNDARY}\r\n".encode()
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + value + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


MULTIPART_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


class Api:
    def __init__(self, client: TestClient, container: Container) -> None:
        self.client = client
        self.container = container
        self.org_id, admin = onboard(client)
        self.token = login(client, admin.org_code, admin.email, admin.password)

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)

    def upload(self, data: bytes, filename: str = "bank.csv", file_type: str = "bank", token: str | None = None) -> Any:
        return self.client.post("/api/files/upload", data={"file_type": file_type},
                                files={"file": (filename, data, "text/csv")}, headers=bearer(token or self.token))

    def org_keys(self) -> list[str]:
        return list(self.container.storage.list_keys(organization_prefix(self.org_id)))

    def used_bytes(self) -> int:
        with self.container.database.unit_of_work(self.org_id) as uow:
            return int(uow.files.total_size_bytes())

    def set_quota(self, **limits: int) -> None:
        with self.container.database.unit_of_work(self.org_id) as uow:
            uow.quotas.update(dataclasses.replace(uow.quotas.get(self.org_id), **limits))
            uow.commit()


@pytest.fixture
def api() -> Iterator[Api]:
    container = bootstrap_in_memory(scanner=InMemoryScanner())
    with TestClient(create_app(container)) as client:
        yield Api(client, container)


def error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False
    return body["error"]  # type: ignore[no-any-return]


def test_upload_get_map_download_delete(api: Api) -> None:
    uploaded = api.upload(GOOD_CSV)
    assert uploaded.status_code == 201, uploaded.text
    data = uploaded.json()["data"]
    assert (data["format"], data["kind"], data["status"], data["size_bytes"]) == ("csv", "csv", "uploaded", len(GOOD_CSV))
    assert data["transformation_rules"]["fields"]["amount"]["column"] == "amount"
    assert data["missing_required"] == [] and data["duplicate"] is False
    file_id = data["id"]

    mapped = api.client.post(f"/api/files/{file_id}/map", json={}, headers=api.auth)
    assert mapped.status_code == 200, mapped.text
    assert mapped.json()["data"]["status"] == "normalized" and mapped.json()["data"]["normalized"]["row_count"] == 2

    link = api.client.get(f"/api/files/{file_id}/download", headers=api.auth)
    assert link.status_code == 200
    path = link.json()["data"]["url"].split("127.0.0.1:8000", 1)[1]
    downloaded = api.client.get(path)
    assert downloaded.status_code == 200 and downloaded.content == GOOD_CSV
    assert downloaded.headers["content-disposition"].startswith('attachment; filename="bank.csv"')

    removed = api.client.delete(f"/api/files/{file_id}", headers=api.auth)
    assert removed.status_code == 200
    assert api.client.get(f"/api/files/{file_id}", headers=api.auth).status_code == 404
    assert api.client.get(path).status_code == 404
    assert api.org_keys() == []


@pytest.mark.parametrize("bad", refused_at_upload(), ids=lambda b: b.name)
def test_bad_files_get_a_clear_error_envelope_and_leave_nothing(api: Api, bad: BadFile) -> None:
    response = api.upload(bad.data, filename=bad.filename)
    assert response.status_code == 422, response.text
    assert error(response)["code"] == bad.code and len(error(response)["message"]) > 15
    assert api.org_keys() == [] and api.used_bytes() == 0


def test_infected_upload_is_refused(api: Api) -> None:
    response = api.upload(b"a,b\n" + EICAR + b"\n")
    assert response.status_code == 422 and error(response)["code"] == "FILE_INFECTED"
    assert api.org_keys() == [] and list(api.container.storage.list_keys("quarantine"))


def test_form_problems_are_validation_errors(api: Api) -> None:
    no_file = api.client.post("/api/files/upload", content=multipart([("file_type", None, b"bank")]),
                              headers={**api.auth, **MULTIPART_HEADERS})
    assert no_file.status_code == 400 and error(no_file)["details"][0]["field"] == "file"
    bad_type = api.upload(GOOD_CSV, file_type="ledger")
    assert bad_type.status_code == 400 and error(bad_type)["details"][0]["field"] == "file_type"
    field_after_file = api.client.post(
        "/api/files/upload", content=multipart([("file_type", None, b"bank"), ("file", "a.csv", GOOD_CSV),
                                                ("job_id", None, b"x")]),
        headers={**api.auth, **MULTIPART_HEADERS})
    assert field_after_file.status_code == 400, field_after_file.text
    assert "before the file" in error(field_after_file)["details"][0]["message"]
    broken = api.client.post("/api/files/upload", content=b"--nope\r\n garbage",
                             headers={**api.auth, **MULTIPART_HEADERS})
    assert broken.status_code == 400
    json_body = api.client.post("/api/files/upload", json={"file": "x"}, headers=api.auth)
    assert json_body.status_code == 415
    unknown_job = api.client.post("/api/files/upload", data={"file_type": "bank", "job_id": str(uuid.uuid4())},
                                  files={"file": ("a.csv", GOOD_CSV)}, headers=api.auth)
    assert unknown_job.status_code == 400 and error(unknown_job)["details"][0]["field"] == "job_id"
    assert api.org_keys() == [] and api.used_bytes() == 0


def test_upload_above_max_file_size_is_413(api: Api) -> None:
    api.set_quota(max_file_size_mb=1)
    announced = api.upload(b"a,b\n" + b"1,2\n" * (300 * 1024))
    assert announced.status_code == 413 and error(announced)["code"] == "PAYLOAD_TOO_LARGE"
    pulled = []
    chunks = [multipart([("file_type", None, b"bank")])[: -len(f"--{BOUNDARY}--\r\n")],
              f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'.encode(),
              *[b"1,2\n" * (128 * 1024)] * 8, f"\r\n--{BOUNDARY}--\r\n".encode()]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:  # the ASGI server's side: one body chunk per call, no Content-Length
        pulled.append(1)
        index = len(pulled) - 1
        return {"type": "http.request", "body": chunks[index], "more_body": index < len(chunks) - 1}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/files/upload", "raw_path": b"/api/files/upload", "query_string": b"", "root_path": "",
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "state": {},
             "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {api.token}".encode()),
                         (b"content-type", MULTIPART_HEADERS["Content-Type"].encode())]}
    anyio.run(api.client.app, scope, receive, send)
    assert sent[0]["status"] == 413
    assert len(pulled) < len(chunks) - 2, "the body was read to the end before the limit was applied"
    assert api.org_keys() == [] and api.used_bytes() == 0


def test_a_larger_quota_lifts_the_app_wide_1_mib_limit(api: Api) -> None:
    big = b"date,amount,currency,reference,narration\n" + b"2024-01-02,1.00,NGN,123456789012,POS\n" * 60_000
    assert len(big) > 2 * 1024 * 1024
    response = api.upload(big)
    assert response.status_code == 201, response.text[:300]


def test_mapping_errors_over_http(api: Api) -> None:
    file_id = api.upload(UNPARSEABLE_CSV).json()["data"]["id"]
    unknown = api.client.post(f"/api/files/{file_id}/map",
                              json={"transformation_rules": {**EXPLICIT_MAPPING, "colour": "red"}}, headers=api.auth)
    assert unknown.status_code == 400
    assert error(unknown)["details"][0]["field"] == "transformation_rules.mapping"
    extra_body_key = api.client.post(f"/api/files/{file_id}/map", json={"rules": {}}, headers=api.auth)
    assert extra_body_key.status_code == 400
    failed = api.client.post(f"/api/files/{file_id}/map", json={"transformation_rules": EXPLICIT_MAPPING},
                             headers=api.auth)
    assert failed.status_code == 422 and error(failed)["code"] == "NORMALIZATION_FAILED"
    assert any(d["field"].startswith("rows.2.") for d in error(failed)["details"])
    shown = api.client.get(f"/api/files/{file_id}", headers=api.auth).json()["data"]
    assert shown["status"] == "error" and shown["error_message"]
    assert any(e["row_number"] == 2 and e["column"] == "amount" and e["value"] == "12abc"
               for e in shown["error_report"]["errors"])


def test_permissions_and_authentication(api: Api) -> None:
    file_id = api.upload(GOOD_CSV).json()["data"]["id"]
    assert api.client.get(f"/api/files/{file_id}").status_code == 401
    _, auditor = create_user_with_role(api.client, api.token, "auditor")
    assert api.client.get(f"/api/files/{file_id}", headers=bearer(auditor)).status_code == 200
    assert api.upload(GOOD_CSV, token=auditor).status_code == 403
    assert api.client.delete(f"/api/files/{file_id}", headers=bearer(auditor)).status_code == 403
    other = Api(api.client, api.container)
    assert api.client.get(f"/api/files/{file_id}", headers=other.auth).status_code == 404


def test_download_token_route_refuses_forged_links(api: Api) -> None:
    file_id = api.upload(GOOD_CSV).json()["data"]["id"]
    url = api.client.get(f"/api/files/{file_id}/download", headers=api.auth).json()["data"]["url"]
    path = url.split("127.0.0.1:8000", 1)[1]
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    response = api.client.get(forged)
    assert response.status_code == 403 and error(response)["code"] == "DOWNLOAD_TOKEN_INVALID"


def test_eleventh_upload_in_an_hour_is_429(api: Api) -> None:
    for i in range(10):
        assert api.upload(GOOD_CSV + str(i).encode() + b"\n").status_code == 201
    refused = api.upload(GOOD_CSV)
    assert refused.status_code == 429 and refused.headers.get("retry-after")


def test_filesystem_mode_serves_the_signed_app_url_decrypting_as_it_streams(tmp_path: Any) -> None:
    """Embedded mode: AES-256-GCM files on disk, scanning explicitly off (recorded as not_scanned)."""
    import os

    from reckai.adapters.filesystem.storage import FileSystemStorage

    container = bootstrap_in_memory(storage=FileSystemStorage(
        tmp_path, keys={"k1": os.urandom(32)}, current_key_id="k1", public_base_url="http://127.0.0.1:8000",
        chunk_bytes=4096))
    assert container.scanner.enabled is False
    with TestClient(create_app(container)) as client:
        api = Api(client, container)
        original = b"date,amount,currency,reference\n" + b"2024-01-02,1.00,NGN,123456789012\n" * 2000
        uploaded = api.upload(original)
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["data"]["scan_status"] == "not_scanned"
        assert len(api.org_keys()) == 1
        on_disk = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and ".tmp" not in p.parts)
        assert b"123456789012" not in on_disk  # encrypted at rest
        link = client.get(f"/api/files/{uploaded.json()['data']['id']}/download", headers=api.auth).json()["data"]
        downloaded = client.get(link["url"].split("127.0.0.1:8000", 1)[1])
        assert downloaded.status_code == 200 and downloaded.content == original
        assert downloaded.headers["content-type"] == "application/octet-stream"


def test_openapi_describes_the_upload_form(api: Api) -> None:
    """The handler streams the body itself (no `data` parameter), so the form is declared by its
    operation class; the document must show it, and uploading must still stream."""
    document = api.client.get("/schema/openapi.json").json()
    operation = document["paths"]["/api/files/upload"]["post"]
    body = operation["requestBody"]
    assert body["required"] is True and list(body["content"]) == ["multipart/form-data"]
    form = body["content"]["multipart/form-data"]["schema"]
    assert form["type"] == "object" and sorted(form["required"]) == ["file", "file_type"]
    assert list(form["properties"]) == ["file_type", "job_id", "file"]  # the order the parser needs
    assert form["properties"]["file_type"]["enum"] == ["bank", "settlement", "switch", "card", "gl"]
    assert form["properties"]["job_id"] == {**form["properties"]["job_id"], "type": "string", "format": "uuid"}
    assert form["properties"]["file"] == {**form["properties"]["file"], "type": "string", "format": "binary"}
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    for status in ("400", "401", "403", "413", "415", "422", "429", "503"):
        assert operation["responses"][status]["content"] == envelope, status
    assert "FileMap" in document["paths"]["/api/files/{file_id}/map"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["$ref"]
    assert api.upload(GOOD_CSV).status_code == 201  # the streaming parser is untouched
