"""Field-level encryption of personal data (issue 17 item 4; docs/privacy.md, "Personal data at
rest"): the key hierarchy and field encryption (adapters/security/personal_data.py), the sealed
address in the password-reset outbox row, the users list sorted by name or e-mail over HTTP, and no
address in any log line of the identity flows. The same over PostgreSQL, the migration and the
rotation under traffic: tests/integration/test_pii_encryption_postgres.py."""

from __future__ import annotations

import base64
import json
import logging
import uuid

import pytest
from litestar.testing import TestClient

from reckai.adapters.security.personal_data import (
    FieldUndecryptable,
    MasterKeys,
    OrganizationKey,
    PersonalDataError,
    PersonalDataKeys,
    UnknownMasterKey,
    WrappedDataKey,
    open_metadata,
    seal_metadata,
)
from reckai.entrypoints.http.app import create_app
from tests.support.identity import DEFAULT_PASSWORD, bearer, login, onboard, relax_auth_limits
from tests.support.identity_flow import FakeClock
from tests.support.jobs import run_queued_jobs
from tests.unit.test_identity_usecases import make_container


def _key(byte: int) -> bytes:
    return bytes([byte]) * 32


def _ring(active: str, **keys: int) -> MasterKeys:
    return MasterKeys({key_id: _key(byte) for key_id, byte in keys.items()}, active)


def test_a_field_opens_only_with_its_organization_column_and_key() -> None:
    ring = _ring("m1", m1=1)
    first, second = uuid.uuid4(), uuid.uuid4()
    _, key = ring.new_data_key(first)
    _, other = ring.new_data_key(second)
    stored = key.encrypt("email", "Ada.Lovelace@Example.com")
    assert stored.startswith(f"pii1:{key.key_id}:") and "Lovelace" not in stored and "lovelace" not in stored
    assert key.encrypt("email", "Ada.Lovelace@Example.com") != stored  # random nonce: equal values differ
    assert key.decrypt("email", stored) == "Ada.Lovelace@Example.com"
    with pytest.raises(FieldUndecryptable):
        key.decrypt("name", stored)  # copied into another column
    with pytest.raises(FieldUndecryptable):
        other.decrypt("email", stored)  # another organization's key
    # the same data key bound to another organization id: the associated data differs
    same_key_elsewhere = OrganizationKey(second, key.key_id, ring.unwrap_raw(ring.wrap(first, key.key_id, b"k" * 32)))
    with pytest.raises(FieldUndecryptable):
        same_key_elsewhere.decrypt("email", stored)
    tampered = stored[:-2] + ("A" if stored[-2] != "A" else "B") + stored[-1]
    with pytest.raises(FieldUndecryptable):
        key.decrypt("email", tampered)
    with pytest.raises(FieldUndecryptable):
        key.decrypt("email", "plain@example.com")


def test_the_blind_index_matches_the_normal_form_within_an_organization_only() -> None:
    ring = _ring("m1", m1=1)
    _, key = ring.new_data_key(uuid.uuid4())
    _, other = ring.new_data_key(uuid.uuid4())
    index = key.blind_index("ada@example.com")
    assert key.blind_index("  ADA@Example.COM ") == index
    assert key.blind_index("ada@example.org") != index
    assert other.blind_index("ada@example.com") != index  # unrelated across organizations
    assert len(index) == 43 and "example" not in index  # base64url of an HMAC-SHA256, not the address


def test_a_data_key_rewrapped_under_a_new_master_key_is_the_same_key() -> None:
    organization = uuid.uuid4()
    old_ring = _ring("m1", m1=1)
    wrapped, key = old_ring.new_data_key(organization)
    stored = key.encrypt("name", "Ada Lovelace")
    rotating = _ring("m2", m1=1, m2=2)  # the new key active, the old one retired
    rewrapped = rotating.rewrap(wrapped)
    assert (rewrapped.master_key_id, rewrapped.key_id) == ("m2", wrapped.key_id)
    assert rewrapped.wrapped_key != wrapped.wrapped_key
    keys = PersonalDataKeys(rotating)
    # a reader holding either wrapping gets the same key: every field and index stays valid
    assert keys.organization_key(rewrapped).decrypt("name", stored) == "Ada Lovelace"
    assert keys.organization_key(wrapped).decrypt("name", stored) == "Ada Lovelace"
    assert keys.organization_key(rewrapped).blind_index("a@b.c") == key.blind_index("a@b.c")
    # once the old master key is dropped, only the re-wrapped key opens
    after = PersonalDataKeys(_ring("m2", m2=2))
    assert after.organization_key(rewrapped).decrypt("name", stored) == "Ada Lovelace"
    with pytest.raises(UnknownMasterKey) as caught:
        after.organization_key(wrapped)
    assert "'m1'" in str(caught.value) and "DATA_ENCRYPTION_RETIRED_KEYS" in str(caught.value)


def test_a_wrapped_key_moved_to_another_organization_does_not_unwrap() -> None:
    ring = _ring("m1", m1=1)
    wrapped, _ = ring.new_data_key(uuid.uuid4())
    moved = WrappedDataKey(uuid.uuid4(), wrapped.key_id, wrapped.wrapped_key, wrapped.master_key_id)
    with pytest.raises(PersonalDataError):
        ring.unwrap_raw(moved)


def test_master_keys_come_from_the_settings_data_encryption_keys() -> None:
    active = base64.b64encode(_key(7)).decode()
    retired = base64.b64encode(_key(8)).decode()
    ring = MasterKeys.from_settings(("k-new", active), (("k-old", retired),))
    assert ring.active_key_id == "k-new" and ring.key_ids == {"k-new", "k-old"}
    # derived, not the data encryption key itself: a data key wrapped by it does not open under the raw key
    wrapped, _ = ring.new_data_key(uuid.uuid4())
    raw = MasterKeys({"k-new": _key(7)}, "k-new")
    assert raw.unwrap_raw(wrapped) == ring.unwrap_raw(wrapped)  # same derivation from the same bytes
    with pytest.raises(ValueError):
        MasterKeys({"k": b"short"}, "k")


@pytest.fixture
def world():  # type: ignore[no-untyped-def]
    container = make_container(FakeClock())
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield container, client


def test_the_reset_outbox_row_holds_the_address_sealed_and_the_mail_still_goes(world) -> None:  # type: ignore[no-untyped-def]
    container, client = world
    _, admin = onboard(client, admin_email="Rosa.Parks@Example.com")
    run_queued_jobs(container)
    relax_auth_limits(client, admin.org_code, admin.email)
    assert client.post("/api/auth/password/reset",
                       json={"organization_code": admin.org_code, "email": admin.email}).status_code == 202
    (row,) = [r for r in container.job_outbox.records() if r.actor_name == "send_password_reset"]  # type: ignore[attr-defined]
    stored = json.dumps(row.payload)
    assert "Rosa.Parks" not in stored and "rosa.parks" not in stored and "email" not in row.payload
    assert row.payload["email_sealed"].startswith("v1:")
    run_queued_jobs(container)
    mails = [m for m in container.mailer.sent if "Reset your ReckAI password" in m.subject]  # type: ignore[attr-defined]
    assert [m.to for m in mails] == [admin.email]


def test_users_are_listed_by_name_or_email_over_http(world) -> None:  # type: ignore[no-untyped-def]
    _, client = world
    _, admin = onboard(client, admin_email="zoe@example.com", admin_name="Zoe Admin")
    token = login(client, admin.org_code, admin.email, admin.password)
    for email, name in (("bo@example.com", "amy Analyst"), ("Al@example.com", "Carl Checker")):
        created = client.post("/api/users", json={"email": email, "name": name, "role": "analyst"},
                              headers=bearer(token))
        assert created.status_code == 201, created.text

    def listed(sort: str, field: str) -> list[str]:
        response = client.get(f"/api/users?sort={sort}", headers=bearer(token))
        assert response.status_code == 200, response.text
        return [user[field] for user in response.json()["data"]]

    assert listed("name", "name") == ["amy Analyst", "Carl Checker", "Zoe Admin"]
    assert listed("-name", "name") == ["Zoe Admin", "Carl Checker", "amy Analyst"]
    assert listed("email", "email") == ["Al@example.com", "bo@example.com", "zoe@example.com"]
    assert sorted(listed("created_at", "email")) == sorted(listed("email", "email"))  # the default order: all three
    refused = client.get("/api/users?sort=password_hash", headers=bearer(token))
    assert refused.status_code == 400 and refused.json()["error"]["details"][0]["field"] == "sort"


def test_no_log_line_of_the_identity_flows_names_an_address_or_a_name(world, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    container, client = world
    caplog.set_level(logging.DEBUG)
    email, name = "Grace.Hopper@Navy.example", "Grace Hopper"
    _, admin = onboard(client, admin_email=email, admin_name=name)
    run_queued_jobs(container)
    token = login(client, admin.org_code, email, DEFAULT_PASSWORD)
    relax_auth_limits(client, admin.org_code, email)
    client.post("/api/auth/login", json={"organization_code": admin.org_code, "email": email, "password": "wrong"})
    relax_auth_limits(client, admin.org_code, email)
    client.post("/api/auth/password/reset", json={"organization_code": admin.org_code, "email": email})
    client.post("/api/users", json={"email": "Katherine.J@Navy.example", "name": "Katherine Johnson",
                                    "role": "analyst"}, headers=bearer(token))
    client.post("/api/users", json={"email": email, "name": "Duplicate", "role": "analyst"}, headers=bearer(token))
    client.get("/api/users?sort=email", headers=bearer(token))
    run_queued_jobs(container)
    assert caplog.records, "the flows logged nothing: the check below would prove nothing"
    for record in caplog.records:
        text = (record.getMessage() + repr(record.__dict__)).lower()
        for personal in ("grace.hopper", "grace hopper", "katherine"):
            assert personal not in text, (record.name, record.getMessage())


def test_a_user_onboarding_requests_address_and_name_are_sealed_with_its_snapshot_and_only_those() -> None:
    _, key = _ring("m1", m1=1).new_data_key(uuid.uuid4())
    metadata = {"email": "new.person@example.com", "name": "New Person", "role": "supervisor",
                "snapshot": {"taken_at": "2026-01-01T00:00:00Z",
                             "subject": {"email": "new.person@example.com", "name": "New Person", "role": "supervisor"}}}
    sealed = seal_metadata(key, "user_onboarding", metadata)
    assert "new.person" not in json.dumps(sealed) and "New Person" not in json.dumps(sealed)
    assert sealed["role"] == "supervisor" and sealed["snapshot"]["subject"]["role"] == "supervisor"  # type: ignore[index]
    assert metadata["snapshot"]["subject"]["email"] == "new.person@example.com"  # type: ignore[index]  # not changed in place
    with pytest.raises(FieldUndecryptable):  # each path is its own column: the snapshot's value does not open as the top one
        key.decrypt("approvals.metadata.email", sealed["snapshot"]["subject"]["email"])  # type: ignore[index]
    assert open_metadata(key, "user_onboarding", sealed) == metadata
    other = {"key": "retention", "value": {"email": "not-personal-here@example.com"}}
    assert seal_metadata(key, "system_setting", other) == other  # other types carry no person's address
