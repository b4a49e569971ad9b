"""`describe_error`: the one mapping from exceptions to status and envelope."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException

from reckai.application.errors import Conflict, FieldError, NotFound, RateLimited
from reckai.entrypoints.http.errors import describe_error


class ApprovalAlreadyDecided(Conflict):
    code = "APPROVAL_ALREADY_DECIDED"

    def __init__(self, approval_id: str, status: str) -> None:
        super().__init__(f"approval {approval_id} is already {status}", [FieldError("status", status)])


class StatementColumnMissing(Exception):
    pass


def test_a_feature_subclass_keeps_the_kind_status_with_its_own_code() -> None:
    answer = describe_error(ApprovalAlreadyDecided("a-1", "approved"))
    assert answer.status == 409
    assert answer.envelope.error.code == "APPROVAL_ALREADY_DECIDED"
    assert answer.envelope.error.message == "approval a-1 is already approved"
    assert [(d.field, d.message) for d in answer.envelope.error.details] == [("status", "approved")]


def test_a_declared_foreign_error_without_code_gets_one_from_its_name() -> None:
    answer = describe_error(StatementColumnMissing("column amount is missing"), {StatementColumnMissing: 422})
    assert (answer.status, answer.envelope.error.code) == (422, "STATEMENT_COLUMN_MISSING")
    assert answer.envelope.error.message == "column amount is missing"
    assert not answer.unexpected


def test_not_found_and_rate_limited_carry_their_data() -> None:
    assert describe_error(NotFound("approval", "x")).envelope.error.message == "approval not found"
    limited = describe_error(RateLimited(0))
    assert limited.headers == {"Retry-After": "1"}  # never tell a client to retry in 0 s


def test_guard_exceptions_keep_the_message_we_wrote() -> None:
    denied = describe_error(PermissionDeniedException(detail="permission approvals:approve required"))
    assert (denied.status, denied.envelope.error.code) == (403, "PERMISSION_DENIED")
    assert denied.envelope.error.message == "permission approvals:approve required"
    assert describe_error(NotAuthorizedException()).envelope.error.code == "UNAUTHENTICATED"


def test_a_framework_5xx_is_unexpected_and_generic() -> None:
    answer = describe_error(HTTPException(status_code=500, detail="stream consumed at /srv/app.py:12"))
    assert answer.unexpected and answer.status == 500
    assert "srv" not in msgspec.json.encode(answer.envelope).decode()


@given(st.text(min_size=1, max_size=60))
def test_an_unknown_exception_never_shows_its_text(text: str) -> None:
    answer = describe_error(KeyError(f"secret:{text}"))
    assert answer.status == 500 and answer.unexpected
    assert answer.envelope.error.code == "INTERNAL_ERROR"
    assert "secret:" not in msgspec.json.encode(answer.envelope).decode()
