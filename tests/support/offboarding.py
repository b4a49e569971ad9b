"""Offboarding (issue 17 item 7; docs/privacy.md, "Offboarding") over a whole container: the
in-memory one (tests/unit/test_offboarding.py) and PostgreSQL with the filesystem storage
(tests/integration/test_offboarding_postgres.py), through `reckai org offboard`'s own function."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import uuid
from typing import Any

import pytest

from reckai.application.context import RequestInfo
from reckai.application.errors import Unauthenticated
from reckai.application.identity.authenticate import authenticate_access_token
from reckai.application.identity.errors import InvalidCredentials
from reckai.application.identity.login import login
from reckai.application.identity.organizations import onboard_organization
from reckai.application.ports.audit import AuditQuery
from reckai.application.ports.personal_data import PersonalDataUnreadable
from reckai.domain.ingestion.storage_keys import QUARANTINE_ROOT, export_key, organization_prefix
from reckai.domain.privacy.exports import DataExport, ExportScope, ExportStatus
from reckai.domain.privacy.offboarding import OFFBOARDED_NAME, offboarded_code
from reckai.entrypoints.cli.audit import verify_command
from reckai.entrypoints.cli.org import offboard_command
from tests.support.identity import DEFAULT_PASSWORD

NOW = dt.datetime.now(dt.UTC)


def _organization(container: Any, label: str) -> tuple[uuid.UUID, uuid.UUID, str, str]:
    code = f"{label}-{uuid.uuid4().hex[:8]}"
    email = f"admin@{label}.example.com"
    created = onboard_organization(
        container.identity, name=f"{label.title()} Bank Ltd", code=code, domain=f"{label}.example.com",
        subscription_tier="standard", admin_email=email, admin_name="Ada Admin", admin_password=DEFAULT_PASSWORD,
        request=RequestInfo(), public=False)
    return created.organization_id, created.admin_user_id, code, email


def _export(container: Any, org: uuid.UUID, user: uuid.UUID, status: ExportStatus = ExportStatus.COMPLETED,
            scope: ExportScope = ExportScope.ORGANIZATION) -> uuid.UUID:
    export_id = uuid.uuid4()
    done = status is ExportStatus.COMPLETED
    with container.database.unit_of_work(org) as uow:
        uow.data_exports.add(DataExport(
            id=export_id, organization_id=org, scope=scope,
            subject_user_id=user if scope is ExportScope.USER else None, requested_by=user,
            storage_path=export_key(org, export_id, NOW.date()), created_at=NOW, updated_at=NOW, status=status,
            size_bytes=10 if done else None, sha256="a" * 64 if done else None, completed_at=NOW if done else None,
            expires_at=NOW + dt.timedelta(days=30) if done else None))
        uow.commit()
    return export_id


def run_offboard(container: Any, code: str, *extra: str) -> tuple[int, str, str]:
    args = argparse.Namespace(code=code, without_export="--without-export" in extra,
                              reason=extra[-1] if extra and extra[-1] != "--without-export" else None)
    out, err = io.StringIO(), io.StringIO()
    return offboard_command(container, args, out, err), out.getvalue(), err.getvalue()


def _actions(container: Any, org: uuid.UUID) -> list[Any]:
    return [r.event for r in container.audit_log.list_records(org, AuditQuery(limit=500)).records]


def check_offboarding(container: Any, *, encrypted: bool) -> None:
    """`encrypted`: the adapter stores personal data under the organization's data key (PostgreSQL),
    which offboarding shreds; the in-memory one stores it in plain text and has no key."""
    org, admin, code, email = _organization(container, "leaving")
    other, _, other_code, other_email = _organization(container, "staying")
    signed_in = login(container.identity, organization_code=code, email=email, password=DEFAULT_PASSWORD,
                      request=RequestInfo())
    assert signed_in.tokens is not None
    objects = [f"{organization_prefix(org)}uploads/2026/01/{uuid.uuid4()}.csv",
               f"{organization_prefix(org)}processed/{uuid.uuid4()}/results.csv",
               f"{organization_prefix(org)}reports/2026/01/{uuid.uuid4()}.xlsx",
               export_key(org, uuid.uuid4(), NOW.date()),
               f"{QUARANTINE_ROOT}/{org}/2026/01/{uuid.uuid4()}.csv"]
    kept = f"{organization_prefix(other)}uploads/2026/01/{uuid.uuid4()}.csv"
    for key in [*objects, kept]:
        container.storage.put(key, [b"bytes of " + key.encode()])

    # Refused: no completed organization export (a person's export does not count).
    _export(container, org, admin, scope=ExportScope.USER)
    status, _, err = run_offboard(container, code)
    assert status == 2 and "no completed organization export" in err
    # Refused: a legal hold, even with an export.
    export_id = _export(container, org, admin)
    with container.database.unit_of_work(org) as uow:
        organization = uow.organizations.get(org)
        organization.settings = {"retention": {"legal_hold": {"until": (NOW + dt.timedelta(days=60)).date()
                                                              .isoformat(), "reason": "litigation 2026/41"}}}
        uow.organizations.update(organization)
        uow.commit()
    status, _, err = run_offboard(container, code)
    assert status == 2 and "legal hold" in err and "litigation 2026/41" in err
    with container.database.unit_of_work(org) as uow:
        organization = uow.organizations.get(org)
        organization.settings = {}
        uow.organizations.update(organization)
        uow.commit()
    # Refused while an export is being generated (its zip would land after the deletion).
    running = _export(container, org, admin, ExportStatus.RUNNING)
    status, _, err = run_offboard(container, code)
    assert status == 2 and f"export {running} is being generated" in err
    with container.database.unit_of_work(org) as uow:
        uow.data_exports.update(uow.data_exports.get_for_update(running).failed("stopped by hand", NOW))
        uow.commit()
    pending = _export(container, org, admin, ExportStatus.PENDING, ExportScope.USER)
    assert all(container.storage.exists(key) for key in objects)  # nothing happened so far

    status, out, err = run_offboard(container, code.upper())
    assert status == 0, err
    assert f"OFFBOARDED organization {org} (export {export_id})" in out and "1 users deactivated" in out
    assert "5 objects deleted" in out
    assert not any(container.storage.exists(key) for key in objects)
    assert list(container.storage.list_keys(organization_prefix(org))) == []
    assert container.storage.exists(kept)  # another organization's objects stay

    # The tombstone: the row stays, pseudonymised and inactive; the old code is free.
    with container.database.unit_of_work(org) as uow:
        tombstone = uow.organizations.get(org)
        if encrypted:  # the data key is shredded: the user's e-mail and name no longer open
            with pytest.raises(PersonalDataUnreadable):
                uow.users.get(admin)
            admin_user = None
        else:
            admin_user = uow.users.get(admin)
        assert uow.data_exports.get(export_id) is not None  # rows stay (the objects went)
        assert uow.data_exports.get(pending).status is ExportStatus.FAILED  # its job will do nothing
    assert tombstone.name == OFFBOARDED_NAME and tombstone.code == offboarded_code(code)
    assert tombstone.domain is None and tombstone.is_active is False
    assert set(tombstone.settings) == {"offboarded"} and tombstone.settings["offboarded"]["export_id"] == str(
        export_id)
    assert admin_user is None or (admin_user.is_active is False and admin_user.mfa_secret is None)
    with container.database.unit_of_work(None) as uow:
        assert uow.organizations.find_id_by_code(code) is None

    # Sign-in refused, the right credentials as the wrong ones (no user of it can be found); the
    # old token is dead.
    with pytest.raises(InvalidCredentials):
        login(container.identity, organization_code=code, email=email, password=DEFAULT_PASSWORD,
              request=RequestInfo())
    with pytest.raises(InvalidCredentials):
        login(container.identity, organization_code=code, email=email, password="Wrong-password-1!",
              request=RequestInfo())
    with pytest.raises(Unauthenticated):
        authenticate_access_token(container.identity, signed_in.tokens.access_token)
    # The other organization is untouched.
    assert login(container.identity, organization_code=other_code, email=other_email, password=DEFAULT_PASSWORD,
                 request=RequestInfo()).tokens is not None

    # Audited in the organization's own chain, which still verifies.
    events = _actions(container, org)
    [offboarded] = [e for e in events if e.action == "organization.offboarded"]
    assert offboarded.metadata["export_id"] == str(export_id) and offboarded.metadata["without_export"] is False
    assert offboarded.metadata["users_deactivated"] == 1
    assert offboarded.metadata["data_encryption_destroyed"] == (1 if encrypted else 0)
    [deleted] = [e for e in events if e.action == "organization.offboard.objects_deleted"]
    assert deleted.metadata == {"objects_deleted": 5, "objects_not_deleted": 0}
    assert [e for e in events if e.action == "auth.login.failed"] == []  # not the tombstone's: unknown accounts
    out_verify = io.StringIO()
    assert verify_command(container.audit_log, container.audit_signer, org, out_verify) == 0, out_verify.getvalue()
    assert out_verify.getvalue().startswith(f"OK organization {org}: ")

    # Again: a tombstone is recognised by its old code; only the objects' deletion is retried.
    status, out, _ = run_offboard(container, code)
    assert status == 0 and "already offboarded; 0 objects deleted" in out
    assert len([e for e in _actions(container, org) if e.action == "organization.offboarded"]) == 1

    # Without an export: only with the override and a reason, both audited.
    assert run_offboard(container, other_code, "--without-export")[0] == 2  # no reason
    status, out, err = run_offboard(container, other_code, "--without-export", "customer insolvent; liquidator declined")
    assert status == 0, err
    assert "WITHOUT an export (customer insolvent; liquidator declined)" in out
    assert not container.storage.exists(kept)
    [override] = [e for e in _actions(container, other) if e.action == "organization.offboarded"]
    assert override.metadata["without_export"] is True and override.metadata["export_id"] is None
    assert override.metadata["override_reason"] == "customer insolvent; liquidator declined"

    assert run_offboard(container, "no-such-org")[0] == 2
