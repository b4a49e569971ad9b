"""The file API end to end over real HTTP (uvicorn on a socket) against PostgreSQL (row-level
security, quota row lock), a real S3 server (moto over HTTP, SSE-S3 checked on every object) and
a real clamd (INSTREAM, the fixture's own signature database).

Upload -> scan -> content validation -> auto-detected mapping -> map -> normalize -> Parquet
read back from S3; the bad-file corpus; quarantine; 413 while streaming; concurrent uploads
against max_storage_gb; pre-signed download; delete.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from reckai.adapters.polars.normalize import read_parquet_bytes
from reckai.application.ports.audit import AuditQuery
from reckai.application.ports.rate_limit import TIERS
from reckai.bootstrap import Container, bootstrap
from reckai.domain.ingestion.storage_keys import organization_prefix
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, Mode, RedisSettings, ScannerSettings, Settings, StorageSettings
from tests.fixtures.clamd import CLAMD_TEST_MARKER
from tests.support.files_corpus import (
    EXPLICIT_MAPPING,
    RAGGED_CSV,
    UNPARSEABLE_CSV,
    BadFile,
    refused_at_upload,
)
from tests.support.identity import bearer, login, onboard
from tests.support.sample_data import CARD_VS_BANK_A

pytestmark = pytest.mark.integration

FIXTURES = CARD_VS_BANK_A
GIB = 1024 ** 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def container(pg_database: Any, redis_url: str, s3_server: Any, clamd_server: Any,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    settings = Settings(
        mode=Mode.EMBEDDED,
        database=DatabaseSettings(url=pg_database.app_url, pool_size=6),
        redis=RedisSettings(url=redis_url),
        storage=StorageSettings(backend="s3", s3_endpoint=s3_server.endpoint, s3_access_key=s3_server.access_key,
                                s3_secret_key=s3_server.secret_key, s3_bucket=s3_server.bucket,
                                s3_region=s3_server.region, s3_secure=s3_server.secure),
        scanner=ScannerSettings(enabled=True, clamd_host=clamd_server.host, clamd_port=clamd_server.port),
    )
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(scope="module")
def base_url(container: Container) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_config=None,
                                           lifespan="on", h11_max_incomplete_event_size=64 * 1024))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@dataclasses.dataclass
class Tenant:
    client: httpx.Client
    container: Container
    org_id: uuid.UUID
    user_id: uuid.UUID
    token: str

    def upload(self, data: bytes | Iterator[bytes], filename: str = "bank.csv", file_type: str = "bank") -> httpx.Response:
        self.container.rate_limiter.reset(TIERS["upload"], str(self.user_id))  # many uploads per test
        return self.client.post("/api/files/upload", data={"file_type": file_type},
                                files={"file": (filename, data, "text/csv")}, headers=bearer(self.token))

    def org_keys(self) -> list[str]:
        return list(self.container.storage.list_keys(organization_prefix(self.org_id)))

    def used_bytes(self) -> int:
        with self.container.database.unit_of_work(self.org_id) as uow:
            return int(uow.files.total_size_bytes())

    def set_quota(self, **limits: int) -> None:
        with self.container.database.unit_of_work(self.org_id) as uow:
            uow.quotas.update(dataclasses.replace(uow.quotas.get(self.org_id), **limits))
            uow.commit()

    def audit_actions(self) -> list[str]:
        page = self.container.audit_log.list_records(self.org_id, AuditQuery(limit=500))
        return [record.event.action for record in page.records]


@pytest.fixture
def tenant(container: Container, base_url: str) -> Iterator[Tenant]:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        limiter = container.rate_limiter
        limiter.reset(TIERS["auth_ip"], "127.0.0.1")
        org_id, admin = onboard(client, container=container)
        limiter.reset(TIERS["auth_ip"], "127.0.0.1")
        token = login(client, admin.org_code, admin.email, admin.password)
        limiter.reset(TIERS["auth_ip"], "127.0.0.1")
        yield Tenant(client, container, org_id, admin.user_id, token)


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False, body
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["bank.csv", "switch.csv"])
def test_upload_scan_map_normalize_and_read_parquet_back(tenant: Tenant, name: str) -> None:
    original = (FIXTURES / name).read_bytes()
    data_rows = original.count(b"\n") - 1  # one header line, no trailer
    uploaded = tenant.upload(original, filename=name, file_type="bank" if name == "bank.csv" else "switch")
    assert uploaded.status_code == 201, uploaded.text
    data = uploaded.json()["data"]
    assert (data["format"], data["kind"], data["scan_status"], data["size_bytes"]) == ("csv", "csv", "clean", len(original))
    assert data["missing_required"] == [], data["transformation_rules"]
    head = tenant.container.storage.head(tenant.org_keys()[0])
    assert head.encryption in ("SSE-S3", "SSE-KMS") and head.size_bytes == len(original)

    mapped = tenant.client.post(f"/api/files/{data['id']}/map", json={}, headers=bearer(tenant.token))
    assert mapped.status_code == 200, mapped.text
    shown = mapped.json()["data"]
    assert shown["status"] == "normalized" and shown["row_count"] == data_rows
    keys = tenant.org_keys()
    parquet_key = next(k for k in keys if k.endswith("/normalized.parquet"))
    with tenant.container.storage.open(parquet_key) as stored:
        frame = read_parquet_bytes(stored.read())
    assert frame.height == data_rows and frame["amount_minor"].dtype.is_integer()
    assert frame["amount_minor"].min() >= 0 and set(frame["direction"].unique()) <= {"debit", "credit"}
    assert frame["row_number"].to_list() == list(range(1, data_rows + 1))

    link = tenant.client.get(f"/api/files/{data['id']}/download", headers=bearer(tenant.token)).json()["data"]
    assert "X-Amz-Expires=3600" in link["url"]
    assert httpx.get(link["url"], timeout=30).content == original
    assert {"file.uploaded", "file.mapping_confirmed", "file.normalized"} <= set(tenant.audit_actions())

    removed = tenant.client.delete(f"/api/files/{data['id']}", headers=bearer(tenant.token))
    assert removed.status_code == 200
    assert tenant.org_keys() == [] and tenant.used_bytes() == 0


@pytest.mark.parametrize("bad", refused_at_upload(), ids=lambda b: b.name)
def test_bad_file_corpus_over_http_leaves_nothing(tenant: Tenant, bad: BadFile) -> None:
    response = tenant.upload(bad.data, filename=bad.filename)
    assert response.status_code == 422, response.text
    assert _error(response)["code"] == bad.code
    assert tenant.org_keys() == [] and tenant.used_bytes() == 0
    assert "file.upload.refused" in tenant.audit_actions()


@pytest.mark.parametrize("data", [RAGGED_CSV, UNPARSEABLE_CSV], ids=["ragged", "unparseable_values"])
def test_row_level_bad_files_end_in_error_with_a_report(tenant: Tenant, data: bytes) -> None:
    file_id = tenant.upload(data).json()["data"]["id"]
    failed = tenant.client.post(f"/api/files/{file_id}/map", json={"transformation_rules": EXPLICIT_MAPPING},
                                headers=bearer(tenant.token))
    assert failed.status_code == 422 and _error(failed)["code"] == "NORMALIZATION_FAILED"
    shown = tenant.client.get(f"/api/files/{file_id}", headers=bearer(tenant.token)).json()["data"]
    assert shown["status"] == "error" and shown["normalized"] is None
    assert all({"row_number", "line_number", "column", "value", "reason"} <= set(e)
               for e in shown["error_report"]["errors"])
    assert len(tenant.org_keys()) == 1  # the original only, no Parquet


def test_infected_upload_goes_to_quarantine_not_the_organization(tenant: Tenant) -> None:
    response = tenant.upload(b"date,amount\n2024-01-01," + CLAMD_TEST_MARKER + b"\n", filename="x.csv")
    assert response.status_code == 422 and _error(response)["code"] == "FILE_INFECTED"
    assert tenant.org_keys() == [] and tenant.used_bytes() == 0
    quarantined = list(tenant.container.storage.list_keys(f"quarantine/{tenant.org_id}/"))
    assert len(quarantined) == 1
    assert "file.upload.infected" in tenant.audit_actions()


def test_upload_above_max_file_size_is_413_while_streaming(tenant: Tenant, base_url: str) -> None:
    tenant.set_quota(max_file_size_mb=1)
    host, port = base_url.removeprefix("http://").split(":")
    boundary = "streamtest"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file_type"\r\n\r\nbank\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n').encode()
    request = (f"POST /api/files/upload HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {tenant.token}\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    chunk = b"1,2\n" * (64 * 1024)  # 256 KiB
    total_chunks = 400  # 100 MiB if it were all sent
    sent = 0
    answer = b""
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(request + b"%x\r\n%s\r\n" % (len(head), head))
        conn.setblocking(False)
        while sent < total_chunks and not answer:
            try:
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += 1
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                time.sleep(0.01)
            try:
                answer = conn.recv(65536)
            except BlockingIOError:
                pass
        conn.setblocking(True)
        conn.settimeout(10)
        # The head and the body may arrive in separate reads: read on until the body is here, the
        # server closes, or ten seconds pass.
        while b"PAYLOAD_TOO_LARGE" not in answer:
            try:
                more = conn.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not more:
                break
            answer += more
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"PAYLOAD_TOO_LARGE" in answer or b"transfer-encoding: chunked" in answer.lower()
    assert sent < 40, f"{sent} chunks (of 256 KiB) were sent before the 413"
    assert tenant.org_keys() == [] and tenant.used_bytes() == 0


def test_concurrent_uploads_cannot_exceed_max_storage_gb(tenant: Tenant) -> None:
    tenant.set_quota(max_storage_gb=1)
    filler = tenant.upload(b"date,amount,currency\n2024-01-01,1.00,NGN\n", filename="filler.csv").json()["data"]
    with tenant.container.database.unit_of_work(tenant.org_id) as uow:  # as if 1 GiB - 600 B were in use
        uow.files.update(dataclasses.replace(uow.files.get(uuid.UUID(filler["id"])), size_bytes=GIB - 600))
        uow.commit()
    rows = b"".join(b"2024-01-%02d,%d.00,NGN\n" % (day, day) for day in range(1, 15))  # ~300 bytes
    both_started = threading.Barrier(2)
    statuses: list[int] = []

    boundary = "concurrent"

    def body(tag: bytes) -> Iterator[bytes]:
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="file_type"\r\n\r\nbank\r\n'
               f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\n\r\n'
               "date,amount,currency\n").encode()
        time.sleep(0.5)  # the server has started both requests (and their unlocked pre-checks)
        both_started.wait(10)
        yield rows + tag + f"\r\n--{boundary}--\r\n".encode()  # ~350 bytes of file: one fits in 600, two do not

    def run(tag: bytes) -> None:
        response = tenant.client.post(
            "/api/files/upload", content=body(tag),
            headers={**bearer(tenant.token), "Content-Type": f"multipart/form-data; boundary={boundary}"})
        statuses.append(response.status_code)

    tenant.container.rate_limiter.reset(TIERS["upload"], str(tenant.user_id))
    threads = [threading.Thread(target=run, args=(tag,)) for tag in (b"2024-02-01,1.00,NGN\n", b"2024-02-02,2.00,NGN\n")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [201, 403], statuses
    assert tenant.used_bytes() <= GIB
    assert len(tenant.org_keys()) == 2  # the filler and the one accepted upload


STATEMENTS = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize(("path", "fmt", "kind", "rows"), [
    ("mt940-corpus/self-provided/raiffeisen-cmi.sta", "txt", "mt940", 7),
    ("statements/lockbox.bai2", "txt", "bai2", 3),
    ("statements/checking.ofx", "txt", "ofx", 3),
    ("statements/card.qfx", "xml", "ofx", 2),
    ("statements/notification.camt054.xml", "xml", "camt054", 1),
])
def test_statement_formats_upload_with_the_spec_format_and_map_with_no_input(
        tenant: Tenant, path: str, fmt: str, kind: str, rows: int) -> None:
    original = (STATEMENTS / path).read_bytes()
    uploaded = tenant.upload(original, filename=Path(path).name)
    assert uploaded.status_code == 201, uploaded.text
    data = uploaded.json()["data"]
    assert (data["format"], data["kind"], data["missing_required"]) == (fmt, kind, [])
    if kind == "mt940":  # code page 852: detected, and shown with the proposal
        assert data["detected_encoding"]["name"] in ("cp852", "cp437")
        assert data["detected_encoding"]["confidence"] >= 0.6
    else:
        assert data["detected_encoding"] is None
    mapped = tenant.client.post(f"/api/files/{data['id']}/map", json={}, headers=bearer(tenant.token))
    assert mapped.status_code == 200, mapped.text
    assert (mapped.json()["data"]["status"], mapped.json()["data"]["row_count"]) == ("normalized", rows)


def _statement_warnings(tenant: Tenant, file_id: str) -> list[dict[str, Any]]:
    shown = tenant.client.get(f"/api/files/{file_id}", headers=bearer(tenant.token)).json()["data"]
    return [w for w in (shown["error_report"] or {}).get("warnings", []) if w["kind"] == "duplicate_statement"]


def _upload_and_map(tenant: Tenant, data: bytes, filename: str) -> str:
    uploaded = tenant.upload(data, filename=filename)
    assert uploaded.status_code == 201, uploaded.text
    file_id: str = uploaded.json()["data"]["id"]
    mapped = tenant.client.post(f"/api/files/{file_id}/map", json={}, headers=bearer(tenant.token))
    assert mapped.status_code == 200, mapped.text
    return file_id


def test_a_statement_uploaded_again_in_another_file_is_flagged_with_the_earlier_file(tenant: Tenant) -> None:
    statement = (Path(__file__).resolve().parents[1] / "fixtures_data" / "statement.mt940").read_bytes()
    first = _upload_and_map(tenant, statement, "day-1.sta")
    assert _statement_warnings(tenant, first) == []
    # Different bytes (the bank re-sent it with another envelope), the same statement inside.
    resent = statement.replace(b"{1:F01GTBINGLAXXXX0000000000}", b"{1:F01GTBINGLAXXXX0000000001}")
    second = _upload_and_map(tenant, resent, "day-1-resent.sta")
    [warning] = _statement_warnings(tenant, second)
    assert "day-1.sta" in warning["message"] and first in warning["message"]
    assert ":20:STMT2512010001" in warning["message"] and warning["line_number"] == 2
    # The next day's statement (another :28C: number and opening) is not a repeat.
    next_day = resent.replace(b":28C:00335/001", b":28C:00336/001").replace(b":60F:C251130", b":60F:C251201")
    assert _statement_warnings(tenant, _upload_and_map(tenant, next_day, "day-2.sta")) == []
    # Another organization's identical statement is not this one's business.
    limiter = tenant.container.rate_limiter
    limiter.reset(TIERS["auth_ip"], "127.0.0.1")
    other_org, other_admin = onboard(tenant.client, container=tenant.container)
    limiter.reset(TIERS["auth_ip"], "127.0.0.1")
    other = Tenant(tenant.client, tenant.container, other_org, other_admin.user_id,
                   login(tenant.client, other_admin.org_code, other_admin.email, other_admin.password))
    assert _statement_warnings(other, _upload_and_map(other, resent, "day-1.sta")) == []
    # Deleting the first file forgets its statements: the re-sent one is then the earliest holder.
    assert tenant.client.delete(f"/api/files/{first}", headers=bearer(tenant.token)).status_code == 200
    third = _upload_and_map(tenant, resent.replace(b"0000000001}", b"0000000002}"), "day-1-third.sta")
    [warning] = _statement_warnings(tenant, third)
    assert second in warning["message"] and first not in warning["message"]
