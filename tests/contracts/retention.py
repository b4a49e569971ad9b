"""Contract of the retention repository (issue 17 item 7), run over the in-memory adapter
(tests/unit/test_retention.py) and PostgreSQL (tests/integration/test_retention_postgres.py): which
files are past the cutoff, in what order and pages, and why each one that is still referred to is
kept."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from reckai.application.ports.reconciliations import JobFileLink
from reckai.domain.approvals.workflow import Approval, ApprovalStatus, ApprovalType
from reckai.domain.exceptions.lifecycle import ExceptionItem, ExceptionStatus
from reckai.domain.exceptions.policy import SlaPolicy
from reckai.domain.reconciliation import jobs as j
from reckai.domain.retention import KeptBecause
from reckai.domain.streams.streams import StreamFile
from tests.contracts.files_repositories import new_file
from tests.contracts.stream_repositories import stream_of

Tenants = tuple[Any, tuple[uuid.UUID, uuid.UUID], tuple[uuid.UUID, uuid.UUID]]
NOW = dt.datetime(2029, 6, 1, 12, 0, tzinfo=dt.UTC)
CUTOFF = NOW - dt.timedelta(days=730)
OLD = CUTOFF - dt.timedelta(days=70)


def _job(org: uuid.UUID, user: uuid.UUID, status: j.JobStatus) -> j.ReconciliationJob:
    job = j.new_job(job_id=uuid.uuid4(), organization_id=org, name=f"job {status.value}", created_by=user,
                    snapshot={}, now=OLD)
    return dataclasses.replace(job, status=status)


def _exception(org: uuid.UUID, job_id: uuid.UUID, status: ExceptionStatus, **fields: Any) -> ExceptionItem:
    item = ExceptionItem.new(organization_id=org, job_id=job_id, type="missing_entry", severity="low",
                             description="a break", created_at=OLD, sla=SlaPolicy(), **fields)
    return dataclasses.replace(item, status=status)


@dataclasses.dataclass
class World:
    files: dict[str, uuid.UUID]
    references: frozenset[uuid.UUID]


def _world(tenants: Tenants) -> World:
    """One organization's files, each old except `young`, each in one situation."""
    database, (org, user), _ = tenants
    names = ["free", "stream", "running", "open_exception", "resolved_exception", "row_named", "approval_file",
             "approval_job", "approval_exception", "young"]
    made = {name: new_file(org, user) for name in names}
    for offset, name in enumerate(names):
        at = NOW - dt.timedelta(days=10) if name == "young" else OLD + dt.timedelta(minutes=offset)
        made[name] = dataclasses.replace(made[name], uploaded_at=at)
    completed = {name: _job(org, user, j.JobStatus.COMPLETED)
                 for name in ("open_exception", "resolved_exception", "row_named", "approval_job", "approval_exception")}
    running = _job(org, user, j.JobStatus.PROCESSING)
    stream = stream_of(org, user, "retention")
    named = _exception(org, completed["row_named"].id, ExceptionStatus.ESCALATED, left_file_id=made["row_named"].id)
    in_approval = _exception(org, completed["approval_exception"].id, ExceptionStatus.RESOLVED)
    with database.unit_of_work(org) as uow:
        for file in made.values():
            uow.files.add(file)
        for job in [*completed.values(), running]:
            uow.reconciliation_jobs.add(job)
        uow.reconciliation_jobs.link_files(running.id, [JobFileLink(made["running"].id, "left")])
        for name in ("open_exception", "resolved_exception", "approval_job", "approval_exception"):
            uow.reconciliation_jobs.link_files(completed[name].id, [JobFileLink(made[name].id, "left")])
        uow.exceptions.add(_exception(org, completed["open_exception"].id, ExceptionStatus.IN_PROGRESS))
        uow.exceptions.add(_exception(org, completed["resolved_exception"].id, ExceptionStatus.RESOLVED))
        uow.exceptions.add(named)  # of another job, about a row of `row_named`
        uow.exceptions.add(in_approval)
        uow.streams.add(stream)
        uow.streams.add_file(StreamFile(stream.id, made["stream"].id, "left", "c" * 64, user, OLD))
        uow.commit()
    references = frozenset({made["approval_file"].id, completed["approval_job"].id, in_approval.id})
    return World({name: file.id for name, file in made.items()}, references)


def check_expired_files_name_why_each_is_kept(tenants: Tenants) -> None:
    database, (org, _), (other, _) = tenants
    world = _world(tenants)
    with database.unit_of_work(org) as uow:
        expired = uow.retention.expired_files(CUTOFF, world.references, after=None, limit=100)
    by_id = {f.file_id: f for f in expired}
    reasons = {name: by_id[file_id].kept_because for name, file_id in world.files.items() if file_id in by_id}
    assert reasons == {
        "free": None, "stream": KeptBecause.STREAM, "running": KeptBecause.RUNNING_JOB,
        "open_exception": KeptBecause.OPEN_EXCEPTION, "resolved_exception": None,
        "row_named": KeptBecause.OPEN_EXCEPTION, "approval_file": KeptBecause.PENDING_APPROVAL,
        "approval_job": KeptBecause.PENDING_APPROVAL, "approval_exception": KeptBecause.PENDING_APPROVAL,
    }  # `young` is not past the cutoff
    assert [f.uploaded_at for f in expired] == sorted(f.uploaded_at for f in expired)
    free = by_id[world.files["free"]]
    assert free.storage_path.endswith(f"{free.file_id}.csv") and free.size_bytes == 100
    assert free.uploaded_at.tzinfo is not None
    with database.unit_of_work(other) as uow:  # another tenant sees none of them
        assert uow.retention.expired_files(CUTOFF, world.references, after=None, limit=100) == []


def check_without_references_the_approval_files_are_free(tenants: Tenants) -> None:
    database, (org, _), _ = tenants
    world = _world(tenants)
    with database.unit_of_work(org) as uow:
        expired = uow.retention.expired_files(CUTOFF, frozenset(), after=None, limit=100)
    free = {f.file_id for f in expired if f.kept_because is None}
    assert {world.files[n] for n in ("approval_file", "approval_job", "approval_exception")} <= free


def check_pages_by_upload_time_then_id(tenants: Tenants) -> None:
    database, (org, _), _ = tenants
    _world(tenants)
    with database.unit_of_work(org) as uow:
        everything = uow.retention.expired_files(CUTOFF, frozenset(), after=None, limit=100)
        pages, after = [], None
        while True:
            page = uow.retention.expired_files(CUTOFF, frozenset(), after=after, limit=4)
            pages.append(page)
            if len(page) < 4:
                break
            after = (page[-1].uploaded_at, page[-1].file_id)
    assert [f.file_id for page in pages for f in page] == [f.file_id for f in everything]
    assert [len(page) for page in pages] == [4, 4, 1]


def check_pending_approvals_and_organizations(tenants: Tenants) -> None:
    database, (org, user), (other, other_user) = tenants
    named = str(uuid.uuid4())
    pending = Approval.request(organization_id=org, type=ApprovalType.SYSTEM_SETTING, title="t", description="d",
                               metadata={"file_id": named}, requested_by=user, at=NOW)
    decided = dataclasses.replace(Approval.request(
        organization_id=org, type=ApprovalType.SYSTEM_SETTING, title="t", description="d",
        metadata={"file_id": str(uuid.uuid4())}, requested_by=user, at=NOW), status=ApprovalStatus.APPROVED,
        reviewed_by=other_user, reviewed_at=NOW)
    with database.unit_of_work(org) as uow:
        uow.approvals.add(pending)
        uow.approvals.add(decided)
        uow.commit()
    with database.unit_of_work(org) as uow:
        assert uow.retention.pending_approval_metadata() == [{"file_id": named}]
    with database.unit_of_work(other) as uow:
        assert uow.retention.pending_approval_metadata() == []
    with database.unit_of_work(None) as uow:
        assert {org, other} <= set(uow.retention.organization_ids())


RESULTS_CUTOFF = NOW - dt.timedelta(days=7 * 365)
VERY_OLD = RESULTS_CUTOFF - dt.timedelta(days=10)


def _old_job(org: uuid.UUID, user: uuid.UUID, status: j.JobStatus, at: dt.datetime = VERY_OLD) -> j.ReconciliationJob:
    job = j.new_job(job_id=uuid.uuid4(), organization_id=org, name="old job", created_by=user, snapshot={}, now=at)
    return dataclasses.replace(job, status=status)


def _job_world(database: Any, org: uuid.UUID, user: uuid.UUID) -> tuple[dict[str, uuid.UUID], frozenset[uuid.UUID]]:
    from reckai.domain.streams.streams import StreamRun

    names = ["free", "resolved", "open", "running", "stream_run", "approval_job", "approval_exception", "young"]
    jobs = {name: _old_job(org, user, j.JobStatus.PROCESSING if name == "running" else j.JobStatus.COMPLETED,
                           NOW - dt.timedelta(days=100) if name == "young" else VERY_OLD + dt.timedelta(minutes=i))
            for i, name in enumerate(names)}
    in_approval = _exception(org, jobs["approval_exception"].id, ExceptionStatus.IGNORED)
    stream = stream_of(org, user, "old stream")
    with database.unit_of_work(org) as uow:
        for job in jobs.values():
            uow.reconciliation_jobs.add(job)
        uow.exceptions.add(_exception(org, jobs["resolved"].id, ExceptionStatus.RESOLVED))
        uow.exceptions.add(_exception(org, jobs["open"].id, ExceptionStatus.OPEN))
        uow.exceptions.add(in_approval)
        uow.streams.add(stream)
        uow.streams.add_run(StreamRun(stream.id, 1, jobs["stream_run"].id, user, VERY_OLD))
        uow.commit()
    return {name: job.id for name, job in jobs.items()}, frozenset({jobs["approval_job"].id, in_approval.id})


def check_expired_jobs_name_why_each_is_kept(tenants: Tenants) -> None:
    database, (org, user), (other, _) = tenants
    jobs, references = _job_world(database, org, user)
    with database.unit_of_work(org) as uow:
        expired = uow.retention.expired_jobs(RESULTS_CUTOFF, references, after=None, limit=100)
        first_two = uow.retention.expired_jobs(RESULTS_CUTOFF, references, after=None, limit=2)
        rest = uow.retention.expired_jobs(RESULTS_CUTOFF, references,
                                          after=(first_two[-1].created_at, first_two[-1].job_id), limit=100)
    by_id = {job.job_id: job for job in expired}
    reasons = {name: by_id[job_id].kept_because for name, job_id in jobs.items() if job_id in by_id}
    assert reasons == {"free": None, "resolved": None, "open": KeptBecause.OPEN_EXCEPTION,
                       "running": KeptBecause.RUNNING_JOB, "stream_run": KeptBecause.STREAM,
                       "approval_job": KeptBecause.PENDING_APPROVAL,
                       "approval_exception": KeptBecause.PENDING_APPROVAL}  # `young` is within the period
    assert [job.job_id for job in [*first_two, *rest]] == [job.job_id for job in expired]
    assert by_id[jobs["free"]].status == "completed" and by_id[jobs["free"]].created_at.tzinfo is not None
    with database.unit_of_work(other) as uow:
        assert uow.retention.expired_jobs(RESULTS_CUTOFF, references, after=None, limit=100) == []


def _decided(org: uuid.UUID, user: uuid.UUID, reviewer: uuid.UUID, status: ApprovalStatus, at: dt.datetime,
             metadata: dict[str, Any] | None = None) -> Approval:
    approval = Approval.request(organization_id=org, type=ApprovalType.SYSTEM_SETTING, title="t", description="d",
                                metadata=metadata or {"key": "x"}, requested_by=user, at=at)
    return dataclasses.replace(approval, status=status, reviewed_by=user if status is ApprovalStatus.CANCELLED
                               else reviewer, reviewed_at=at + dt.timedelta(hours=1),
                               review_comments="no" if status is ApprovalStatus.DECLINED else None)


def _approval_world(tenants: Tenants) -> dict[str, uuid.UUID]:
    """One organization's approvals, each in one situation (decided 7 years and more ago unless
    `young` or `pending`)."""
    from reckai.domain.privacy.exports import DataExport, ExportScope

    database, (org, user), _ = tenants
    reviewer = _second_user(database, org, user)
    job = _old_job(org, user, j.JobStatus.COMPLETED)
    still_open = _exception(org, job.id, ExceptionStatus.OPEN)
    resolved = _exception(org, job.id, ExceptionStatus.RESOLVED)
    at = VERY_OLD
    approvals = {
        "approved": _decided(org, user, reviewer, ApprovalStatus.APPROVED, at),
        "declined": _decided(org, user, reviewer, ApprovalStatus.DECLINED, at + dt.timedelta(minutes=1)),
        "cancelled": _decided(org, user, reviewer, ApprovalStatus.CANCELLED, at + dt.timedelta(minutes=2)),
        "authorised_export": _decided(org, user, reviewer, ApprovalStatus.APPROVED, at + dt.timedelta(minutes=3)),
        "open_exception": _decided(org, user, reviewer, ApprovalStatus.DECLINED, at + dt.timedelta(minutes=4),
                                   {"exception_id": str(still_open.id)}),
        "resolved_exception": _decided(org, user, reviewer, ApprovalStatus.APPROVED, at + dt.timedelta(minutes=5),
                                       {"exceptions": [str(resolved.id)]}),
        "named_by_pending": _decided(org, user, reviewer, ApprovalStatus.APPROVED, at + dt.timedelta(minutes=6)),
        "pending": Approval.request(organization_id=org, type=ApprovalType.SYSTEM_SETTING, title="t",
                                    description="d", metadata={}, requested_by=user, at=at),
        "young": _decided(org, user, reviewer, ApprovalStatus.APPROVED, NOW - dt.timedelta(days=300)),
    }
    with database.unit_of_work(org) as uow:
        uow.reconciliation_jobs.add(job)
        uow.exceptions.add(still_open)
        uow.exceptions.add(resolved)
        for approval in approvals.values():
            uow.approvals.add(approval)
        uow.data_exports.add(DataExport(
            id=uuid.uuid4(), organization_id=org, scope=ExportScope.ORGANIZATION, subject_user_id=None,
            requested_by=user, storage_path=f"organizations/{org}/exports/x.zip", created_at=VERY_OLD,
            updated_at=VERY_OLD, approval_id=approvals["authorised_export"].id))
        uow.commit()
    return {name: approval.id for name, approval in approvals.items()}


def _second_user(database: Any, org: uuid.UUID, user: uuid.UUID) -> uuid.UUID:
    from tests.contracts.identity_repositories import new_user

    with database.unit_of_work(org) as uow:
        reviewer = uow.users.add(new_user(org, email=f"checker-{uuid.uuid4().hex[:6]}@example.com"))
        uow.commit()
    return reviewer.id  # type: ignore[no-any-return]


def check_expired_approvals_name_why_each_is_kept_and_only_free_ones_delete(tenants: Tenants) -> None:
    database, (org, _), (other, _) = tenants
    approvals = _approval_world(tenants)
    references = frozenset({approvals["named_by_pending"]})
    with database.unit_of_work(org) as uow:
        expired = uow.retention.expired_approvals(RESULTS_CUTOFF, references, after=None, limit=100)
        first = uow.retention.expired_approvals(RESULTS_CUTOFF, references, after=None, limit=3)
        rest = uow.retention.expired_approvals(RESULTS_CUTOFF, references,
                                               after=(first[-1].decided_at, first[-1].approval_id), limit=100)
    by_id = {a.approval_id: a for a in expired}
    reasons = {name: by_id[approval_id].kept_because for name, approval_id in approvals.items()
               if approval_id in by_id}
    assert reasons == {"approved": None, "declined": None, "cancelled": None,
                       "authorised_export": KeptBecause.AUTHORISES_RECORD,
                       "open_exception": KeptBecause.OPEN_EXCEPTION, "resolved_exception": None,
                       "named_by_pending": KeptBecause.PENDING_APPROVAL}  # never `pending`; `young` is within
    assert [a.approval_id for a in [*first, *rest]] == [a.approval_id for a in expired]
    assert [a.decided_at for a in expired] == sorted(a.decided_at for a in expired)
    assert by_id[approvals["declined"]].status == "declined" and by_id[approvals["declined"]].type == "system_setting"
    with database.unit_of_work(other) as uow:  # another tenant: sees none, deletes none
        assert uow.retention.expired_approvals(RESULTS_CUTOFF, references, after=None, limit=100) == []
        assert uow.retention.delete_approval(approvals["approved"], RESULTS_CUTOFF) is False
        uow.commit()
    with database.unit_of_work(org) as uow:
        deleted = {name: uow.retention.delete_approval(approval_id, RESULTS_CUTOFF)
                   for name, approval_id in approvals.items()}
        uow.commit()
    # The delete itself refuses a pending, a young and an authorising approval, whatever the caller read.
    assert deleted == {"approved": True, "declined": True, "cancelled": True, "authorised_export": False,
                       "open_exception": True, "resolved_exception": True, "named_by_pending": True,
                       "pending": False, "young": False}
    with database.unit_of_work(org) as uow:
        assert {name for name, approval_id in approvals.items() if uow.approvals.get(approval_id)} == {
            "authorised_export", "pending", "young"}


def check_ended_sessions_are_listed_by_their_end_and_deleted(tenants: Tenants) -> None:
    from tests.contracts.identity_repositories import new_session

    database, (org, user), (other, other_user) = tenants
    now = dt.datetime.now(dt.UTC)
    day = dt.timedelta(days=1)
    sessions = {
        "expired_long_ago": dataclasses.replace(new_session(org, user), expires_at=now - 40 * day),
        "absolute_long_ago": dataclasses.replace(new_session(org, user), absolute_expires_at=now - 31 * day),
        "revoked_long_ago": dataclasses.replace(new_session(org, user), revoked_at=now - 35 * day,
                                                revoked_reason="logout"),
        "expired_lately": dataclasses.replace(new_session(org, user), expires_at=now - 2 * day),
        "active": new_session(org, user),
    }
    others = dataclasses.replace(new_session(other, other_user), expires_at=now - 40 * day)
    with database.unit_of_work(org) as uow:
        for session in sessions.values():
            uow.sessions.add(session)
        uow.commit()
    with database.unit_of_work(other) as uow:
        uow.sessions.add(others)
        uow.commit()
    cutoff = now - 30 * day
    with database.unit_of_work(org) as uow:
        ended = uow.retention.ended_sessions(cutoff, after=None, limit=100)
        first = uow.retention.ended_sessions(cutoff, after=None, limit=2)
        rest = uow.retention.ended_sessions(cutoff, after=first[-1], limit=100)
    names = {session.id: name for name, session in sessions.items()}
    assert sorted(names[i] for i in ended) == ["absolute_long_ago", "expired_long_ago", "revoked_long_ago"]
    assert [*first, *rest] == list(ended) and list(ended) == sorted(ended, key=str)
    with database.unit_of_work(org) as uow:
        assert uow.retention.delete_sessions([*ended, others.id]) == 3  # the other tenant's is not seen
        uow.commit()
    with database.unit_of_work(org) as uow:
        assert uow.retention.ended_sessions(cutoff, after=None, limit=100) == []
        assert uow.sessions.get(sessions["expired_lately"].id) is not None
    with database.unit_of_work(other) as uow:
        assert uow.sessions.get(others.id) is not None


CHECKS = [check_expired_files_name_why_each_is_kept, check_without_references_the_approval_files_are_free,
          check_pages_by_upload_time_then_id, check_pending_approvals_and_organizations,
          check_expired_jobs_name_why_each_is_kept,
          check_expired_approvals_name_why_each_is_kept_and_only_free_ones_delete,
          check_ended_sessions_are_listed_by_their_end_and_deleted]


def check_jobs_past_the_results_period_go_with_their_exceptions_and_outputs(container: Any) -> None:
    from reckai.application.context import RequestInfo
    from reckai.application.identity.organizations import onboard_organization
    from reckai.application.ports.audit import AuditQuery
    from reckai.application.retention import apply_retention
    from reckai.domain.ingestion.storage_keys import processed_key
    from tests.support.identity import DEFAULT_PASSWORD

    created = onboard_organization(
        container.identity, name="Old Jobs Bank", code=f"jobs-{uuid.uuid4().hex[:8]}", domain=None,
        subscription_tier="standard", admin_email="jobs.admin@example.com", admin_name="Jo Admin",
        admin_password=DEFAULT_PASSWORD, request=RequestInfo(), public=False)
    org, user = created.organization_id, created.admin_user_id
    jobs, references = _job_world(container.database, org, user)
    with container.database.unit_of_work(org) as uow:
        uow.approvals.add(Approval.request(
            organization_id=org, type=ApprovalType.SYSTEM_SETTING, title="keep these", description="d",
            metadata={"refs": sorted(str(ref) for ref in references)}, requested_by=user, at=NOW))
        uow.commit()
    outputs = {name: processed_key(org, job_id, "results", "parquet") for name, job_id in jobs.items()}
    for key in outputs.values():
        container.storage.put(key, [b"results"])
    doomed = {jobs["free"], jobs["resolved"]}

    def exists(job_id: uuid.UUID) -> bool:
        with container.database.unit_of_work(org) as uow:
            return uow.reconciliation_jobs.get(job_id) is not None

    [dry] = apply_retention(container.retention, dry_run=True, organization_id=org, now=NOW, batch_size=2)
    assert {job.job_id for job in dry.deleted_jobs} == doomed and len(dry.kept_jobs) == 5
    assert all(exists(job_id) for job_id in jobs.values())
    assert all(container.storage.exists(key) for key in outputs.values())

    [real] = apply_retention(container.retention, dry_run=False, organization_id=org, now=NOW, batch_size=2)
    assert {job.job_id for job in real.deleted_jobs} == doomed
    for name, job_id in jobs.items():
        assert exists(job_id) is (job_id not in doomed), name
        assert container.storage.exists(outputs[name]) is (job_id not in doomed), name
    with container.database.unit_of_work(org) as uow:  # the exceptions went with their job
        from reckai.application.ports.workflow import ExceptionQuery

        remaining = {item.job_id for item in uow.exceptions.list(ExceptionQuery(limit=100)).items}
    assert remaining == {jobs["open"], jobs["approval_exception"]}
    rows = [r.event for r in container.audit_log.list_records(org, AuditQuery(limit=500)).records
            if r.event.action == "retention.job_deleted"]
    assert sorted(str(row.resource_id) for row in rows) == sorted(str(job_id) for job_id in doomed)
    assert all(row.metadata["retention_days"] == 7 * 365 for row in rows)


# --- the use case over a whole container (memory: tests/unit/test_retention.py; PostgreSQL and the
# filesystem storage: tests/integration/test_retention_postgres.py) ---------------------------------


def check_dry_run_reports_and_the_real_run_deletes_rows_objects_and_audits(container: Any) -> None:
    from reckai.application.context import RequestInfo
    from reckai.application.identity.organizations import onboard_organization
    from reckai.application.ports.audit import AuditQuery
    from reckai.application.ports.files import NormalizedFile
    from reckai.application.retention import apply_retention
    from reckai.domain.ingestion.storage_keys import normalized_file_key
    from tests.support.identity import DEFAULT_PASSWORD

    created = onboard_organization(
        container.identity, name="Retained Bank", code=f"ret-{uuid.uuid4().hex[:8]}", domain=None,
        subscription_tier="standard", admin_email="ret.admin@example.com", admin_name="Ret Admin",
        admin_password=DEFAULT_PASSWORD, request=RequestInfo(), public=False)
    org, user = created.organization_id, created.admin_user_id
    world = _world((container.database, (org, user), (org, user)))
    normalized: dict[uuid.UUID, str] = {}
    with container.database.unit_of_work(org) as uow:
        for name in ("free", "resolved_exception", "stream"):
            file_id = world.files[name]
            key = normalized_file_key(org, file_id)
            uow.normalized_files.put(NormalizedFile(uuid.uuid4(), file_id, org, key, 1, None))
            normalized[file_id] = key
        uow.approvals.add(Approval.request(
            organization_id=org, type=ApprovalType.SYSTEM_SETTING, title="keep these", description="d",
            metadata={"refs": sorted(str(ref) for ref in world.references)}, requested_by=user, at=NOW))
        paths = {file_id: uow.files.get(file_id).storage_path for file_id in world.files.values()}
        uow.commit()
    for key in [*paths.values(), *normalized.values()]:
        container.storage.put(key, [b"bytes of " + key.encode()])
    doomed = {world.files["free"], world.files["resolved_exception"]}
    kept = {file_id for name, file_id in world.files.items() if file_id not in doomed and name != "young"}

    def retention_rows() -> list[Any]:
        page = container.audit_log.list_records(org, AuditQuery(limit=500))
        return [r.event for r in page.records if r.event.action.startswith("retention.")]

    def stored(file_id: uuid.UUID) -> bool:
        with container.database.unit_of_work(org) as uow:
            return uow.files.get(file_id) is not None

    [dry] = apply_retention(container.retention, dry_run=True, organization_id=org, now=NOW, batch_size=3)
    assert dry.dry_run and dry.uploads_days == 730
    assert {f.file_id for f in dry.deleted_files} == doomed
    assert {f.file_id for f in dry.kept_files} == kept
    assert dry.kept_by_reason() == {"stream": 1, "running_job": 1, "open_exception": 2, "pending_approval": 3}
    assert all(stored(file_id) for file_id in world.files.values())
    assert all(container.storage.exists(key) for key in [*paths.values(), *normalized.values()])
    assert retention_rows() == []

    [real] = apply_retention(container.retention, dry_run=False, organization_id=org, now=NOW, batch_size=3)
    assert {f.file_id for f in real.deleted_files} == doomed and {f.file_id for f in real.kept_files} == kept
    assert real.objects_not_deleted == []
    for file_id in world.files.values():
        assert stored(file_id) is (file_id not in doomed)
        assert container.storage.exists(paths[file_id]) is (file_id not in doomed)
    assert [container.storage.exists(key) for file_id, key in sorted(normalized.items())] == [
        file_id not in doomed for file_id in sorted(normalized)]
    rows = retention_rows()
    assert sorted(str(row.resource_id) for row in rows) == sorted(str(file_id) for file_id in doomed)
    assert {row.action for row in rows} == {"retention.file_deleted"}
    assert all(row.metadata["retention_days"] == 730 and row.metadata["objects"] in (1, 2) for row in rows)

    [again] = apply_retention(container.retention, dry_run=False, organization_id=org, now=NOW)
    assert again.deleted_files == [] and len(retention_rows()) == 2

    # the organization's own period, from its settings (the registry's `retention.uploads_days`)
    with container.database.unit_of_work(org) as uow:
        organization = uow.organizations.get(org)
        organization.settings = {**(organization.settings or {}), "retention": {"uploads_days": 3650}}
        uow.organizations.update(organization)
        uow.commit()
    with container.database.unit_of_work(org) as uow:
        uow.files.add(dataclasses.replace(new_file(org, user), uploaded_at=OLD))
        uow.commit()
    [longer] = apply_retention(container.retention, dry_run=True, organization_id=org, now=NOW)
    assert longer.uploads_days == 3650 and longer.deleted_files == [] and longer.kept_files == []


def check_decided_approvals_and_ended_sessions_go_in_the_run_audited(container: Any) -> None:
    """The run over approvals past `retention.results_days` from their decision and sessions ended
    more than `retention.sessions_days` ago: the dry run deletes nothing; the real run deletes the
    free ones, audits each approval and each batch of sessions; a second run deletes nothing."""
    from reckai.application.context import RequestInfo
    from reckai.application.identity.organizations import onboard_organization
    from reckai.application.ports.audit import AuditQuery
    from reckai.application.retention import apply_retention
    from tests.contracts.identity_repositories import new_session
    from tests.support.identity import DEFAULT_PASSWORD

    created = onboard_organization(
        container.identity, name="Old Approvals Bank", code=f"appr-{uuid.uuid4().hex[:8]}", domain=None,
        subscription_tier="standard", admin_email="appr.admin@example.com", admin_name="Ap Admin",
        admin_password=DEFAULT_PASSWORD, request=RequestInfo(), public=False)
    org, user = created.organization_id, created.admin_user_id
    approvals = _approval_world((container.database, (org, user), (org, user)))
    with container.database.unit_of_work(org) as uow:
        uow.approvals.add(Approval.request(
            organization_id=org, type=ApprovalType.SYSTEM_SETTING, title="names one", description="d",
            metadata={"see": str(approvals["named_by_pending"])}, requested_by=user, at=NOW))
        old_session = uow.sessions.add(dataclasses.replace(new_session(org, user),
                                                           expires_at=NOW - dt.timedelta(days=45)))
        fresh_session = uow.sessions.add(dataclasses.replace(new_session(org, user),
                                                             expires_at=NOW + dt.timedelta(days=7)))
        uow.commit()
    doomed = {approvals[name] for name in ("approved", "declined", "cancelled", "resolved_exception")}

    def stored(approval_id: uuid.UUID) -> bool:
        with container.database.unit_of_work(org) as uow:
            return uow.approvals.get(approval_id) is not None

    def retention_rows() -> list[Any]:
        page = container.audit_log.list_records(org, AuditQuery(limit=500))
        return [r.event for r in page.records if r.event.action.startswith("retention.")]

    [dry] = apply_retention(container.retention, dry_run=True, organization_id=org, batch_size=2, now=NOW)
    assert {a.approval_id for a in dry.deleted_approvals} == doomed
    assert {a.approval_id: a.kept_because for a in dry.kept_approvals} == {
        approvals["authorised_export"]: KeptBecause.AUTHORISES_RECORD,
        approvals["open_exception"]: KeptBecause.OPEN_EXCEPTION,
        approvals["named_by_pending"]: KeptBecause.PENDING_APPROVAL}
    assert dry.sessions_days == 30 and dry.deleted_sessions == 1
    assert all(stored(approval_id) for approval_id in approvals.values()) and retention_rows() == []

    [real] = apply_retention(container.retention, dry_run=False, organization_id=org, batch_size=2, now=NOW)
    assert {a.approval_id for a in real.deleted_approvals} == doomed and real.deleted_sessions == 1
    assert {name for name, approval_id in approvals.items() if stored(approval_id)} == {
        "authorised_export", "open_exception", "named_by_pending", "pending", "young"}
    with container.database.unit_of_work(org) as uow:
        assert uow.sessions.get(old_session.id) is None and uow.sessions.get(fresh_session.id) is not None
    rows = retention_rows()
    approval_rows = [row for row in rows if row.action == "retention.approval_deleted"]
    assert sorted(str(row.resource_id) for row in approval_rows) == sorted(str(a) for a in doomed)
    assert all(row.metadata["retention_days"] == 7 * 365 and row.metadata["approval_status"] in
               ("approved", "declined", "cancelled") for row in approval_rows)
    [sessions_row] = [row for row in rows if row.action == "retention.sessions_deleted"]
    assert sessions_row.metadata["deleted"] == 1 and sessions_row.metadata["retention_days"] == 30

    [again] = apply_retention(container.retention, dry_run=False, organization_id=org, now=NOW)
    assert again.deleted_approvals == [] and again.deleted_sessions == 0 and len(retention_rows()) == len(rows)
