"""Issue 17 item 3: reads of sensitive data are access events (who, what, when, from where) written
in batches off the request path; tokens in URLs never reach a log line or an audit row.

Over HTTP on the in-memory container with a completed job (the world of test_downloads_http), then
the batching recorder on its own, then the path redaction rule."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reckai.adapters.memory.audit import MemoryAuditLog
from reckai.application.access import BatchingAccessRecorder, access_event
from reckai.application.ports.audit import AuditQuery, AuditWriteFailed
from reckai.domain.audit.chain import AuditSigner
from reckai.domain.audit.events import AuditEvent, AuditRecord
from reckai.domain.audit.redaction import REDACTED, redact_path
from tests.unit.test_downloads_http import World, world  # noqa: F401 - the module-scoped fixture

ORG = uuid.uuid4()


def _records(w: World) -> list[AuditRecord]:
    w.container.access_recorder.flush()
    return list(w.container.audit_log.list_records(uuid.UUID(str(w.org_id)), AuditQuery(limit=500)).records)


def _token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_a_download_is_an_access_event_and_its_token_is_nowhere(world: World,  # noqa: F811
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    link = world.get(f"/api/reconciliations/{world.job_id}/outputs/results.csv/download", "analyst").json()["data"]
    token = _token_of(link["url"])
    with caplog.at_level(logging.INFO, logger="reckai.http"):
        world.fetch(link["url"])
    lines = [r for r in caplog.records if getattr(r, "action", None) == "http.request" or "download" in r.getMessage()]
    assert lines and all(token not in r.getMessage() for r in caplog.records)
    assert any(f"/api/files/download/{REDACTED}" in r.getMessage() for r in lines)
    records = _records(world)
    downloads = [r for r in records if r.event.action == "access.output.download"]
    assert downloads, [r.event.action for r in records][:20]
    event = downloads[0].event
    assert event.user_id is None and event.organization_id == uuid.UUID(str(world.org_id))
    assert event.request_path == f"/api/files/download/{REDACTED}"
    assert event.metadata["object"].endswith("/results.csv") and "accessed_at" in event.metadata
    for record in records:
        assert token not in repr(record.event), record.event.action


def test_reads_of_results_users_and_exceptions_are_access_events(world: World) -> None:  # noqa: F811
    assert world.get(f"/api/reconciliations/{world.job_id}/results", "auditor",
                     params={"per_page": 5}).status_code == 200
    users = world.get("/api/users", "admin").json()["data"]
    assert world.get(f"/api/users/{users[0]['id']}", "admin").status_code == 200
    exceptions = world.get("/api/exceptions", "analyst", params={"job_id": world.job_id}).json()["data"]
    assert exceptions
    assert world.get(f"/api/exceptions/{exceptions[0]['id']}", "analyst").status_code == 200
    records = _records(world)
    by_action = {r.event.action: r.event for r in records}
    results = by_action["access.reconciliation.results"]
    assert results.resource_id == uuid.UUID(world.job_id) and results.metadata["rows"] == 5
    assert results.user_id is not None and results.request_method == "GET"
    assert by_action["access.users.list"].metadata["rows"] == len(users)
    assert by_action["access.user.detail"].resource_id == uuid.UUID(users[0]["id"])
    assert by_action["access.exception.detail"].resource_id == uuid.UUID(exceptions[0]["id"])
    # a refused read (another organization's id: 404) is no access
    before = len([r for r in records if r.event.action == "access.exception.detail"])
    assert world.get(f"/api/exceptions/{uuid.uuid4()}", "analyst").status_code == 404
    assert len([r for r in _records(world) if r.event.action == "access.exception.detail"]) == before


# --- the recorder -----------------------------------------------------------------------------------


class CountingLog(MemoryAuditLog):
    def __init__(self) -> None:
        super().__init__(AuditSigner("t", "k" * 40))
        self.batches: list[int] = []
        self.fail = False

    def record_batch(self, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        if self.fail:
            raise AuditWriteFailed(events[0].action, "database down")
        self.batches.append(len(events))
        return super().record_batch(events)


def _event(index: int, org: uuid.UUID = ORG) -> AuditEvent:
    return access_event("access.test.read", None, None, organization_id=org, metadata={"i": index})


def test_recording_writes_nothing_on_the_read_path_and_batches_by_organization() -> None:
    log = CountingLog()
    recorder = BatchingAccessRecorder(log, batch_size=10, flush_seconds=30, background=False)
    other = uuid.uuid4()
    for index in range(9):
        recorder.record(_event(index))
    assert log.batches == [] and recorder.pending() == 9  # below the batch size, before the tick
    for index in range(16):
        recorder.record(_event(index, other))
    recorder.close()  # shutdown writes what is left
    assert sum(log.batches) == 25 and max(log.batches) <= 10 and len(log.batches) <= 5
    page = log.list_records(ORG, AuditQuery(limit=100))
    assert [r.event.metadata["i"] for r in reversed(page.records)] == list(range(9))  # in order


def test_a_full_batch_is_written_within_about_a_second_without_a_flush() -> None:
    log = CountingLog()
    recorder = BatchingAccessRecorder(log, batch_size=5, flush_seconds=0.2)
    for index in range(3):
        recorder.record(_event(index))
    deadline = dt.datetime.now() + dt.timedelta(seconds=5)
    while sum(log.batches) < 3 and dt.datetime.now() < deadline:
        pass
    assert sum(log.batches) == 3
    recorder.close()


def test_a_failing_database_keeps_events_for_the_next_tick_then_drops_the_oldest_loudly(
        caplog: pytest.LogCaptureFixture) -> None:
    log = CountingLog()
    dropped: list[int] = []
    recorder = BatchingAccessRecorder(log, batch_size=5, flush_seconds=30, max_buffered=12, on_dropped=dropped.append,
                                      background=False)
    log.fail = True
    for index in range(10):
        recorder.record(_event(index))
    assert recorder.flush() == 0 and recorder.pending() == 10
    with caplog.at_level(logging.ERROR, logger="reckai.audit.access"):
        for index in range(10, 15):
            recorder.record(_event(index))
    assert sum(dropped) == 3 and recorder.dropped == 3
    assert any(getattr(r, "action", None) == "audit.access.dropped" for r in caplog.records)
    log.fail = False
    assert recorder.flush() == 12
    kept = [r.event.metadata["i"] for r in reversed(log.list_records(ORG, AuditQuery(limit=100)).records)]
    assert kept == list(range(3, 15))
    recorder.close()


def test_access_events_belong_to_an_organization_and_say_access() -> None:
    with pytest.raises(ValueError):
        access_event("file.read", None, None, organization_id=ORG)
    recorder = BatchingAccessRecorder(CountingLog())
    with pytest.raises(ValueError):
        recorder.record(AuditEvent(action="access.x"))


# --- secrets in paths ---------------------------------------------------------------------------------


def test_signed_tokens_and_named_secret_parameters_are_redacted_from_paths() -> None:
    token = "eyJlIjoxNzY1MDAwMDAwLCJrIjoib3JnYW5pemF0aW9ucy8x.QWxhZGRpbjpvcGVuIHNlc2FtZQ"
    assert redact_path(f"/api/files/download/{token}") == f"/api/files/download/{REDACTED}"
    assert redact_path("/api/invitations/abc123", secret_values=("abc123",)) == f"/api/invitations/{REDACTED}"
    assert redact_path("/reset?token=abc&x=1") == f"/reset?token={REDACTED}&x=1"


@given(st.lists(st.one_of(st.uuids().map(str), st.sampled_from(["api", "users", "results", "outputs",
                                                                 "results.csv", "v1.2"])), max_size=6))
def test_ordinary_paths_are_unchanged(segments: list[str]) -> None:
    path = "/" + "/".join(segments)
    assert redact_path(path) == path


