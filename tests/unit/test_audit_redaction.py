"""Redaction of secrets from what goes into audit rows (examples, then properties)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reckai.domain.audit.events import AuditEvent
from reckai.domain.audit.redaction import (
    MAX_DEPTH,
    REDACTED,
    TOO_DEEP,
    is_secret_key,
    redact,
    redact_path,
    scrub_text,
)


def test_login_body_keeps_the_email_and_loses_password_and_code() -> None:
    body = {"email": "ada@example.com", "password": "hunter2", "organization_code": "acme", "mfa_code": "123456"}
    assert redact(body) == {
        "email": "ada@example.com",
        "password": REDACTED,
        "organization_code": REDACTED,
        "mfa_code": REDACTED,
    }


def test_secret_keys_are_found_in_every_spelling() -> None:
    for key in (
        "password", "newPassword", "current_password", "PASSWORD", "passwd", "pwd", "x-api-key", "apiKey",
        "API_KEY", "access_token", "refreshToken", "id-token", "client_secret", "Authorization", "authorization",
        "otp", "totp_code", "recovery_codes", "recoveryCode", "code", "private_key", "secret", "Cookie",
        "session_id", "cvv", "card_number", "pin", "user_pin", "Bearer", "jwt", "signature", "credentials",
    ):
        assert is_secret_key(key), key


def test_ordinary_keys_are_kept() -> None:
    for key in ("email", "name", "amount_minor", "currency", "mapping", "shipping", "status", "description",
                "reference", "job_name", "file_count", "role", "page"):
        assert not is_secret_key(key), key


def test_nested_secrets_are_redacted_inside_lists_and_objects() -> None:
    body = {"users": [{"name": "a", "password": "p1"}, {"name": "b", "tokens": ["t1", "t2"]}],
            "headers": {"Authorization": "Bearer abc.def.ghi"}}
    assert redact(body) == {
        "users": [{"name": "a", "password": REDACTED}, {"name": "b", "tokens": REDACTED}],
        "headers": {"Authorization": REDACTED},
    }


def test_a_whole_secret_subtree_is_replaced_not_walked() -> None:
    assert redact({"credentials": {"user": "u", "pass": "p"}}) == {"credentials": REDACTED}


def test_bearer_tokens_and_jwts_are_scrubbed_from_any_text() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    assert jwt not in redact({"note": f"token was {jwt}"})["note"]
    assert "abcdefgh12345" not in scrub_text("header Bearer abcdefgh12345 sent")
    assert scrub_text("plain words") == "plain words"


def test_query_string_secrets_are_redacted_from_paths() -> None:
    path = redact_path("/api/auth/reset?token=abc123&lang=en")
    assert "abc123" not in path
    assert path.startswith("/api/auth/reset?")
    assert "lang=en" in path
    assert redact_path("/api/jobs/1") == "/api/jobs/1"


def test_non_json_values_become_stable_text_and_nul_is_removed() -> None:
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    out = redact({"id": ident, "amount": Decimal("1.50"), "raw": b"\x00\x01", "text": "a\x00b", "nan": float("nan")})
    assert out == {"id": str(ident), "amount": Decimal("1.50"), "raw": "[2 bytes]", "text": "a\ufffdb", "nan": "nan"}


def test_depth_is_bounded() -> None:
    value: Any = "leaf"
    for _ in range(MAX_DEPTH + 10):
        value = {"child": value}
    out = redact(value)
    depth = 0
    while isinstance(out, dict):
        out = out["child"]
        depth += 1
    assert out == TOO_DEEP
    assert depth == MAX_DEPTH + 1


def test_audit_event_redacts_body_metadata_and_path_on_construction() -> None:
    event = AuditEvent(
        action="auth.login.failed",
        request_path="/api/auth/accept-invite?token=s3cret",
        request_body={"email": "a@b.c", "password": "pw"},
        metadata={"reason": "bad_password", "attempted_token": "tok"},
        ip_address="::FFFF:10.0.0.1",
    )
    assert event.request_body == {"email": "a@b.c", "password": REDACTED}
    assert event.metadata == {"reason": "bad_password", "attempted_token": REDACTED}
    assert "s3cret" not in (event.request_path or "")
    assert event.ip_address == "::ffff:a00:1"


# --- properties ----------------------------------------------------------------------------

SECRET_WORDS = ("password", "passwd", "token", "secret", "code", "otp", "key", "authorization", "recovery",
                "credential", "pin", "pwd", "cookie", "session")

_affix = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", max_size=6)
_separator = st.sampled_from(["", "_", "-", ".", " "])


@st.composite
def secret_keys(draw: st.DrawFn) -> str:
    """A key built around a secret word, in any case, with separators and other words around it."""
    word = draw(st.sampled_from(SECRET_WORDS))
    word = "".join(c.upper() if draw(st.booleans()) else c for c in word)
    prefix, suffix = draw(_affix), draw(_affix)
    left = prefix + draw(_separator) if prefix else ""
    right = draw(_separator) + suffix if suffix else ""
    if word.lower() in {"pin", "pwd"}:  # whole-word matches: keep separators around them
        left = prefix + "_" if prefix else ""
        right = "_" + suffix if suffix else ""
    return left + word + right


_plain_keys = st.text(alphabet="lmnbvqz", min_size=1, max_size=5)  # cannot spell any secret word
_secret_values = st.one_of(st.text(min_size=1, max_size=20).map(lambda s: "SECRET-" + s), st.integers())
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(alphabet="abc xyz", max_size=10))


def _trees(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.one_of(_plain_keys, secret_keys()), children, max_size=3),
        ),
        max_leaves=12,
    )


def _walk(original: Any, redacted: Any, depth: int = 0) -> None:
    """Every value under a secret-looking key is gone; everything else is kept (within MAX_DEPTH)."""
    if depth > MAX_DEPTH:
        assert redacted == TOO_DEEP
        return
    if isinstance(original, dict):
        assert set(redacted) == set(original)
        for key, value in original.items():
            if is_secret_key(key):
                assert redacted[key] == REDACTED
            else:
                _walk(value, redacted[key], depth + 1)
    elif isinstance(original, list):
        assert len(redacted) == len(original)
        for item, out in zip(original, redacted):
            _walk(item, out, depth + 1)
    else:
        assert redacted == original


@settings(max_examples=300)
@given(_trees(_scalars))
def test_redaction_keeps_what_is_not_secret_and_drops_what_is(tree: Any) -> None:
    _walk(tree, redact(tree))


@settings(max_examples=300)
@given(key=secret_keys(), value=_secret_values, wrapper=_trees(st.just("HOLE")), depth=st.integers(0, 40))
def test_no_value_under_a_secret_looking_key_survives_at_any_depth(
    key: str, value: Any, wrapper: Any, depth: int
) -> None:
    assert is_secret_key(key)
    planted: Any = {key: value}
    for level in range(depth):
        planted = [planted] if level % 2 else {"level": planted}
    # The wrapper's leaves are all "HOLE", so any leaf equal to the secret value is a leak.
    leaves = list(_leaves(redact({"body": wrapper, "planted": planted})))
    assert all(not (type(leaf) is type(value) and leaf == value) for leaf in leaves)


def _leaves(tree: Any) -> Any:
    if isinstance(tree, dict):
        for item in tree.values():
            yield from _leaves(item)
    elif isinstance(tree, list):
        for item in tree:
            yield from _leaves(item)
    else:
        yield tree
