"""Security ports: password hashing, common-password check, access tokens, secret encryption,
TOTP and the access-token blacklist.

Adapters: `adapters.security` (bcrypt/argon2id, zxcvbn, PyJWT, AES-256-GCM, pyotp/segno),
`adapters.redis.token_blacklist` and `adapters.memory.token_blacklist`.
No port method ever logs or returns a password, a secret or a token in an error message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from reckai.domain.identity.tokens import AccessClaims

# --- passwords ----------------------------------------------------------------------------------


class PasswordHashError(Exception):
    """Base of the password hasher's errors."""


class PasswordTooLong(PasswordHashError):
    """The configured hasher cannot take this many bytes (bcrypt: 72); it is refused, not truncated."""

    def __init__(self, size_bytes: int, max_bytes: int) -> None:
        super().__init__(
            f"password is {size_bytes} bytes long in UTF-8; the password hasher accepts at most {max_bytes} bytes"
        )
        self.size_bytes = size_bytes
        self.max_bytes = max_bytes


class PasswordHasher(Protocol):
    @property
    def scheme(self) -> str:
        """The configured scheme for new hashes: "bcrypt" or "argon2id"."""
        ...

    @property
    def max_password_bytes(self) -> int | None:
        """Longest accepted password in UTF-8 bytes (bcrypt: 72), None when unlimited.

        The password policy uses it to tell the user before `hash` would refuse."""
        ...

    def hash(self, password: str) -> str:
        """A new salted hash with the configured scheme and cost. Raises PasswordTooLong."""
        ...

    def verify(self, password: str, stored_hash: str) -> bool:
        """Does the password match? Accepts every supported scheme whatever the configured one.

        Never raises for a wrong password, an over-long password or a malformed stored hash: the
        answer is False (a malformed hash is logged, without the password)."""
        ...

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash's scheme or cost differs from the configured ones: after a
        successful login the caller stores `hash(password)` in its place."""
        ...

    def verify_dummy(self, password: str) -> bool:
        """Spend about the time of a real `verify` and return False: used for unknown users and
        locked accounts so the response time does not say which case it was."""
        ...


class CommonPasswordChecker(Protocol):
    def is_common(self, password: str, user_inputs: Sequence[str] = ()) -> bool:
        """Is the password on a common-password list, or trivially guessable (also using the
        user's own details in `user_inputs`)? Never logs the password."""
        ...


# --- access tokens ------------------------------------------------------------------------------


class TokenError(Exception):
    """Base of access-token errors. Messages are safe to return to the client."""


class TokenInvalid(TokenError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"access token is not valid: {reason}")
        self.reason = reason


class TokenExpired(TokenInvalid):
    def __init__(self) -> None:
        super().__init__("expired")


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    claims: AccessClaims


class TokenService(Protocol):
    def issue_access_token(
        self, *, user_id: str, organization_id: str, role: str, token_version: int, session_id: str
    ) -> IssuedAccessToken:
        """A signed access token for 15 minutes with the role's permissions (spec §2.2 names), a new
        `jti`, the session it belongs to (`sid`: the refresh-token family), `typ="access"`, the
        configured `aud`/`iss`, and `kid` of the active key."""
        ...

    def decode_access_token(self, token: str) -> AccessClaims:
        """Verify signature (by `kid`, any key of the ring), algorithm, `aud`, `iss`, `typ`, `exp`,
        `iat` and the presence and types of every claim. Raises TokenExpired or TokenInvalid.

        Does not check the blacklist, the user's current token version or whether the session is
        still live: the caller does."""
        ...


class TokenBlacklistError(Exception):
    """Base of blacklist errors."""


class TokenBlacklistUnavailable(TokenBlacklistError):
    """The blacklist store cannot be reached. Callers fail closed: a token whose revocation cannot
    be checked is not accepted (HTTP 503)."""


class TokenBlacklist(Protocol):
    def revoke(self, jti: str, expires_at: dt.datetime) -> None:
        """Refuse this `jti` until `expires_at` (the token's `exp`); afterwards the entry may go,
        since the token is dead anyway. Idempotent; an already-expired token is a no-op."""
        ...

    def is_revoked(self, jti: str) -> bool:
        """Was this `jti` revoked and is its token still unexpired? Raises TokenBlacklistUnavailable."""
        ...


# --- secrets at rest ----------------------------------------------------------------------------


class SecretBoxError(Exception):
    """Base of secret-box errors."""


class SecretUndecryptable(SecretBoxError):
    """The ciphertext is malformed, was made with a key id we no longer have, was tampered with, or
    belongs to another context. Never retried: the stored secret is unusable."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"stored secret cannot be decrypted: {reason}")
        self.reason = reason


class SecretBox(Protocol):
    def seal(self, plaintext: bytes, context: str = "") -> str:
        """Encrypt with the active key: `v1:<key id>:<base64url(nonce || ciphertext+tag)>`.

        `context` (e.g. "mfa:<user id>") is bound as associated data: a ciphertext copied to
        another user's row does not open."""
        ...

    def open(self, sealed: str, context: str = "") -> bytes:
        """Decrypt with the key named in the text. Raises SecretUndecryptable."""
        ...

    def needs_reseal(self, sealed: str) -> bool:
        """True when the text was sealed with a key other than the active one (rotate it)."""
        ...


# --- TOTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotpEnrollment:
    secret: str  # base32; store only through the SecretBox
    provisioning_uri: str  # otpauth://totp/...
    qr_svg: str  # an SVG document of the URI's QR code


class Totp(Protocol):
    def new_enrollment(self, *, account_name: str, issuer: str) -> TotpEnrollment:
        """A fresh 160-bit secret, its otpauth:// URI and QR code."""
        ...

    def verify(
        self, secret: str, code: str, *, last_used_step: int | None, at: dt.datetime | None = None
    ) -> int | None:
        """The time-step the code matches within ±1 step of `at` (default now), only among steps
        later than `last_used_step`; None when no such step matches. The caller stores the returned
        step as the new `last_used_step`, so the same code is never accepted twice."""
        ...
