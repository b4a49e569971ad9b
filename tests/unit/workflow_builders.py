"""Builders for workflow use-case tests: an organization with users of each role, exceptions,
principals, over any container (in-memory or PostgreSQL-backed)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reckai.domain.exceptions.lifecycle import ExceptionItem
from reckai.domain.exceptions.manual_matching import MatchGroup, MatchMember, RowRef
from reckai.domain.exceptions.policy import SlaPolicy, parse_workflow_settings
from reckai.domain.identity.entities import User
from reckai.domain.identity.permissions import permissions_for
from reckai.domain.identity.principal import Principal


def principal_of(user: User) -> Principal:
    return Principal(user.id, user.organization_id, user.role, permissions_for(user.role), None, "jti", user.email,
                     True)


@dataclass
class Org:
    container: Any
    organization_id: uuid.UUID
    users: dict[str, User] = field(default_factory=dict)
    # makes a reconciliation job id (PostgreSQL needs a real row; in memory any id will do)
    job_factory: Callable[[], uuid.UUID] = uuid.uuid4
    _job: uuid.UUID | None = None

    @property
    def job(self) -> uuid.UUID:
        if self._job is None:
            self._job = self.job_factory()
        return self._job

    def outbox(self, actor_name: str) -> list[dict[str, Any]]:
        """Payloads of this organization's outbox messages for one job type, oldest first."""
        store = self.container.job_outbox
        if hasattr(store, "records"):
            return [r.payload for r in store.records()
                    if r.actor_name == actor_name and r.organization_id == self.organization_id]
        from sqlalchemy import text

        with self.uow() as uow:
            rows = uow.connection.execute(text(
                "SELECT payload FROM outbox_messages WHERE actor_name = :name ORDER BY created_at, id"),
                {"name": actor_name}).all()
        return [dict(r.payload) for r in rows]

    @property
    def services(self) -> Any:
        return self.container.workflow

    def uow(self) -> Any:
        return self.container.database.unit_of_work(self.organization_id)

    def p(self, name: str) -> Principal:
        return principal_of(self.users[name])

    def add_user(self, name: str, role: str, active: bool = True) -> User:
        now = dt.datetime.now(dt.UTC)
        user = User(id=uuid.uuid4(), organization_id=self.organization_id, email=f"{name}.{uuid.uuid4().hex[:6]}@x.test",
                    password_hash="$2b$04$not-a-real-hash", name=name.title(), role=role, is_active=active,
                    created_at=now, updated_at=now, password_changed_at=now)
        with self.uow() as uow:
            stored = uow.users.add(user)
            uow.commit()
        self.users[name] = stored
        return stored

    def set_settings(self, settings: dict[str, Any]) -> None:
        with self.uow() as uow:
            organization = uow.organizations.get(self.organization_id)
            organization.settings = {**(organization.settings or {}), **settings}
            uow.organizations.update(organization)
            uow.commit()

    def settings(self) -> dict[str, Any]:
        with self.uow() as uow:
            return dict(uow.organizations.get(self.organization_id).settings or {})

    def add_exception(self, *, job_id: uuid.UUID, amount: str | None = "250.00", severity: str = "medium",
                      created_at: dt.datetime | None = None, type: str = "amount_mismatch",
                      **fields: Any) -> ExceptionItem:
        sla = SlaPolicy()
        with self.uow() as uow:
            organization = uow.organizations.get(self.organization_id)
            sla = parse_workflow_settings(organization.settings or {}).sla
            item = ExceptionItem.new(organization_id=self.organization_id, job_id=job_id, type=type,
                                      severity=severity, description="a break",
                                      created_at=created_at or dt.datetime.now(dt.UTC), sla=sla,
                                      amount=Decimal(amount) if amount is not None else None, **fields)
            uow.exceptions.add(item)
            uow.commit()
        return item

    def get(self, exception_id: uuid.UUID) -> ExceptionItem:
        with self.uow() as uow:
            return uow.exceptions.get(exception_id)


def memory_org(container: Any) -> Org:
    with container.database.unit_of_work(None) as uow:
        created = uow.organizations.create_with_admin(name="Acme", code=f"acme-{uuid.uuid4().hex[:6]}", domain=None,
                                                      admin_email="admin@acme.test", admin_name="Admin",
                                                      admin_password_hash="$2b$04$not-a-real-hash")
        uow.commit()
    org = Org(container, created.organization_id)
    with org.uow() as uow:
        org.users["admin"] = uow.users.get(created.admin_user_id)
    for name, role in (("analyst", "analyst"), ("analyst2", "analyst"), ("auditor", "auditor"),
                       ("supervisor", "supervisor"), ("supervisor2", "supervisor")):
        org.add_user(name, role)
    return org


def seed_stored_rows(container: Any, organization_id: uuid.UUID, file_id: uuid.UUID,
                     rows: dict[int, tuple[int, str]], uploaded_by: uuid.UUID | None = None) -> None:
    """A file's normalized form with these rows ({row_number: (amount_minor, currency)}): what the
    closing rule and manual matching read the rows' amounts from. The file's row is made when
    `uploaded_by` is given (else it must exist)."""
    import io

    import polars as pl

    from reckai.application.ports.files import NormalizedFile, ReconciliationFile
    from reckai.domain.ingestion.storage_keys import organization_prefix

    frame = pl.DataFrame({"row_number": list(rows), "amount_minor": [a for a, _ in rows.values()],
                          "currency": [c for _, c in rows.values()]},
                         schema={"row_number": pl.Int64, "amount_minor": pl.Int64, "currency": pl.String})
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    key = f"{organization_prefix(organization_id)}normalized/{file_id}.parquet"
    container.storage.put(key, [buffer.getvalue()])
    with container.database.unit_of_work(organization_id) as uow:
        if uploaded_by is not None:
            uow.files.add(ReconciliationFile(file_id, organization_id, "rows.csv", "rows.csv", "bank", "csv", 1, key,
                                             "normalized", uploaded_by))
        uow.normalized_files.put(NormalizedFile(uuid.uuid4(), file_id, organization_id, key, len(rows), None))
        uow.commit()


def job_with_files(org: Org, rows: dict[str, dict[int, tuple[int, str]]],
                   suggestions: tuple[tuple[int, int], ...] = ()) -> tuple[uuid.UUID, dict[str, uuid.UUID]]:
    """A reconciliation job of `org` over a left and a right file whose stored rows are `rows[side]`
    ({row_number: (amount_minor, currency)}), with the engine's suggested pairs `suggestions`;
    in memory or on PostgreSQL."""
    job_id = org.job_factory()
    files = {side: uuid.uuid4() for side in ("left", "right")}
    admin = org.users["admin"].id
    for side, file_id in files.items():
        seed_stored_rows(org.container, org.organization_id, file_id, rows[side], uploaded_by=admin)
    with org.uow() as uow:
        if hasattr(uow.matches, "seed_job_files"):
            uow.matches.seed_job_files(job_id, files["left"], files["right"])
            for left, right in suggestions:
                uow.matches.seed_suggestion(MatchGroup(uuid.uuid4(), org.organization_id, job_id, "suggested", [
                    MatchMember("left", RowRef(files["left"], left)), MatchMember("right", RowRef(files["right"], right))],
                    rule_version=1, evidence={"rule": "fuzzy"}))
        else:
            from sqlalchemy import text

            for side, file_id in files.items():
                uow.connection.execute(text(
                    "INSERT INTO reconciliation_job_files (job_id, file_id, organization_id, side)"
                    " VALUES (:job, :file, :org, :side)"),
                    {"job": job_id, "file": file_id, "org": org.organization_id, "side": side})
            for left, right in suggestions:
                uow.connection.execute(text(
                    "INSERT INTO reconciliation_matches (organization_id, job_id, attempt, status, left_row, right_row,"
                    " rule, rule_version, confidence) VALUES (:org, :job, 1, 'suggested', :l, :r, 'fuzzy', 1, 0.7)"),
                    {"org": org.organization_id, "job": job_id, "l": left, "r": right})
        uow.commit()
    return job_id, files
