"""Field-level encryption of personal data on PostgreSQL (issue 17 item 4; docs/privacy.md,
"Personal data at rest"): only ciphertext at rest, sign-in and uniqueness through the blind
index, the migration of existing rows (refused without the key), and `reckai keys rotate` while
other threads sign in, read and add users."""

from __future__ import annotations

import argparse
import base64
import io
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from reckai.adapters.postgres import migrations
from reckai.adapters.postgres.engine import create_engine
from reckai.adapters.postgres.unit_of_work import PostgresDatabase
from reckai.adapters.security.personal_data import PersonalDataKeys, master_keys
from reckai.application.context import RequestInfo
from reckai.application.identity.passwords import RESET_ADDRESS_CONTEXT
from reckai.application.identity.users import operator_add_user
from reckai.application.ports.personal_data import DataKeyUnavailable, PersonalDataUnreadable
from reckai.bootstrap import Container, bootstrap
from reckai.domain.identity.entities import User
from reckai.entrypoints.cli.keys import rotate_command
from reckai.entrypoints.cli.main import main as cli
from reckai.entrypoints.http.app import create_app
from reckai.settings import (
    DEV_DATA_ENCRYPTION_KEY,
    DEV_KEY_ID,
    DatabaseSettings,
    MailerSettings,
    Mode,
    SecuritySettings,
    Settings,
    StorageSettings,
)
from tests.fixtures.postgres import PgDatabase, create_tenant, development_master_keys
from tests.support.identity import (
    DEFAULT_PASSWORD,
    DEVELOPMENT_SECRETS_ENV,
    bearer,
    login,
    onboard,
    relax_auth_limits,
)

pytestmark = pytest.mark.integration

NEW_MASTER_KEY = base64.b64encode(bytes(range(32))).decode()


def _settings(database: PgDatabase, tmp_path: Path, security: SecuritySettings | None = None) -> Settings:
    return Settings(
        mode=Mode.EMBEDDED,
        database=DatabaseSettings(url=database.app_url, pool_size=6),
        storage=StorageSettings(backend="filesystem", filesystem_root=tmp_path / "storage"),
        mailer=MailerSettings(backend="file", outbox_dir=tmp_path / "mail"),
        security=security or SecuritySettings(),
    )


@pytest.fixture
def container(pg_fresh_database: PgDatabase, tmp_path: Path) -> Iterator[Container]:
    built = bootstrap(_settings(pg_fresh_database, tmp_path))
    try:
        yield built
    finally:
        built.close()


def _rows(database: PgDatabase, statement: str, **params: Any) -> list[Any]:
    engine = create_engine(database.admin_url, pool_size=1)  # the superuser: every tenant's rows as stored
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(statement), params).all())
    finally:
        engine.dispose()


def test_only_ciphertext_at_rest_and_sign_in_through_the_blind_index(container: Container,
                                                                     pg_fresh_database: PgDatabase) -> None:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        org_id, admin = onboard(client, admin_email="Mary.Jackson@NASA.example", admin_name="Mary Jackson")
        # the address typed in another case and with spaces finds the account (blind index of the normal form)
        token = login(client, admin.org_code, "  mary.jackson@nasa.EXAMPLE ", DEFAULT_PASSWORD)
        created = client.post("/api/users", json={"email": "Dorothy.Vaughan@NASA.example", "name": "Dorothy Vaughan",
                                                  "role": "analyst"}, headers=bearer(token))
        assert created.status_code == 201, created.text
        taken = client.post("/api/users", json={"email": " DOROTHY.vaughan@nasa.example", "name": "Someone Else",
                                                "role": "analyst"}, headers=bearer(token))
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "EMAIL_TAKEN"
        # A supervisor needs a checker (an operator adds the first one): until one approves, the address
        # and name wait in a user_onboarding approval's metadata.
        operator_add_user(container.identity, organization_code=admin.org_code, email="Checker.One@NASA.example",
                          name="Checker One", role="supervisor", password=DEFAULT_PASSWORD,
                          request=RequestInfo(user_agent="tests"))
        pending = client.post("/api/users", json={"email": "Katherine.Johnson@NASA.example",
                                                  "name": "Katherine Johnson", "role": "supervisor"},
                              headers=bearer(token))
        assert pending.status_code == 202, pending.text
        approval_id = pending.json()["data"]["pending_approval"]["id"]
        shown = client.get(f"/api/approvals/{approval_id}", headers=bearer(token)).json()["data"]["approval"]
        assert (shown["metadata"]["email"], shown["metadata"]["name"]) == ("katherine.johnson@nasa.example",
                                                                          "Katherine Johnson")
        listed = client.get("/api/users?sort=name", headers=bearer(token)).json()["data"]
        assert [(u["name"], u["email"]) for u in listed] == [
            ("Checker One", "Checker.One@NASA.example"), ("Dorothy Vaughan", "Dorothy.Vaughan@NASA.example"),
            ("Mary Jackson", "Mary.Jackson@NASA.example")]
        relax_auth_limits(client, admin.org_code, admin.email)
        assert client.post("/api/auth/password/reset", json={"organization_code": admin.org_code,
                                                             "email": admin.email}).status_code == 202

    stored = _rows(pg_fresh_database, "SELECT email, name, email_index FROM users WHERE organization_id = :org",
                   org=org_id)
    assert len(stored) == 3
    for email, name, email_index in stored:
        assert email.startswith("pii1:dk-") and name.startswith("pii1:dk-") and len(email_index) == 43
        for personal in ("Mary", "Jackson", "Dorothy", "Vaughan", "Checker", "NASA.example", "nasa.example"):
            assert personal not in email + name + email_index
    (metadata,) = [row[0] for row in _rows(pg_fresh_database, "SELECT metadata FROM approvals WHERE id = :id",
                                           id=uuid.UUID(approval_id))]
    assert metadata["role"] == "supervisor" and metadata["email"].startswith("pii1:")
    assert "Katherine" not in json.dumps(metadata) and "katherine.johnson" not in json.dumps(metadata)
    (key,) = _rows(pg_fresh_database, "SELECT key_id, master_key_id, length(wrapped_key) FROM organization_data_keys"
                   " WHERE organization_id = :org", org=org_id)
    assert key[1] == DEV_KEY_ID and key[2] == 12 + 32 + 16  # nonce, data key, tag: never the key in clear
    payloads = [row[0] for row in _rows(pg_fresh_database, "SELECT payload FROM outbox_messages"
                                        " WHERE actor_name = 'send_password_reset'")]
    assert payloads and not [p for p in payloads if "NASA.example" in json.dumps(p) or "nasa.example" in json.dumps(p)]


def test_the_migration_encrypts_existing_rows_and_refuses_without_the_key(pg_database_factory: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    database = pg_database_factory(migrate=False)
    migrations.upgrade(database.owner_url, "0033_retention_approvals")
    admin = create_engine(database.admin_url, pool_size=1)
    try:
        tenant = create_tenant(admin, admin_email="Legacy.Admin@Example.com")  # 0001's sign-up: plain text
        with admin.begin() as conn:
            conn.execute(text("INSERT INTO users (organization_id, email, password_hash, name, role)"
                              " VALUES (:org, 'Old.Analyst@Example.com', 'h', 'Old Analyst', 'analyst')"),
                         {"org": tenant.organization_id})
            onboarding = conn.execute(text(
                "INSERT INTO approvals (organization_id, type, status, title, description, requested_by, metadata)"
                " VALUES (:org, 'user_onboarding', 'pending', 't', 'd', :user,"
                " '{\"email\": \"Waiting.Person@Example.com\", \"name\": \"Waiting Person\", \"role\": \"supervisor\"}')"
                " RETURNING id"), {"org": tenant.organization_id, "user": tenant.admin_user_id}).scalar_one()
            # a reset request queued (and one already done) before the change: the address in clear
            for status in ("pending", "done"):
                conn.execute(text(
                    "INSERT INTO outbox_messages (queue, actor_name, payload, status) VALUES ('high',"
                    " 'send_password_reset', CAST(:payload AS jsonb), :status)"),
                    {"payload": json.dumps({"organization_code": tenant.code, "email": "Old.Analyst@Example.com"}),
                     "status": status})

        with pytest.raises(RuntimeError, match="needs the master key"):
            migrations.upgrade(database.owner_url, "head")
        assert migrations.current_revision(database.owner_url) == "0033_retention_approvals"  # nothing changed
        assert {row[0] for row in _rows(database, "SELECT email FROM users")} == {
            "Legacy.Admin@Example.com", "Old.Analyst@Example.com"}

        for variable, value in DEVELOPMENT_SECRETS_ENV.items():  # `reckai migrate` loads these settings
            monkeypatch.setenv(variable, value)
        assert cli(["migrate", "--url", database.owner_url]) == 0
        stored = _rows(database, "SELECT email, name FROM users")
        assert len(stored) == 2 and all(e.startswith("pii1:") and n.startswith("pii1:") for e, n in stored)
        (sealed,) = [row[0] for row in _rows(database, "SELECT metadata FROM approvals")]
        assert sealed["email"].startswith("pii1:") and sealed["name"].startswith("pii1:") and sealed["role"] == "supervisor"
        payloads = [row[0] for row in _rows(database, "SELECT payload FROM outbox_messages")]
        assert len(payloads) == 2 and not [p for p in payloads if "Old.Analyst" in json.dumps(p) or "email" in p]
        # sealed as the request now seals it: the job (the container's secret box) opens it
        box = development_master_keys().secret_box
        assert {box.open(p["email_sealed"], RESET_ADDRESS_CONTEXT).decode() for p in payloads} == {
            "Old.Analyst@Example.com"}

        app_database = PostgresDatabase(create_engine(database.app_url, pool_size=1))
        try:
            with app_database.unit_of_work() as uow:
                found = uow.users.find_login_candidate(tenant.code, " old.analyst@EXAMPLE.com")
            assert found is not None and (found.user.email, found.user.name) == ("Old.Analyst@Example.com",
                                                                                  "Old Analyst")
            with app_database.unit_of_work(tenant.organization_id) as uow:
                assert [u.name for u in uow.users.list(order_by="name")] == ["Admin", "Old Analyst"]
                assert uow.approvals.get(onboarding).metadata == {
                    "email": "Waiting.Person@Example.com", "name": "Waiting Person", "role": "supervisor"}
        finally:
            app_database.close()

        # and back: the downgrade decrypts with the same keys
        migrations.downgrade(database.owner_url, "0033_retention_approvals", master_keys=development_master_keys())
        assert {row[0] for row in _rows(database, "SELECT email FROM users")} == {
            "Legacy.Admin@Example.com", "Old.Analyst@Example.com"}
        assert _rows(database, "SELECT metadata ->> 'email' FROM approvals") == [("Waiting.Person@Example.com",)]
        assert _rows(database, "SELECT DISTINCT payload ->> 'email' FROM outbox_messages") == [("Old.Analyst@Example.com",)]
    finally:
        admin.dispose()


def test_keys_rotate_rewraps_every_data_key_while_users_sign_in_read_and_are_added(
        pg_fresh_database: PgDatabase, tmp_path: Path) -> None:
    old = bootstrap(_settings(pg_fresh_database, tmp_path))
    tenants: list[tuple[uuid.UUID, str, list[str]]] = []
    try:
        for number in range(24):
            code = f"rot-{number}-{uuid.uuid4().hex[:6]}"
            with old.database.unit_of_work() as uow:
                created = uow.organizations.create_with_admin(
                    name=f"Org {number}", code=code, domain=None, admin_email=f"admin{number}@example.com",
                    admin_name=f"Admin {number}", admin_password_hash="h")
                uow.commit()
            emails = [f"admin{number}@example.com"]
            with old.database.unit_of_work(created.organization_id) as uow:
                for person in range(3):
                    email = f"person{person}.org{number}@example.com"
                    uow.users.add(User(id=uuid.uuid4(), organization_id=created.organization_id, email=email,
                                       password_hash="h", name=f"Person {person}", role="analyst"))
                    emails.append(email)
                uow.commit()
            tenants.append((created.organization_id, code, emails))
    finally:
        old.close()

    # Every process now runs with the new master key active and the old one retired.
    rotating_security = SecuritySettings(
        data_encryption_key=NEW_MASTER_KEY, data_encryption_key_id="k-2026",
        data_encryption_retired_keys=((DEV_KEY_ID, DEV_DATA_ENCRYPTION_KEY),))
    new = bootstrap(_settings(pg_fresh_database, tmp_path, rotating_security))
    stop = threading.Event()
    errors: list[BaseException] = []
    operations = [0, 0, 0]  # sign-in look-ups, sorted lists, users added

    def traffic(seed: int) -> None:
        chooser = random.Random(seed)
        try:
            while not stop.is_set():
                organization_id, code, emails = chooser.choice(tenants)
                with new.database.unit_of_work() as uow:
                    found = uow.users.find_login_candidate(code, chooser.choice(emails).upper())
                assert found is not None and found.user.organization_id == organization_id
                operations[0] += 1
                with new.database.unit_of_work(organization_id) as uow:
                    names = [u.name for u in uow.users.list(order_by="name", limit=1000)]
                    assert names == sorted(names, key=str.casefold) and len(names) >= 4
                    operations[1] += 1
                    if chooser.random() < 0.3:
                        uow.users.add(User(id=uuid.uuid4(), organization_id=organization_id,
                                           email=f"late.{uuid.uuid4().hex[:8]}@example.com", password_hash="h",
                                           name="Late Comer", role="auditor"))
                        uow.commit()
                        operations[2] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=traffic, args=(seed,)) for seed in range(3)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while operations[1] < 6 and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
        during = list(operations)
        out, err = io.StringIO(), io.StringIO()
        assert rotate_command(new, argparse.Namespace(batch_size=5), out, err) == 0, err.getvalue()
        time.sleep(0.3)  # more traffic on the re-wrapped keys
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors, errors
        assert operations[0] > during[0] and operations[1] > during[1], (during, operations)
        assert out.getvalue().count("REWRAPPED organization") == len(tenants)
        assert out.getvalue().strip().endswith(f"DONE: {len(tenants)} data keys re-wrapped under master key k-2026")

        masters = _rows(pg_fresh_database, "SELECT master_key_id, count(*) FROM organization_data_keys GROUP BY 1")
        assert masters == [("k-2026", len(tenants))]
        audited = _rows(pg_fresh_database, "SELECT count(*) FROM audit_logs WHERE action = 'security.data_key_rewrapped'")
        assert audited == [(len(tenants),)]
        again = io.StringIO()
        assert rotate_command(new, argparse.Namespace(batch_size=5), again, io.StringIO()) == 0
        assert again.getvalue().strip() == "DONE: 0 data keys re-wrapped under master key k-2026"  # idempotent
    finally:
        stop.set()
        new.close()

    # The old master key can go: the new one alone reads everything; the old one alone reads nothing.
    organization_id, code, emails = tenants[0]
    only_new = PostgresDatabase(create_engine(pg_fresh_database.app_url, pool_size=1),
                                personal_data=PersonalDataKeys(master_keys(SecuritySettings(
                                    data_encryption_key=NEW_MASTER_KEY, data_encryption_key_id="k-2026"))))
    only_old = PostgresDatabase(create_engine(pg_fresh_database.app_url, pool_size=1))
    try:
        with only_new.unit_of_work(organization_id) as uow:
            assert {u.email for u in uow.users.list(limit=1000)} >= set(emails)
        with only_old.unit_of_work() as uow, pytest.raises(DataKeyUnavailable, match="k-2026"):
            uow.users.find_login_candidate(code, emails[0])
    finally:
        only_new.close()
        only_old.close()


def test_a_value_copied_to_another_column_or_user_does_not_open(container: Container,
                                                                pg_fresh_database: PgDatabase) -> None:
    with container.database.unit_of_work() as uow:
        created = uow.organizations.create_with_admin(
            name="Tamper", code=f"tamper-{uuid.uuid4().hex[:6]}", domain=None, admin_email="first@example.com",
            admin_name="First Person", admin_password_hash="h")
        uow.commit()
    engine = create_engine(pg_fresh_database.admin_url, pool_size=1)
    try:
        with engine.begin() as conn:  # someone with write access to the table moves the name into the address
            conn.execute(text("UPDATE users SET email = name WHERE id = :id"), {"id": created.admin_user_id})
    finally:
        engine.dispose()
    with container.database.unit_of_work(created.organization_id) as uow:
        with pytest.raises(PersonalDataUnreadable, match="email") as caught:
            uow.users.get(created.admin_user_id)
        assert "First" not in str(caught.value)
