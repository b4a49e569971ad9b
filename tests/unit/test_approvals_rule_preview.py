"""Rule preview: a completed job's normalized files re-run through the polars matcher with a proposed
rule change; the counts land on the rule_configuration approval. Also: source rows on the detail."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from reckai.adapters.memory.files import NORMALIZED
from reckai.adapters.polars.matcher_frames import frame_from_transactions
from reckai.adapters.polars.normalize import write_parquet_bytes
from reckai.application.errors import Conflict
from reckai.application.exceptions import exceptions as cases
from reckai.application.ports.files import NormalizedFile
from reckai.application.rules import rules as rule_cases
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.reconciliation.jobs import JobStatus, ReconciliationJob
from tests.unit.matching_builders import NO_MAPPING, txn
from tests.unit.workflow_builders import Org, memory_org

EXACT = {"rule_type": "exact", "field_mappings": [{"left": "reference", "right": "reference"}]}
PROFILE = {"name": "p", "currency": "NGN", "left": {"label": "Bank", "mapping": NO_MAPPING},
           "right": {"label": "Switch", "mapping": NO_MAPPING}, "rules": [{**EXACT, "name": "By reference"}]}


@pytest.fixture
def org() -> Org:
    return memory_org(bootstrap_in_memory())


def store_file(org: Org, rows: list[Any]) -> uuid.UUID:
    file_id = uuid.uuid4()
    key = f"organizations/{org.organization_id}/processed/files/{file_id}/normalized.parquet"
    org.container.storage.put(key, [write_parquet_bytes(frame_from_transactions(rows))])
    with org.uow() as uow:
        uow.put(NORMALIZED, uuid.uuid4(), NormalizedFile(uuid.uuid4(), file_id, org.organization_id, key, len(rows),
                                                         None))
        uow.commit()
    return file_id


def completed_job(org: Org, status: JobStatus = JobStatus.COMPLETED) -> uuid.UUID:
    day = "2026-01-05T10:00:00"
    left = store_file(org, [txn(1, 10_000, day, "REF1"), txn(2, 20_000, day, "REF2"), txn(3, 30_000, day, "X-3")])
    right = store_file(org, [txn(1, 10_000, day, "REF1"), txn(2, 20_050, day, "REF2"), txn(3, 30_000, day, "Y-3")])
    job = ReconciliationJob(id=uuid.uuid4(), organization_id=org.organization_id, name="jan", status=status,
                            created_by=org.users["admin"].id,
                            snapshot={"profile": PROFILE, "files": {
                                "left": {"file_id": str(left), "name": "bank.csv", "mapping": NO_MAPPING},
                                "right": {"file_id": str(right), "name": "switch.csv", "mapping": NO_MAPPING}}})
    with org.uow() as uow:
        uow.reconciliation_jobs.add(job)
        uow.commit()
    return job.id


def test_preview_counts_added_and_removed_matches(org: Org) -> None:
    job = completed_job(org)
    # amount tolerance of 1.00 NGN lets REF2 (off by 50 kobo) pair up too, as a suggestion
    looser = rule_cases.preview_rule(org.services, org.p("analyst"), job_id=job,
                                     definition={**EXACT, "tolerance_amount": "1.00"}, name="By reference")
    assert looser["matches"] == {"before": 1, "after": 1, "added": 0, "removed": 0, "changed": 0}
    assert looser["suggestions"] == {"before": 0, "after": 1, "added": 1, "removed": 0}
    assert looser["added"] == 1 and looser["removed"] == 0
    assert looser["examples"]["added"][0] | {"confidence": None} == {
        "left_row": 2, "right_row": 2, "status": "suggested", "rule": "By reference", "confidence": None}
    # matching on amount instead of reference: REF1 stays, the 300.00 rows with different refs join
    by_amount = rule_cases.preview_rule(org.services, org.p("analyst"), job_id=job,
                                        definition={"rule_type": "exact", "field_mappings": [
                                            {"left": "amount_minor", "right": "amount_minor"}]},
                                        name="By reference")
    assert by_amount["examples"]["added"] == [{"left_row": 3, "right_row": 3, "status": "auto",
                                               "rule": "By reference", "confidence": 1.0}]
    # deactivating the only rule removes every match
    off = rule_cases.preview_rule(org.services, org.p("analyst"), job_id=job,
                                  definition={**EXACT, "is_active": False}, name="By reference")
    assert off["removed"] == 1 and off["matches"]["after"] == 0


def test_preview_is_stored_on_the_approval_and_refused_for_unfinished_jobs(org: Org) -> None:
    job = completed_job(org)
    change = rule_cases.create_rule(org.services, org.p("admin"), name="Loose reference",
                                    definition={**EXACT, "tolerance_amount": "1.00"}, preview_job_id=job)
    preview = change.approval.metadata["preview"]
    assert preview["job_id"] == str(job) and preview["rule"]["name"] == "Loose reference"
    assert preview["matches"]["before"] == 1
    running = completed_job(org, JobStatus.PROCESSING)
    with pytest.raises(Conflict):
        rule_cases.preview_rule(org.services, org.p("analyst"), job_id=running, definition=EXACT)


def test_detail_shows_both_source_rows(org: Org) -> None:
    day = "2026-01-05T10:00:00"
    left = store_file(org, [txn(1, 10_000, day, "REF1"), txn(2, 25_000, day, "REF2", description="POS purchase")])
    right = store_file(org, [txn(1, 24_000, day, "REF2")])
    item = org.add_exception(job_id=org.job, left_file_id=left, left_row=2, right_file_id=right, right_row=1)
    detail = cases.exception_detail(org.services, org.p("analyst"), item.id, org.container.source_rows)
    assert detail.source_rows["left"]["reference"] == "REF2" and detail.source_rows["left"]["amount_minor"] == 25_000
    assert detail.source_rows["left"]["description"] == "POS purchase"
    assert detail.source_rows["right"]["amount_minor"] == 24_000
    assert dt.datetime.fromisoformat(detail.source_rows["right"]["transaction_date"]).day == 5
