"""Client races on one file against PostgreSQL, over real HTTP (uvicorn on a socket, every request
in its own server thread with its own pooled connection), filesystem storage.

Rule (docs/files.md "Concurrency"): concurrent `POST /api/files/{id}/map` calls (and a DELETE
racing them) on one file are serialised by a per-file claim; each answer is a success or a 409
envelope, never a 5xx, and what is left is one consistent result: one set of data_mappings rows,
normalized versions numbered 1..N without a gap (each success made one: a re-map of a normalized
file is a new version), and a Parquet object exactly for each version row.
"""

from __future__ import annotations

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
from sqlalchemy import text

from reckai.adapters.polars.normalize import read_parquet_bytes
from reckai.application.files import normalize_file_job
from reckai.application.ports.rate_limit import TIERS
from reckai.bootstrap import Container, bootstrap
from reckai.domain.ingestion.storage_keys import normalized_file_key, organization_prefix
from reckai.entrypoints.http.app import create_app
from reckai.settings import DatabaseSettings, Mode, ScannerSettings, Settings, StorageSettings
from tests.support.files_corpus import EXPLICIT_MAPPING
from tests.support.identity import bearer, login, onboard

pytestmark = pytest.mark.integration

ROWS = 20_000  # large enough that normalization takes a while, so the requests really overlap
RACERS = 4


def _csv(rows: int) -> bytes:
    lines = [b"date,amount,currency,reference,narration"]
    lines += [b"2024-01-%02d,%d.%02d,NGN,%012d,POS PURCHASE RRN:%012d" % (1 + i % 28, i, i % 100, i, i)
              for i in range(rows)]
    return b"\n".join(lines) + b"\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def container(pg_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    root: Path = tmp_path_factory.mktemp("files-race")
    settings = Settings(
        mode=Mode.EMBEDDED,
        database=DatabaseSettings(url=pg_database.app_url, pool_size=8),
        storage=StorageSettings(backend="filesystem", filesystem_root=root),
        scanner=ScannerSettings(enabled=False),
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
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


class Tenant:
    def __init__(self, container: Container, base_url: str) -> None:
        self.container = container
        self.base_url = base_url
        with httpx.Client(base_url=base_url, timeout=120) as client:
            container.rate_limiter.reset(TIERS["auth_ip"], "127.0.0.1")
            self.org_id, admin = onboard(client, container=container)
            container.rate_limiter.reset(TIERS["auth_ip"], "127.0.0.1")
            self.token = login(client, admin.org_code, admin.email, admin.password)
            container.rate_limiter.reset(TIERS["auth_ip"], "127.0.0.1")
            self.user_id = admin.user_id

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=120, headers=bearer(self.token))

    def upload(self, data: bytes) -> uuid.UUID:
        self.container.rate_limiter.reset(TIERS["upload"], str(self.user_id))
        with self.client() as client:
            response = client.post("/api/files/upload", data={"file_type": "bank"},
                                   files={"file": ("bank.csv", data, "text/csv")})
        assert response.status_code == 201, response.text
        return uuid.UUID(response.json()["data"]["id"])

    def object_keys(self) -> list[str]:
        return list(self.container.storage.list_keys(organization_prefix(self.org_id)))

    def rows(self, file_id: uuid.UUID) -> dict[str, int]:
        """Row counts of the file's tables, read as the tenant (row-level security applies)."""
        with self.container.database.unit_of_work(self.org_id) as uow:
            conn = uow.connection
            return {table: int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE {column} = :id"),
                                            {"id": file_id}).scalar_one())
                    for table, column in (("reconciliation_files", "id"), ("data_mappings", "file_id"),
                                          ("normalized_files", "file_id"))}

    def mapping_targets(self, file_id: uuid.UUID) -> list[str]:
        with self.container.database.unit_of_work(self.org_id) as uow:
            return [m.target_field for m in uow.data_mappings.list_for_file(file_id)]


@pytest.fixture
def tenant(container: Container, base_url: str) -> Tenant:
    return Tenant(container, base_url)


def _race(calls: list[Any]) -> list[httpx.Response]:
    """Run the calls at the same moment, each in its own thread with its own HTTP connection."""
    start = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        start.wait(10)
        try:
            answers[index] = calls[index]()
        except BaseException as exc:  # noqa: BLE001 - reported below, with the others
            answers[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert all(isinstance(a, httpx.Response) for a in answers), answers
    return answers


def _assert_envelope_or_success(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code >= 400:
        assert body["success"] is False and set(body["error"]) >= {"code", "message"}, body
    else:
        assert body["success"] is True, body


def _assert_consistent(tenant: Tenant, file_id: uuid.UUID) -> dict[str, Any]:
    """One file, one mapping (no duplicate rows), versions 1..N, and a Parquet exactly for each
    version row (no object of a version that was not committed)."""
    rows = tenant.rows(file_id)
    targets = tenant.mapping_targets(file_id)
    assert len(targets) == len(set(targets)), f"duplicate data_mappings rows: {targets}"
    with tenant.client() as client:
        shown = client.get(f"/api/files/{file_id}").json()["data"]
    versions = [v["version"] for v in shown["versions"]]
    assert versions == list(range(1, rows["normalized_files"] + 1)), versions
    prefix = normalized_file_key(tenant.org_id, file_id).rsplit("/", 1)[0] + "/"
    stored = sorted(k for k in tenant.object_keys() if k.startswith(prefix))
    with tenant.container.database.unit_of_work(tenant.org_id) as uow:
        paths = [v.storage_path for v in uow.normalized_files.versions(file_id)]
    assert stored == sorted(paths), stored
    if versions:
        assert shown["status"] == "normalized" and shown["current_version"] == versions[-1], shown["status"]
        with tenant.container.storage.open(paths[-1]) as stream:
            frame = read_parquet_bytes(stream.read())
        assert frame.height == shown["row_count"] == shown["normalized"]["row_count"]
        assert shown["transformation_rules"] == shown["versions"][-1]["transformation_rules"]
    else:
        assert shown["status"] != "normalized" and shown["current_version"] is None
    return shown  # type: ignore[no-any-return]


def test_concurrent_map_calls_on_one_file_never_5xx_and_leave_one_result(tenant: Tenant) -> None:
    file_id = tenant.upload(_csv(ROWS))
    bodies = [{}, {"transformation_rules": EXPLICIT_MAPPING}] * (RACERS // 2)

    def call(body: dict[str, Any]) -> Any:
        def run() -> httpx.Response:
            with tenant.client() as client:
                return client.post(f"/api/files/{file_id}/map", json=body)
        return run

    succeeded = 0
    for _ in range(3):  # a few rounds: re-mapping a normalized file (a new version each) races too
        answers = _race([call(b) for b in bodies])
        for answer in answers:
            _assert_envelope_or_success(answer)
        statuses = sorted(a.status_code for a in answers)
        assert 200 in statuses, statuses
        assert set(statuses) <= {200, 409}, statuses
        assert all(a.json()["error"]["code"] in ("FILE_BUSY", "FILE_VERSION_CONFLICT")
                   for a in answers if a.status_code == 409)
        succeeded += statuses.count(200)
        shown = _assert_consistent(tenant, file_id)
        assert shown["status"] == "normalized" and shown["row_count"] == ROWS
        assert shown["current_version"] == succeeded  # every success made one version, none was lost


def test_map_racing_delete_never_5xx_and_leaves_nothing_half_written(tenant: Tenant) -> None:
    file_id = tenant.upload(_csv(ROWS))

    def map_it() -> httpx.Response:
        with tenant.client() as client:
            return client.post(f"/api/files/{file_id}/map", json={})

    def delete_it() -> httpx.Response:
        time.sleep(0.05)  # usually while the mapping is being normalized
        with tenant.client() as client:
            return client.delete(f"/api/files/{file_id}")

    answers = _race([map_it, map_it, delete_it])
    for answer in answers:
        _assert_envelope_or_success(answer)
    deleted = answers[2].status_code == 200
    if deleted:
        assert tenant.rows(file_id) == {"reconciliation_files": 0, "data_mappings": 0, "normalized_files": 0}
        assert not any(str(file_id) in key for key in tenant.object_keys()), tenant.object_keys()
    else:
        assert answers[2].json()["error"]["code"] == "FILE_BUSY"
        _assert_consistent(tenant, file_id)


def test_job_normalization_waits_for_a_mapping_in_progress(tenant: Tenant, container: Container) -> None:
    """normalize_file_job (a reconciliation job's step) waits for the claim a request holds instead
    of failing or normalizing alongside it, then returns the request's one result."""
    file_id = tenant.upload(_csv(3 * ROWS))
    answers: list[httpx.Response] = []

    def remap() -> None:  # the first mapping: the file is `mapped` while it normalizes
        with tenant.client() as client:
            answers.append(client.post(f"/api/files/{file_id}/map", json={"transformation_rules": EXPLICIT_MAPPING}))

    request = threading.Thread(target=remap)
    request.start()
    deadline = time.monotonic() + 60
    while _status(tenant, file_id) != "mapped":  # the request holds the claim and is normalizing
        assert time.monotonic() < deadline and request.is_alive(), "the re-mapping was never seen in progress"
        time.sleep(0.002)
    result = normalize_file_job(container.files, tenant.org_id, file_id)
    request.join(120)
    assert answers and answers[0].status_code == 200, answers
    shown = _assert_consistent(tenant, file_id)
    with container.database.unit_of_work(tenant.org_id) as uow:
        current = uow.normalized_files.get_for_file(file_id)
    assert result.id == current.id and result.row_count == shown["row_count"] == 3 * ROWS


def _status(tenant: Tenant, file_id: uuid.UUID) -> str:
    with tenant.container.database.unit_of_work(tenant.org_id) as uow:
        return str(uow.files.get(file_id).status)
