"""A stream world for tests on any container (in memory or PostgreSQL): small bank and switch
files in the card-vs-bank-a layouts, an exact-reference rule, and the stream use cases driven the way
the API drives them, with each run executed in process by the worker step."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from reckai.application.context import Caller
from reckai.application.files.mapping import confirm_mapping
from reckai.application.files.upload import upload_file, validate_form
from reckai.application.ports.rate_limit import TIERS
from reckai.application.ports.reconciliations import RuleVersion
from reckai.application.reconciliations.worker import run_reconciliation_attempt
from reckai.application.streams.commands import (
    CreateStreamRequest,
    SideRequest,
    add_stream_file,
    create_stream,
    start_stream_run,
)
from reckai.bootstrap import Container
from reckai.domain.streams.streams import Stream, StreamRun
from reckai.settings import ReconciliationSettings
from tests.contracts.identity_repositories import signup
from tests.support import reconciliation_jobs as rj

# Exact reference, a few days either way (a timing difference across a month end still matches).
EXACT_RULE = {"rule_type": "exact", "priority": 10, "date_tolerance_days": 5,
              "field_mappings": [{"left": "reference", "right": "reference"}],
              "conditions": {"right": [{"field": "status", "op": "eq", "value": "success"}],
                             "auto_match_threshold": 0.5}}

Bank = tuple[str, str, str]  # (date YYYY-MM-DD, reference, amount like "100.00")
Switch = tuple[str, str, str]  # (date-time YYYY-MM-DD HH:MM:SS, reference, amount)


def bank_csv(rows: list[Bank], balance: str = "0.00") -> bytes:
    """The balance column is not mapped: another balance gives other bytes, the same canonical rows."""
    lines = ["trans_date,value_date,reference,narration,amount,currency,balance"]
    lines += [f"{day},{day},{ref},POS PURCHASE RRN:{ref},-{amount},NGN,{balance}" for day, ref, amount in rows]
    return ("\n".join(lines) + "\n").encode()


def switch_csv(rows: list[Switch], note: str = "") -> bytes:
    lines = ["tran_datetime,rrn,stan,pan,amount,currency,terminal_id,merchant_id,merchant_name,channel,response_code"]
    lines += [f"{moment},{ref},{ref[-6:]},539983******0001,{amount},NGN,20570464,MID1,SHOP{note},POS,00"
              for moment, ref, amount in rows]
    return ("\n".join(lines) + "\n").encode()


@dataclasses.dataclass
class StreamWorld:
    container: Container
    caller: Caller
    rule_id: uuid.UUID
    replaced: dict[str, Any] = dataclasses.field(default_factory=dict)  # ports the runs use instead

    @property
    def services(self) -> Any:
        return dataclasses.replace(self.container.reconciliations,
                                   settings=ReconciliationSettings(lease_seconds=30, heartbeat_seconds=0.05),
                                   **self.replaced)

    @property
    def organization_id(self) -> uuid.UUID:
        return self.caller.organization_id

    def upload(self, data: bytes, name: str, file_type: str, *, normalize: bool = True,
               mapping: dict[str, Any] | None = None) -> uuid.UUID:
        profile = rj.profile()
        side = "left" if file_type == "bank" else "right"
        services = self.container.files
        self.container.rate_limiter.reset(TIERS["upload"], str(self.caller.user_id))
        file = upload_file(services, self.caller, validate_form(name, file_type, None), [data]).file
        confirm_mapping(services, self.caller, file.id, mapping or profile[side]["mapping"])
        if normalize:
            assert self.container.reconciliations.normalize_file is not None
            self.container.reconciliations.normalize_file(self.organization_id, file.id)
        return file.id  # type: ignore[no-any-return]

    def create(self, left_template: uuid.UUID, right_template: uuid.UUID, name: str = "POS card vs bank") -> Stream:
        return create_stream(self.services, self.caller, CreateStreamRequest(
            name=name, left=SideRequest(template_file_id=left_template),
            right=SideRequest(template_file_id=right_template), currency="NGN", rule_ids=[self.rule_id],
            leading_side="right"))

    def add(self, stream: Stream, file_id: uuid.UUID) -> None:
        add_stream_file(self.services, self.caller, stream.id, file_id)

    def day(self, stream: Stream, bank: list[Bank], switch: list[Switch], tag: str) -> tuple[uuid.UUID, uuid.UUID]:
        left = self.upload(bank_csv(bank), f"bank-{tag}.csv", "bank")
        right = self.upload(switch_csv(switch), f"switch-{tag}.csv", "switch")
        self.add(stream, left)
        self.add(stream, right)
        return left, right

    def run(self, stream: Stream) -> StreamRun:
        run = start_stream_run(self.services, self.caller, stream.id)
        outcome = run_reconciliation_attempt(self.services, self.organization_id, run.job_id, 1, "pytest")
        with self.container.database.unit_of_work(self.organization_id) as uow:
            job = uow.reconciliation_jobs.get(run.job_id)
            stored = uow.streams.run_of_job(run.job_id)
        assert outcome == "completed", job.error_message if job else outcome
        assert stored is not None
        return stored

    def exceptions(self, stream: Stream) -> dict[tuple[int | None, int | None], Any]:
        """The stream's exceptions by (left seq, right seq)."""
        with self.container.database.unit_of_work(self.organization_id) as uow:
            found = {}
            for item in uow.streams.breaks(stream.id, active_only=False):
                found[(item.left_seq, item.right_seq)] = uow.exceptions.get(item.exception_id)
            return found


def stream_world(container: Container) -> StreamWorld:
    created, _ = signup(container.database)
    rule = RuleVersion(rule_id=uuid.uuid4(), version=1, name="rrn-exact", definition=EXACT_RULE,
                       applies_to=("bank", "switch"))
    with container.database.unit_of_work(created.organization_id) as uow:
        uow.matching_rules.add_version(rule, created_by=created.admin_user_id, priority=10)
        uow.commit()
    return StreamWorld(container, Caller(created.organization_id, created.admin_user_id), rule.rule_id)


def at(day: str) -> dt.date:
    return dt.date.fromisoformat(day)
