"""Access tokens (HS256 + kid key ring), the AES-256-GCM secret box, and TOTP."""

from __future__ import annotations

import base64
import datetime as dt
import json

import jwt
import pyotp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reckai.adapters.security.jwt_tokens import JwtKeyRing, JwtTokenService
from reckai.adapters.security.secret_box import AesGcmSecretBox, decode_key
from reckai.adapters.security.totp import PyOtpTotp
from reckai.application.ports.security import SecretUndecryptable, TokenExpired, TokenInvalid
from reckai.domain.identity.permissions import permissions_for
from reckai.domain.identity.tokens import token_is_current

KEY_A = "a" * 32
KEY_B = "b" * 40
NOW = 1_740_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def service(active: str = "k1", clock: Clock | None = None, **kwargs: str) -> JwtTokenService:
    ring = JwtKeyRing({"k1": KEY_A, "k2": KEY_B}, active_kid=active)
    return JwtTokenService(ring, clock=clock or Clock(), **kwargs)


def issue(svc: JwtTokenService, role: str = "analyst") -> str:
    return svc.issue_access_token(user_id="u-1", organization_id="o-1", role=role, token_version=3, session_id="s-1").token


def test_claims_round_trip() -> None:
    svc = service()
    issued = svc.issue_access_token(user_id="u-1", organization_id="o-1", role="auditor", token_version=3, session_id="s-1")
    header = jwt.get_unverified_header(issued.token)
    assert header == {"alg": "HS256", "kid": "k1", "typ": "JWT"}
    claims = svc.decode_access_token(issued.token)
    assert claims == issued.claims
    assert (claims.sub, claims.org, claims.role, claims.ver, claims.typ) == (
        "u-1",
        "o-1",
        "auditor",
        3,
        "access",
    )
    assert set(claims.permissions) == permissions_for("auditor")
    assert "reconciliations:read" in claims.permissions and "audit:read" in claims.permissions
    assert claims.exp - claims.iat == 15 * 60 and claims.iat == int(NOW)
    assert (claims.aud, claims.iss) == ("reckai-api", "reckai")
    assert token_is_current(claims, 3) and not token_is_current(claims, 4)


def test_every_token_has_its_own_jti() -> None:
    svc = service()
    assert svc.decode_access_token(issue(svc)).jti != svc.decode_access_token(issue(svc)).jti


def test_key_rotation_old_tokens_still_verify_until_key_dropped() -> None:
    old = issue(service(active="k1"))
    new_service = service(active="k2")
    new = issue(new_service)
    assert jwt.get_unverified_header(new)["kid"] == "k2"
    assert new_service.decode_access_token(old).sub == "u-1"
    dropped = JwtTokenService(JwtKeyRing({"k2": KEY_B}, active_kid="k2"), clock=Clock())
    with pytest.raises(TokenInvalid, match="unknown key id"):
        dropped.decode_access_token(old)


def test_expiry_is_exact() -> None:
    clock = Clock()
    svc = service(clock=clock)
    token = issue(svc)
    clock.now = NOW + 15 * 60 - 1
    svc.decode_access_token(token)
    clock.now = NOW + 15 * 60
    with pytest.raises(TokenExpired):
        svc.decode_access_token(token)


def _forge(payload: dict[str, object], header: dict[str, object], key: str = KEY_A) -> str:
    return jwt.encode(payload, key, algorithm="HS256", headers=header)


def _payload(**overrides: object) -> dict[str, object]:
    svc = service()
    payload = jwt.decode(
        issue(svc), KEY_A, algorithms=["HS256"], audience="reckai-api", options={"verify_exp": False}
    )
    payload.update(overrides)
    return payload


@pytest.mark.parametrize(
    ("token_factory", "reason"),
    [
        (lambda: _forge(_payload(), {"kid": "k9"}), "unknown key id"),
        (lambda: _forge(_payload(), {}), "unknown key id"),
        (lambda: _forge(_payload(), {"kid": "k1"}, key="c" * 32), "bad signature"),
        (lambda: _forge(_payload(), {"kid": "k2"}), "bad signature"),  # signed with k1, claims k2
        (lambda: _forge(_payload(aud="other-api"), {"kid": "k1"}), "wrong audience"),
        (lambda: _forge(_payload(iss="evil"), {"kid": "k1"}), "wrong issuer"),
        (lambda: _forge(_payload(typ="refresh"), {"kid": "k1"}), "not an access token"),
        (
            lambda: _forge({k: v for k, v in _payload().items() if k != "ver"}, {"kid": "k1"}),
            "missing claim ver",
        ),
        (
            lambda: _forge({k: v for k, v in _payload().items() if k != "jti"}, {"kid": "k1"}),
            "missing claim jti",
        ),
        (lambda: _forge(_payload(ver="3"), {"kid": "k1"}), "ver is not an integer"),
        (lambda: _forge(_payload(role="root"), {"kid": "k1"}), "unknown role"),
        (lambda: _forge(_payload(permissions="users:write"), {"kid": "k1"}), "permissions"),
        (lambda: _forge(_payload(iat=int(NOW) + 3600, exp=int(NOW) + 4000), {"kid": "k1"}), "future"),
        (lambda: "not.a.token", "malformed"),
        (lambda: _alg_none(), "unexpected algorithm"),
        (lambda: _alg_hs512(), "unexpected algorithm"),
    ],
)
def test_bad_tokens_are_refused(token_factory: object, reason: str) -> None:
    with pytest.raises(TokenInvalid, match=reason):
        service().decode_access_token(token_factory())  # type: ignore[operator]


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _alg_none() -> str:
    return f"{_b64({'alg': 'none', 'kid': 'k1'})}.{_b64(_payload())}."


def _alg_hs512() -> str:
    return jwt.encode(_payload(), KEY_A * 2, algorithm="HS512", headers={"kid": "k1"})


def test_short_keys_and_missing_active_key_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        JwtKeyRing({"k1": "short"}, active_kid="k1")
    with pytest.raises(ValueError, match="not in the key ring"):
        JwtKeyRing({"k1": KEY_A}, active_kid="k2")


# --- secret box --------------------------------------------------------------------------------

K1, K2 = bytes(range(32)), bytes(range(32, 64))


def test_seal_and_open_with_key_id_in_the_text() -> None:
    box = AesGcmSecretBox({"k1": K1}, active_kid="k1")
    sealed = box.seal(b"JBSWY3DPEHPK3PXP", context="mfa:user-1")
    assert sealed.startswith("v1:k1:") and "JBSWY3DP" not in sealed
    assert box.open(sealed, context="mfa:user-1") == b"JBSWY3DPEHPK3PXP"
    assert box.seal(b"same", "c") != box.seal(b"same", "c")  # fresh nonce
    assert len(sealed) < 255  # fits users.mfa_secret VARCHAR(255)


def test_rotation_old_ciphertexts_open_and_need_reseal() -> None:
    old_box = AesGcmSecretBox({"k1": K1}, active_kid="k1")
    sealed = old_box.seal(b"secret")
    new_box = AesGcmSecretBox({"k1": K1, "k2": K2}, active_kid="k2")
    assert new_box.open(sealed) == b"secret"
    assert new_box.needs_reseal(sealed) and not new_box.needs_reseal(new_box.seal(b"secret"))
    with pytest.raises(SecretUndecryptable, match="unknown key id"):
        AesGcmSecretBox({"k2": K2}, active_kid="k2").open(sealed)


def _tamper(sealed: str) -> str:
    prefix, body = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(body + "=="))
    raw[-1] ^= 1
    return f"{prefix}:{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    ("mangle", "context", "reason"),
    [
        (_tamper, "mfa:user-1", "authentication failed"),
        (lambda s: s, "mfa:user-2", "authentication failed"),  # copied to another user's row
        (lambda s: s.replace("v1:k1:", "v1:k2:"), "mfa:user-1", "authentication failed"),  # kid swapped
        (lambda s: s.replace("v1:", "v2:"), "mfa:user-1", "not a v1"),
        (lambda s: "v1:k1:abc", "mfa:user-1", "too short"),
        (lambda s: "plain text", "mfa:user-1", "not a v1"),
    ],
)
def test_tampering_is_detected(mangle: object, context: str, reason: str) -> None:
    box = AesGcmSecretBox({"k1": K1, "k2": K2}, active_kid="k1")
    sealed = box.seal(b"secret", context="mfa:user-1")
    with pytest.raises(SecretUndecryptable, match=reason):
        box.open(mangle(sealed), context=context)  # type: ignore[operator]


def test_settings_key_must_be_32_bytes_base64() -> None:
    assert decode_key(base64.b64encode(K1).decode()) == K1
    assert decode_key(base64.urlsafe_b64encode(K2).decode().rstrip("=")) == K2
    with pytest.raises(ValueError, match="32 bytes"):
        decode_key(base64.b64encode(b"x" * 16).decode())
    with pytest.raises(ValueError, match="base64"):
        decode_key("not base64 at all!")


# --- TOTP ----------------------------------------------------------------------------------------

AT = dt.datetime(2025, 3, 1, 9, 0, 10, tzinfo=dt.UTC)


def test_enrollment_gives_secret_uri_and_svg_qr() -> None:
    enrollment = PyOtpTotp().new_enrollment(account_name="ada@bank.com", issuer="ReckAI")
    assert len(base64.b32decode(enrollment.secret)) == 20
    assert enrollment.provisioning_uri.startswith("otpauth://totp/ReckAI:ada%40bank.com?")
    assert (
        f"secret={enrollment.secret}" in enrollment.provisioning_uri
        and "issuer=ReckAI" in enrollment.provisioning_uri
    )
    assert enrollment.qr_svg.startswith("<svg") and enrollment.qr_svg.rstrip().endswith("</svg>")


def test_verify_window_and_replay() -> None:
    totp = PyOtpTotp()
    secret = pyotp.random_base32()
    reference = pyotp.TOTP(secret)
    step = int(AT.timestamp()) // 30
    code_now = reference.at(AT)
    assert totp.verify(secret, code_now, last_used_step=None, at=AT) == step
    assert totp.verify(secret, code_now, last_used_step=step, at=AT) is None  # replay refused
    previous = reference.at(AT - dt.timedelta(seconds=30))
    assert totp.verify(secret, previous, last_used_step=None, at=AT) == step - 1  # clock drift
    assert totp.verify(secret, previous, last_used_step=step, at=AT) is None  # older than used
    following = reference.at(AT + dt.timedelta(seconds=30))
    assert totp.verify(secret, following, last_used_step=step, at=AT) == step + 1
    two_back = reference.at(AT - dt.timedelta(seconds=60))
    if two_back not in {code_now, previous, following}:
        assert totp.verify(secret, two_back, last_used_step=None, at=AT) is None
    for garbage in ("", "12345", "1234567", "abcdef"):
        assert totp.verify(secret, garbage, last_used_step=None, at=AT) is None


@settings(max_examples=150, deadline=None)
@given(plaintext=st.binary(max_size=256), context=st.text(max_size=40), other=st.text(max_size=40))
def test_secret_box_round_trip_and_context_binding(plaintext: bytes, context: str, other: str) -> None:
    box = AesGcmSecretBox({"k1": K1}, active_kid="k1")
    sealed = box.seal(plaintext, context)
    assert box.open(sealed, context) == plaintext
    if other != context:
        with pytest.raises(SecretUndecryptable):
            box.open(sealed, other)
