"""list_job_outputs, job_output_download_url: getting a completed job's output files out.

A job writes `results.csv` and `results.parquet` to processed/{job_id}/ (worker.py); its summary is
stored on the row, and `summary.json` is that summary rendered (sorted keys, two-space indent), so
it says exactly what GET /api/reconciliations/:id says. The rendering is deterministic: its size and
SHA-256 are the same at every listing, and the object written for its download link is always the
same bytes (a completed job's summary never changes).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from reckai.application.context import Caller, Outcome
from reckai.application.errors import NotFound, ServiceUnavailable
from reckai.application.files.queries import DownloadLink
from reckai.application.ports.storage import DOWNLOAD_URL_LIFETIME, StorageError, StorageObjectMissing
from reckai.application.reconciliations.errors import JobNotCompleted, JobNotFound
from reckai.application.reconciliations.services import ReconciliationServices, job_event
from reckai.domain.ingestion.storage_keys import processed_key
from reckai.domain.reconciliation.jobs import JobStatus, ReconciliationJob

# name -> (stored object name, extension, content type); the order is the listing's
OUTPUTS: dict[str, tuple[str, str, str]] = {
    "results.csv": ("results", "csv", "text/csv"),
    "results.parquet": ("results", "parquet", "application/vnd.apache.parquet"),
    "summary.json": ("summary", "json", "application/json"),
}
RENDERED = "summary.json"


@dataclass(frozen=True)
class JobOutput:
    name: str
    content_type: str
    size_bytes: int
    sha256: str


def render_summary(summary: dict[str, Any] | None) -> bytes:
    return (json.dumps(summary or {}, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


def _completed_job(services: ReconciliationServices, caller: Caller, job_id: uuid.UUID) -> ReconciliationJob:
    with services.database.unit_of_work(caller.organization_id) as uow:
        job = uow.reconciliation_jobs.get(job_id)
    if job is None:
        raise JobNotFound(job_id)
    if job.status is not JobStatus.COMPLETED:
        raise JobNotCompleted(job_id, job.status.value)
    return job


def _key(job: ReconciliationJob, name: str) -> str:
    stored, extension, _ = OUTPUTS[name]
    return processed_key(job.organization_id, job.id, stored, extension)


def _describe(services: ReconciliationServices, job: ReconciliationJob, name: str) -> JobOutput | None:
    content_type = OUTPUTS[name][2]
    if name == RENDERED:
        body = render_summary(job.summary)
        return JobOutput(name, content_type, len(body), hashlib.sha256(body).hexdigest())
    try:
        stored = services.storage.head(_key(job, name))
    except StorageObjectMissing:
        return None  # an output this job never wrote (or an operator removed): not listed
    except StorageError as exc:
        raise ServiceUnavailable("storage", type(exc).__name__) from exc
    return JobOutput(name, content_type, stored.size_bytes, stored.sha256 or "")


def list_job_outputs(services: ReconciliationServices, caller: Caller, job_id: uuid.UUID) -> list[JobOutput]:
    """The completed job's output files with size and SHA-256 (JobNotCompleted before that)."""
    job = _completed_job(services, caller, job_id)
    return [output for name in OUTPUTS if (output := _describe(services, job, name)) is not None]


def job_output_download_url(services: ReconciliationServices, caller: Caller, job_id: uuid.UUID,
                            name: str) -> DownloadLink:
    """A link to one output file valid for one hour (spec §6.3), like a file's; audited with the
    file's name, size and SHA-256."""
    if name not in OUTPUTS:
        raise NotFound("output", name)
    job = _completed_job(services, caller, job_id)
    key = _key(job, name)
    try:
        if name == RENDERED:
            services.storage.put(key, [render_summary(job.summary)], content_type=OUTPUTS[name][2])
        output = _describe(services, job, name)
        if output is None:
            raise NotFound("output", name)
        expires_at = services.now() + DOWNLOAD_URL_LIFETIME
        url = services.storage.download_url(key, expires_in=DOWNLOAD_URL_LIFETIME,
                                            download_name=f"{job.id}-{name}")
    except StorageError as exc:
        raise ServiceUnavailable("storage", type(exc).__name__) from exc
    with services.database.unit_of_work(caller.organization_id) as uow:
        services.audit_log.record(uow, job_event(caller, "reconciliation.output.download_link_issued", job.id,
                                                 outcome=Outcome.DONE, name=name, size_bytes=output.size_bytes,
                                                 sha256=output.sha256))
        uow.commit()
    return DownloadLink(url=url, expires_at=expires_at)
