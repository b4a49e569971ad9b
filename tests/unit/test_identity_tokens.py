"""Refresh rotation decision, refresh tokens, device fingerprint, client IP, MFA rules."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reckai.domain.identity.devices import client_ip, device_fingerprint, parse_trusted_proxies
from reckai.domain.identity.mfa_rules import (
    RECOVERY_CODE_COUNT,
    accept_totp_step,
    generate_recovery_codes,
    hash_recovery_code,
    match_recovery_code,
)
from reckai.domain.identity.tokens import (
    REFRESH_GRACE,
    REFRESH_TOKEN_LIFETIME,
    SESSION_ABSOLUTE_LIFETIME,
    RefreshDecision,
    RefreshTokenState,
    RefreshTokenStatus,
    decide_refresh,
    hash_refresh_token,
    new_refresh_token,
    refresh_expiry,
)

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
SEC = dt.timedelta(seconds=1)
ACTIVE = RefreshTokenStatus.ACTIVE
ROTATED = RefreshTokenStatus.ROTATED
REVOKED = RefreshTokenStatus.REVOKED


def state(
    status: RefreshTokenStatus, *, rotated_at: dt.datetime | None = None, successor: bool = True
) -> RefreshTokenState:
    return RefreshTokenState(
        status=status,
        expires_at=T0 + REFRESH_TOKEN_LIFETIME,
        session_started_at=T0,
        rotated_at=rotated_at,
        successor_active=successor,
    )


@pytest.mark.parametrize(
    ("presented", "now", "fingerprint_ok", "expected"),
    [
        (None, T0, True, RefreshDecision.REJECT),  # unknown token
        (state(ACTIVE), T0 + SEC, True, RefreshDecision.ROTATE),
        (state(ACTIVE), T0 + SEC, False, RefreshDecision.REJECT),  # other device
        (state(ACTIVE), T0 + REFRESH_TOKEN_LIFETIME, True, RefreshDecision.REJECT),  # expired
        (state(REVOKED), T0 + SEC, True, RefreshDecision.REJECT),
        (state(ROTATED, rotated_at=T0), T0 + 5 * SEC, True, RefreshDecision.RETURN_SAME_SUCCESSOR),
        (
            state(ROTATED, rotated_at=T0),
            T0 + REFRESH_GRACE - SEC,
            True,
            RefreshDecision.RETURN_SAME_SUCCESSOR,
        ),
        (state(ROTATED, rotated_at=T0), T0 + REFRESH_GRACE, True, RefreshDecision.REVOKE_FAMILY),
        (state(ROTATED, rotated_at=T0), T0 + dt.timedelta(days=2), True, RefreshDecision.REVOKE_FAMILY),
        (state(ROTATED, rotated_at=T0), T0 + dt.timedelta(days=2), False, RefreshDecision.REVOKE_FAMILY),
        (state(ROTATED, rotated_at=T0), T0 + 5 * SEC, False, RefreshDecision.REJECT),  # grace, other device
        (state(ROTATED, rotated_at=T0, successor=False), T0 + 5 * SEC, True, RefreshDecision.REJECT),
        (state(ROTATED, rotated_at=None), T0 + SEC, True, RefreshDecision.REVOKE_FAMILY),
        (state(ACTIVE), T0 + SESSION_ABSOLUTE_LIFETIME, True, RefreshDecision.REJECT),
    ],
)
def test_refresh_decision_table(
    presented: RefreshTokenState | None, now: dt.datetime, fingerprint_ok: bool, expected: RefreshDecision
) -> None:
    assert decide_refresh(presented, now, fingerprint_matches=fingerprint_ok) is expected


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from(list(RefreshTokenStatus)),
    offset=st.integers(0, 40 * 86400),
    rotated_offset=st.integers(0, 40 * 86400),
    fingerprint_ok=st.booleans(),
    successor=st.booleans(),
)
def test_refresh_decision_invariants(
    status: RefreshTokenStatus, offset: int, rotated_offset: int, fingerprint_ok: bool, successor: bool
) -> None:
    rotated_at = T0 + dt.timedelta(seconds=rotated_offset) if status is ROTATED else None
    presented = state(status, rotated_at=rotated_at, successor=successor)
    now = T0 + dt.timedelta(seconds=offset)
    decision = decide_refresh(presented, now, fingerprint_matches=fingerprint_ok)
    if decision in (RefreshDecision.ROTATE, RefreshDecision.RETURN_SAME_SUCCESSOR):
        # a token is only ever honoured from the same device, inside the session's absolute life
        assert fingerprint_ok and now < T0 + SESSION_ABSOLUTE_LIFETIME
    if decision is RefreshDecision.ROTATE:
        assert status is ACTIVE and now < presented.expires_at
    if decision is RefreshDecision.RETURN_SAME_SUCCESSOR:
        assert rotated_at is not None and now - rotated_at < REFRESH_GRACE and successor
    if decision is RefreshDecision.REVOKE_FAMILY:
        assert status is ROTATED
    if status is REVOKED:
        assert decision is RefreshDecision.REJECT


def test_refresh_expiry_never_passes_the_absolute_end() -> None:
    assert refresh_expiry(T0, T0) == T0 + REFRESH_TOKEN_LIFETIME
    late = T0 + SESSION_ABSOLUTE_LIFETIME - dt.timedelta(days=1)
    assert refresh_expiry(T0, late) == T0 + SESSION_ABSOLUTE_LIFETIME


def test_refresh_tokens_are_random_and_stored_as_sha256() -> None:
    first, second = new_refresh_token(), new_refresh_token()
    assert first.token != second.token and len(first.token) >= 43
    assert (
        first.token_hash
        == hashlib.sha256(first.token.encode()).hexdigest()
        == hash_refresh_token(first.token)
    )
    assert first.token not in first.token_hash


# --- device fingerprint and client IP ---------------------------------------------------------


def test_fingerprint_uses_agent_language_and_device_id_but_not_ip() -> None:
    base = device_fingerprint("Mozilla/5.0", "en-GB", None)
    assert base == device_fingerprint("Mozilla/5.0", "en-GB", "")
    assert base != device_fingerprint("Mozilla/5.1", "en-GB", None)
    assert base != device_fingerprint("Mozilla/5.0", "fr", None)
    assert base != device_fingerprint("Mozilla/5.0", "en-GB", "device-123")
    assert len(base) == 64
    # no field can be shifted into another to forge the same hash
    assert device_fingerprint("a\nlang=b", None) != device_fingerprint("a", "b")


PROXIES = parse_trusted_proxies(["10.0.0.0/8", "192.0.2.1"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # untrusted peer: XFF ignored
        ("10.1.1.1", "198.51.100.7", "198.51.100.7"),
        ("10.1.1.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # the client's own left entry ignored
        ("10.1.1.1", "198.51.100.7, 10.2.2.2", "198.51.100.7"),  # chained trusted proxies skipped
        ("10.1.1.1", "garbage, 198.51.100.7", "198.51.100.7"),
        ("10.1.1.1", "198.51.100.7, garbage", "10.1.1.1"),
        ("10.1.1.1", None, "10.1.1.1"),
        ("192.0.2.1", "[2001:db8::1]:443", "2001:db8::1"),
        ("10.1.1.1", "10.3.3.3", "10.3.3.3"),  # all trusted: the leftmost known
    ],
)
def test_client_ip_trusts_forwarded_for_only_from_trusted_proxies(
    peer: str, xff: str | None, expected: str
) -> None:
    assert client_ip(peer, xff, PROXIES) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert client_ip("10.1.1.1", "198.51.100.7", ()) == "10.1.1.1"
    with pytest.raises(ValueError, match="not an IP address"):
        parse_trusted_proxies(["proxy.local"])


# --- MFA rules ---------------------------------------------------------------------------------


def test_totp_step_accepted_once_and_never_older() -> None:
    assert accept_totp_step(100, None)
    assert accept_totp_step(101, 100)
    assert not accept_totp_step(100, 100)
    assert not accept_totp_step(99, 100)
    assert not accept_totp_step(None, None)


def test_recovery_codes_single_use_and_stored_salted() -> None:
    codes = generate_recovery_codes()
    assert len(codes) == RECOVERY_CODE_COUNT == len(set(codes))
    stored: list[str | None] = [hash_recovery_code(code) for code in codes]
    assert hash_recovery_code(codes[0]) != stored[0]  # a fresh salt each time
    assert all(code not in (h or "") for code, h in zip(codes, stored, strict=True))
    index = match_recovery_code(codes[3].lower().replace("-", " "), stored)  # typed loosely
    assert index == 3
    stored[index] = None  # the caller marks it used
    assert match_recovery_code(codes[3], stored) is None
    assert match_recovery_code("AAAA-AAAA-AAAA-AAAA", stored) is None
    assert match_recovery_code(codes[0], ["garbage", "sha256$zz$00", stored[0]]) == 2
