"""JSON log lines in the spec §4.3 shape."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reckai.logging_setup import (
    PERSONAL,
    REDACTED,
    JsonLogFormatter,
    LogContext,
    bind_actor,
    configure_logging,
    log_context,
    log_event,
    redact,
)

SPEC_KEYS = {
    "timestamp",
    "level",
    "organization_id",
    "user_id",
    "action",
    "resource_type",
    "resource_id",
    "ip_address",
    "user_agent",
    "metadata",
}


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_event_has_every_spec_key_and_its_values(log_lines: io.StringIO) -> None:
    logger = logging.getLogger("reckai.test")
    job_id = uuid.uuid4()
    log_event(
        logger,
        "reconciliation.job.created",
        organization_id="org-123",
        user_id="user-456",
        resource_type="reconciliation_job",
        resource_id=job_id,
        ip_address="192.168.1.1",
        user_agent="Mozilla/5.0",
        metadata={"job_name": "POS Settlement Dec 2025", "file_count": 2},
    )
    (entry,) = records(log_lines)
    assert SPEC_KEYS <= entry.keys()
    assert entry["level"] == "INFO"
    assert entry["action"] == "reconciliation.job.created"
    assert entry["organization_id"] == "org-123"
    assert entry["user_id"] == "user-456"
    assert entry["resource_type"] == "reconciliation_job"
    assert entry["resource_id"] == str(job_id)
    assert entry["ip_address"] == "192.168.1.1"
    assert entry["user_agent"] == "Mozilla/5.0"
    assert entry["metadata"] == {"job_name": "POS Settlement Dec 2025", "file_count": 2}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["timestamp"])


@pytest.mark.parametrize(
    ("level", "name"),
    [
        (logging.DEBUG, "DEBUG"),
        (logging.INFO, "INFO"),
        (logging.WARNING, "WARN"),
        (logging.ERROR, "ERROR"),
        (logging.CRITICAL, "ERROR"),
    ],
)
def test_levels_are_the_four_of_the_spec(log_lines: io.StringIO, level: int, name: str) -> None:
    logging.getLogger("reckai.test").log(level, "something")
    assert records(log_lines)[0]["level"] == name


def test_a_plain_record_is_rendered_with_its_extras_in_metadata(log_lines: io.StringIO) -> None:
    logging.getLogger("reckai.adapters.x").warning(
        "disk %s", "full", extra={"free_bytes": 12, "amount": Decimal("1.50")}
    )
    (entry,) = records(log_lines)
    assert entry["action"] == "reckai.adapters.x"
    assert entry["message"] == "disk full"
    assert entry["metadata"] == {"free_bytes": 12, "amount": "1.50"}


def test_the_slow_query_record_of_the_database_adapter_renders(log_lines: io.StringIO) -> None:
    # The shape engine.install_slow_query_log emits: an action and a metadata dict in `extra`.
    details = {"event": "slow_query", "duration_ms": 1234.5, "statement": "SELECT 1"}
    logging.getLogger("reckai.adapters.postgres.engine").warning(
        json.dumps(details), extra={"action": "db.slow_query", "metadata": details}
    )
    (entry,) = records(log_lines)
    assert entry["level"] == "WARN"
    assert entry["action"] == "db.slow_query"
    assert entry["metadata"] == details


def test_request_context_fills_unset_fields_and_bind_actor_names_the_caller(log_lines: io.StringIO) -> None:
    logger = logging.getLogger("reckai.test")
    with log_context(LogContext(request_id="req-1", ip_address="10.0.0.9", user_agent="curl/8")):
        logger.info("before login")
        bind_actor("org-1", "user-1")
        logger.info("after login")
    logger.info("outside")
    before, after, outside = records(log_lines)
    assert before["metadata"]["request_id"] == "req-1"
    assert before["ip_address"] == "10.0.0.9" and before["user_agent"] == "curl/8"
    assert before["organization_id"] is None and before["user_id"] is None
    assert (after["organization_id"], after["user_id"]) == ("org-1", "user-1")
    assert outside["ip_address"] is None and "request_id" not in outside["metadata"]


def test_an_exception_is_logged_with_its_traceback_on_one_line(log_lines: io.StringIO) -> None:
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        logging.getLogger("reckai.test").exception("failed")
    lines = log_lines.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "ERROR"
    assert entry["metadata"]["exception_type"] == "RuntimeError"
    assert "RuntimeError: boom" in entry["metadata"]["traceback"]


def test_secrets_in_metadata_are_redacted(log_lines: io.StringIO) -> None:
    log_event(
        logging.getLogger("reckai.test"),
        "auth.login.failed",
        metadata={
            "email": "a@b.c",
            "password": "hunter2",
            "nested": {"refresh_token": "abc", "Authorization": "Bearer x"},
        },
    )
    (entry,) = records(log_lines)
    # An address is personal data (issue 17 item 4): withheld, not logged.
    assert entry["metadata"]["email"] == PERSONAL
    assert "a@b.c" not in log_lines.getvalue()
    assert entry["metadata"]["password"] == REDACTED
    assert entry["metadata"]["nested"] == {"refresh_token": REDACTED, "Authorization": REDACTED}
    assert "hunter2" not in log_lines.getvalue()


_SECRET_KEYS = st.sampled_from(
    ["password", "new_password", "token", "access_token", "api_key", "client_secret", "mfa_code"]
)
_PLAIN_KEYS = st.sampled_from(["email", "admin_email", "job_name", "count", "token_family_id", "path"])
_LEAVES = st.text(alphabet="abcdefghij", min_size=6, max_size=12).map(lambda text: f"SECRET{text}")


@settings(max_examples=80, deadline=None)
@given(
    st.recursive(
        st.dictionaries(_SECRET_KEYS | _PLAIN_KEYS, _LEAVES, max_size=4),
        lambda children: st.dictionaries(_PLAIN_KEYS, children | st.lists(children, max_size=3), max_size=3),
        max_leaves=10,
    )
)
def test_redaction_replaces_exactly_the_values_under_secret_keys(metadata: dict) -> None:
    secret_keys = {
        "password",
        "new_password",
        "token",
        "access_token",
        "api_key",
        "client_secret",
        "mfa_code",
    }

    personal_keys = {"email", "admin_email"}

    def check(original: object, redacted: object) -> None:
        if isinstance(original, dict):
            assert isinstance(redacted, dict) and redacted.keys() == original.keys()
            for key, value in original.items():
                if key in secret_keys:
                    assert redacted[key] == REDACTED
                elif key in personal_keys:
                    assert redacted[key] == PERSONAL
                else:
                    check(value, redacted[key])
        elif isinstance(original, list):
            assert isinstance(redacted, list) and len(redacted) == len(original)
            for item, redacted_item in zip(original, redacted, strict=True):
                check(item, redacted_item)
        else:
            assert redacted == original

    check(metadata, redact(metadata))


def test_configure_logging_is_idempotent() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    try:
        configure_logging("INFO", io.StringIO())
        configure_logging("WARNING", io.StringIO())
        ours = [handler for handler in root.handlers if isinstance(handler.formatter, JsonLogFormatter)]
        assert len(ours) == 1
        assert root.level == logging.WARNING
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
