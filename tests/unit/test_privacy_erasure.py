"""The right to erasure (issue 17 item 5) on the in-memory container: the scenario of
tests/support/privacy_erasure.py, and the parts of the mechanism on their own."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from reckai.adapters.security.secret_box import AesGcmSecretBox
from reckai.adapters.security.subject_cipher import AesGcmSubjectCipher
from reckai.application.ports.audit import AuditQuery
from reckai.application.ports.subject_keys import PersonalDataUnreadable, SubjectKey
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.approvals.metadata import validate_metadata
from reckai.domain.approvals.workflow import ApprovalType, InvalidApproval
from reckai.domain.audit.events import AuditEvent
from reckai.domain.audit.personal import (
    ERASED,
    Envelope,
    parse_envelope,
    personal_values,
    reveal_metadata,
    subject_of,
)
from reckai.entrypoints.http.app import create_app
from tests.support import privacy_erasure as scenario
from tests.support.identity import bearer


@pytest.fixture(scope="module")
def world() -> Iterator[scenario.ErasureWorld]:
    container = bootstrap_in_memory()
    with TestClient(create_app(container)) as client:
        yield scenario.ErasureWorld(client, container)


def test_personal_data_is_sealed_in_the_row_and_shown_to_readers(world: scenario.ErasureWorld) -> None:
    scenario.personal_data_is_sealed_in_the_row_and_shown_to_readers(world)


def test_erasure_through_an_approval_keeps_the_chain_verifiable(
        world: scenario.ErasureWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    scenario.erasure_through_an_approval(world, capsys, monkeypatch)


def test_a_legal_hold_refuses_erasure_naming_its_end(world: scenario.ErasureWorld) -> None:
    scenario.a_legal_hold_refuses_erasure_naming_its_end(world)


def test_the_operator_erases_from_the_command_line(
        world: scenario.ErasureWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    scenario.the_operator_erases_from_the_command_line(world, capsys, monkeypatch)


# --- the parts ------------------------------------------------------------------------------------

ORG, USER, ACTOR = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def test_the_subject_is_the_user_an_event_is_about_else_the_actor() -> None:
    about = AuditEvent(action="user.created", organization_id=ORG, user_id=ACTOR, resource_type="user",
                       resource_id=USER, metadata={"email": "a@b.test", "name": "job 7", "role": "analyst"})
    assert subject_of(about) == USER
    assert personal_values(about) == {"email": "a@b.test"}  # `name` names jobs and rules: not personal
    by_actor = AuditEvent(action="auth.login.failed", organization_id=ORG, user_id=ACTOR,
                          metadata={"email": "a@b.test"})
    assert subject_of(by_actor) == ACTOR
    assert subject_of(AuditEvent(action="auth.login.failed", metadata={"email": "x@y.test"})) is None


def test_reveal_opens_what_it_can_and_shows_erased_for_the_rest() -> None:
    kept, gone = Envelope(USER, uuid.uuid4(), "c1"), Envelope(ACTOR, uuid.uuid4(), "c2")
    assert parse_envelope(kept.text()) == kept
    assert parse_envelope("erasable:v1:not-a-uuid:x:y") is None
    shown = reveal_metadata({"email": kept.text(), "actor_email": gone.text(), "role": "analyst"},
                            lambda envelope: "ada@bank.test" if envelope == kept else None)
    assert shown == {"email": "ada@bank.test", "actor_email": ERASED, "role": "analyst"}


def test_the_cipher_binds_a_value_to_its_key() -> None:
    cipher = AesGcmSubjectCipher(AesGcmSecretBox({"k1": b"\x01" * 32}, "k1"))
    key_id = uuid.uuid4()
    key = SubjectKey(key_id, ORG, USER, cipher.new_wrapped_key(ORG, USER, key_id), dt.datetime.now(dt.UTC))
    sealed = cipher.encrypt(key, "ada@bank.test")
    assert ":" not in sealed and "ada" not in sealed
    assert cipher.decrypt(key, sealed) == "ada@bank.test"
    other_id = uuid.uuid4()
    other = SubjectKey(other_id, ORG, ACTOR, cipher.new_wrapped_key(ORG, ACTOR, other_id), key.created_at)
    with pytest.raises(PersonalDataUnreadable):
        cipher.decrypt(other, sealed)
    moved = SubjectKey(key_id, ORG, ACTOR, key.wrapped_key, key.created_at)  # a wrapped key copied to another row
    with pytest.raises(PersonalDataUnreadable):
        cipher.decrypt(moved, sealed)


def test_the_data_erasure_metadata_is_a_user_id_and_an_optional_one_line_reason() -> None:
    user = str(uuid.uuid4())
    assert validate_metadata(ApprovalType.DATA_ERASURE, {"user_id": user}) == {"user_id": user}
    for bad in ({}, {"user_id": "nope"}, {"user_id": user, "reason": "a\nb"}, {"user_id": user, "email": "x"}):
        with pytest.raises(InvalidApproval):
            validate_metadata(ApprovalType.DATA_ERASURE, bad)


def test_a_reset_request_for_an_inactive_account_seals_its_address_under_that_user(
        world: scenario.ErasureWorld) -> None:
    from reckai.application.identity.passwords import send_password_reset_job
    from reckai.application.ports.jobs import JobDelivery

    subject = world.add("dormant", "analyst")
    assert world.client.delete(f"/api/users/{subject}", headers=bearer(world.tokens["admin"])).status_code == 200
    send_password_reset_job(world.container.identity, JobDelivery(
        uuid.uuid4(), 1, None, "send_password_reset",
        {"organization_code": world.org_code, "email": world.emails["dormant"], "request": {}}))
    [stored] = world.stored("auth.password.reset_requested", subject)
    assert stored.metadata["outcome"] == "no_active_account"
    envelope = parse_envelope(stored.metadata["email"])
    assert envelope is not None and envelope.subject_id == subject
    [shown] = world.shown("auth.password.reset_requested", subject)
    assert shown["metadata"]["email"] == world.emails["dormant"]


def test_a_persons_export_shows_their_own_audit_values_opened(world: scenario.ErasureWorld) -> None:
    from reckai.application.privacy.generation import _audit_actions

    person = world.add("exporter", "analyst")
    world.container.audit_log.record_independently(AuditEvent(
        action="test.personal", organization_id=world.org, user_id=person,
        metadata={"actor_email": world.emails["exporter"]}))
    [stored] = [r.event for r in world.container.audit_log.list_records(
        world.org, AuditQuery(action="test.personal", user_id=person)).records]
    assert parse_envelope(stored.metadata["actor_email"]) is not None
    rows = [row for row in _audit_actions(world.container.privacy, world.org, person) if row["action"] == "test.personal"]
    assert [row["metadata"]["actor_email"] for row in rows] == [world.emails["exporter"]]


def test_an_erasure_request_whose_user_changed_meanwhile_is_refused_as_a_changed_subject(
        world: scenario.ErasureWorld) -> None:
    """The request snapshots the user (role, active; nothing personal): deactivated before the
    checker approves, the approval is refused with APPROVAL_SUBJECT_CHANGED and nothing is erased."""
    subject = world.add("changing", "analyst")
    asked = world.post(f"/api/users/{subject}/erase", {"reason": "DSAR 2026-120"})
    assert asked.status_code == 202, asked.text
    approval = asked.json()["data"]["pending_approval"]
    assert world.emails["changing"] not in str(approval)  # the snapshot holds nothing personal
    assert world.client.delete(f"/api/users/{subject}", headers=bearer(world.tokens["admin"])).status_code == 200
    review = world.get(f"/api/approvals/{approval['id']}", "supervisor").json()["data"]
    assert review["changes_since_request"] == [{"field": "is_active", "then": True, "now": False}]
    approving = world.post(f"/api/approvals/{approval['id']}/approve", {}, "supervisor")
    assert approving.status_code == 409, approving.text
    assert approving.json()["error"]["code"] == "APPROVAL_SUBJECT_CHANGED"
    user = world.get(f"/api/users/{subject}").json()["data"]
    assert user["email"] == world.emails["changing"]  # not erased
