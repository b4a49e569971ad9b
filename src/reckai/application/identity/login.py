"""Signing in and out: login (password, then MFA when enabled), refresh rotation, logout.

docs/identity.md describes the states; the rules themselves are in reckai.domain.identity
(lockout in password_policy, rotation in tokens, replay in mfa_rules).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from reckai.application.context import Outcome, RequestInfo
from reckai.application.errors import NotFound, ServiceUnavailable
from reckai.application.identity.common import (
    EventSubject,
    IdentityServices,
    TokenPair,
    issue_access,
    start_session,
)
from reckai.application.identity.errors import (
    InvalidCredentials,
    InvalidMfaCode,
    InvalidRefreshToken,
    ReauthenticationFailed,
)
from reckai.application.ports.rate_limit import auth_account_subject
from reckai.application.ports.repositories import DuplicateEntity
from reckai.application.ports.security import SecretUndecryptable, TokenBlacklistUnavailable
from reckai.application.ports.unit_of_work import UnitOfWork
from reckai.domain.identity.entities import Organization, User, UserSession
from reckai.domain.identity.mfa_rules import match_recovery_code
from reckai.domain.identity.password_policy import (
    UNKNOWN_SOURCE,
    LockoutState,
    SignInState,
    record_sign_in_failure,
    record_sign_in_success,
    sign_in_gate,
    sources_from_json,
    sources_to_json,
)
from reckai.domain.identity.principal import Principal
from reckai.domain.identity.tokens import (
    RefreshDecision,
    RefreshTokenState,
    RefreshTokenStatus,
    decide_refresh,
    hash_refresh_token,
    refresh_expiry,
)

MFA_CHALLENGE_LIFETIME = dt.timedelta(minutes=5)
_MFA_CONTEXT = "mfa-login"

AUTHENTICATED = "authenticated"
MFA_REQUIRED = "mfa_required"
PASSWORD_CHANGE_REQUIRED = "password_change_required"


@dataclass(frozen=True)
class LoginResult:
    status: str  # AUTHENTICATED | MFA_REQUIRED | PASSWORD_CHANGE_REQUIRED
    tokens: TokenPair | None = None
    mfa_token: str | None = None
    mfa_expires_at: dt.datetime | None = None


def _sign_in_state(user: User) -> SignInState:
    return SignInState(LockoutState(failed_attempts=user.failed_login_attempts or 0, locked_until=user.locked_until),
                       sources_from_json(user.login_sources))


def _apply(user: User, state: SignInState) -> None:
    user.failed_login_attempts = state.account.failed_attempts
    user.locked_until = state.account.locked_until
    user.login_sources = sources_to_json(state.sources)


def _source(request: RequestInfo) -> str:
    """The source a sign-in failure counts against: the client address (docs/identity.md)."""
    return request.ip_address or UNKNOWN_SOURCE


def _record_failure(
    services: IdentityServices,
    uow: UnitOfWork,
    user: User,
    organization: Organization,
    request: RequestInfo,
    action: str,
    reason: str,
) -> None:
    """Count a failed password or MFA code towards the lockout of this account from this source and
    the account-wide delay, and audit it (and the lock)."""
    now = services.now()
    source = _source(request)
    outcome = record_sign_in_failure(_sign_in_state(user), source, now, services.policy_for(organization))
    _apply(user, outcome.state)
    uow.users.update(user)
    common: dict[str, Any] = {"organization_id": user.organization_id, "user_id": user.id,
                              "resource_type": "user", "resource_id": user.id}
    from_source = outcome.state.sources[source]
    services.audit_log.record(
        uow,
        services.event(action, request, outcome=Outcome.UNAUTHENTICATED, metadata={
            "reason": reason, "failed_attempts": outcome.state.account.failed_attempts,
            "failed_attempts_from_source": from_source.failed_attempts,
            "delay_seconds": int(outcome.delay.total_seconds()) if outcome.delay else None}, **common),
    )
    if outcome.source_locked_now:
        services.audit_log.record(
            uow,
            services.event("auth.account.locked", request, outcome=Outcome.UNAUTHENTICATED, metadata={
                "locked_until": from_source.locked_until.isoformat() if from_source.locked_until else None,
                "failed_attempts": from_source.failed_attempts, "source": source}, **common),
        )
    uow.commit()


def reauthenticate(services: IdentityServices, uow: UnitOfWork, principal: Principal, password: str,
                   request: RequestInfo, failed_action: str) -> tuple[User, Organization]:
    """The caller confirms a sensitive change with their current password (password change, MFA
    enrolment, MFA reset of another user). A wrong one counts towards the caller's lockout and is
    audited as `failed_action`. Returns the caller's user and organization."""
    organization = uow.organizations.get(principal.organization_id)
    user = uow.users.get(principal.user_id)
    if user is None or organization is None:
        raise NotFound("user", principal.user_id)
    if not services.password_hasher.verify(password, user.password_hash):
        _record_failure(services, uow, user, organization, request, failed_action, "bad_current_password")
        raise ReauthenticationFailed()
    return user, organization


def login(
    services: IdentityServices, *, organization_code: str, email: str, password: str, request: RequestInfo
) -> LoginResult:
    code, address = organization_code.strip().lower(), email.strip()
    services.limit("auth_ip", request.ip_address or "unknown")
    services.limit("auth_account", auth_account_subject(code, address))
    with services.database.unit_of_work(None) as uow:
        # An offboarded organization's code is a pseudonym now and its data key is shredded, so no
        # user of it can be found, nor proved: the generic answer (docs/privacy.md, "Offboarding").
        candidate = uow.users.find_login_candidate(code, address)
    if candidate is None or not candidate.organization_is_active:
        services.password_hasher.verify_dummy(password)  # same time as a real check
        reason = "unknown_account" if candidate is None else "organization_inactive"
        organization_id = candidate.user.organization_id if candidate else None
        services.audit_log.record_independently(
            services.event("auth.login.failed", request, organization_id=organization_id,
                           user_id=candidate.user.id if candidate else None, outcome=Outcome.UNAUTHENTICATED,
                           metadata={"reason": reason, "organization": code, "email": address.lower()})
        )
        raise InvalidCredentials(reason)
    organization_id = candidate.user.organization_id
    with services.database.unit_of_work(organization_id) as uow:
        organization = uow.organizations.get(organization_id)
        user = uow.users.get(candidate.user.id)
        if organization is None or user is None:  # vanished between the two reads
            services.password_hasher.verify_dummy(password)
            raise InvalidCredentials("unknown_account")
        now = services.now()
        state = _sign_in_state(user)
        gate = sign_in_gate(state, _source(request), now)
        if not user.is_active or not gate.allowed:
            services.password_hasher.verify_dummy(password)
            reason = "user_inactive" if not user.is_active else str(gate.reason)
            services.audit_log.record(
                uow, services.event("auth.login.failed", request, organization_id=organization_id, user_id=user.id,
                                    resource_type="user", resource_id=user.id, outcome=Outcome.UNAUTHENTICATED,
                                    metadata={"reason": reason}))
            uow.commit()
            raise InvalidCredentials(reason)
        if not services.password_hasher.verify(password, user.password_hash):
            _record_failure(services, uow, user, organization, request, "auth.login.failed", "bad_password")
            raise InvalidCredentials("bad_password")
        _apply(user, record_sign_in_success(state, _source(request), now, services.policy_for(organization)))
        if services.password_hasher.needs_rehash(user.password_hash):
            user.password_hash = services.password_hasher.hash(password)
        if user.mfa_enabled:
            uow.users.update(user)
            services.audit_log.record(
                uow, services.event("auth.login.mfa_required", request, organization_id=organization_id,
                                    user_id=user.id, resource_type="user", resource_id=user.id, outcome=Outcome.DONE))
            uow.commit()
            token, expires_at = _mfa_challenge(services, user)
            return LoginResult(status=MFA_REQUIRED, mfa_token=token, mfa_expires_at=expires_at)
        return _finish_login(services, uow, user, organization, request, method="password")


def _finish_login(
    services: IdentityServices,
    uow: UnitOfWork,
    user: User,
    organization: Organization,
    request: RequestInfo,
    *,
    method: str,
) -> LoginResult:
    now = services.now()
    user.last_login_at = now
    uow.users.update(user)
    tokens = start_session(services, uow, user, request)
    expired = services.password_expired(user, organization)
    common = {"organization_id": user.organization_id, "user_id": user.id}
    services.audit_log.record(
        uow, services.event("auth.login.succeeded", request, resource_type="user", resource_id=user.id, outcome=Outcome.DONE,
                            metadata={"method": method, "change_required": expired}, **common))
    services.audit_log.record(
        uow, services.event("auth.token.issued", request, resource_type="session", resource_id=tokens.session_id,
                            outcome=Outcome.DONE, metadata={"grant": "login"}, **common))
    uow.commit()
    return LoginResult(status=PASSWORD_CHANGE_REQUIRED if expired else AUTHENTICATED, tokens=tokens)


# --- MFA second step ----------------------------------------------------------------------------


def _mfa_challenge(services: IdentityServices, user: User) -> tuple[str, dt.datetime]:
    """An opaque, sealed (AES-GCM) and short-lived proof that the password step passed."""
    expires_at = services.now() + MFA_CHALLENGE_LIFETIME
    body = {"u": str(user.id), "o": str(user.organization_id), "exp": int(expires_at.timestamp()),
            "j": secrets.token_urlsafe(16)}
    return services.secret_box.seal(json.dumps(body).encode(), _MFA_CONTEXT), expires_at


def _open_challenge(services: IdentityServices, token: str) -> tuple[uuid.UUID, uuid.UUID, str, dt.datetime]:
    try:
        body = json.loads(services.secret_box.open(token, _MFA_CONTEXT))
        user_id, organization_id = uuid.UUID(body["u"]), uuid.UUID(body["o"])
        expires_at = dt.datetime.fromtimestamp(int(body["exp"]), tz=dt.UTC)
        jti = str(body["j"])
    except (SecretUndecryptable, ValueError, KeyError, TypeError):
        raise InvalidMfaCode("challenge_invalid") from None
    if services.now() >= expires_at:
        raise InvalidMfaCode("challenge_expired")
    try:
        if services.token_blacklist.is_revoked(f"mfa:{jti}"):
            raise InvalidMfaCode("challenge_used")
    except TokenBlacklistUnavailable:
        raise ServiceUnavailable("token_blacklist", "cannot check the sign-in challenge") from None
    return user_id, organization_id, jti, expires_at


def check_second_factor(services: IdentityServices, uow: UnitOfWork, user: User, code: str) -> str | None:
    """The method that accepted `code` ("totp" or "recovery_code"), or None. Marks the TOTP step or
    the recovery code used in the unit of work, so each works once."""
    now = services.now()
    cleaned = code.strip().replace(" ", "")
    if cleaned.isdigit() and len(cleaned) == 6 and user.mfa_secret:
        try:
            secret = services.secret_box.open(user.mfa_secret, f"mfa:{user.id}").decode()
        except SecretUndecryptable:
            return None
        step = services.totp.verify(secret, cleaned, last_used_step=uow.mfa.last_totp_step(user.id), at=now)
        if step is not None and uow.mfa.advance_totp_step(user.id, step):
            return "totp"
        return None
    codes = uow.mfa.unused_recovery_codes(user.id)
    index = match_recovery_code(code, [c.code_hash for c in codes])
    if index is not None and uow.mfa.use_recovery_code(codes[index].id, now):
        return "recovery_code"
    return None


def verify_mfa_login(services: IdentityServices, *, mfa_token: str, code: str, request: RequestInfo) -> LoginResult:
    services.limit("auth_ip", request.ip_address or "unknown")
    user_id, organization_id, jti, expires_at = _open_challenge(services, mfa_token)
    services.limit("auth_account", f"mfa:{user_id}")
    with services.database.unit_of_work(organization_id) as uow:
        organization = uow.organizations.get(organization_id)
        user = uow.users.get(user_id)
        if organization is None or user is None or not organization.is_active or not user.is_active \
                or not user.mfa_enabled:
            raise InvalidMfaCode("account_unavailable")
        now = services.now()
        state = _sign_in_state(user)
        gate = sign_in_gate(state, _source(request), now)
        if not gate.allowed:
            raise InvalidMfaCode(str(gate.reason))
        method = check_second_factor(services, uow, user, code)
        if method is None:
            uow.rollback()
            _record_failure(services, uow, user, organization, request, "auth.mfa.failed", "bad_code")
            raise InvalidMfaCode()
        _apply(user, record_sign_in_success(state, _source(request), now, services.policy_for(organization)))
        services.audit_log.record(
            uow, services.event("auth.mfa.used", request, organization_id=organization_id, user_id=user.id,
                                resource_type="user", resource_id=user.id, outcome=Outcome.DONE, metadata={"method": method}))
        result = _finish_login(services, uow, user, organization, request, method=f"password+{method}")
    services.token_blacklist.revoke(f"mfa:{jti}", expires_at)  # the challenge works once
    return result


# --- refresh --------------------------------------------------------------------------------------


def _state(session: UserSession, family_started: dt.datetime, family_revoked: bool,
           successor: UserSession | None) -> RefreshTokenState:
    if session.revoked_at is not None or family_revoked:
        status = RefreshTokenStatus.REVOKED
    elif session.rotated_at is not None:
        status = RefreshTokenStatus.ROTATED
    else:
        status = RefreshTokenStatus.ACTIVE
    successor_active = successor is not None and successor.revoked_at is None and successor.rotated_at is None
    return RefreshTokenState(status=status, expires_at=session.expires_at, session_started_at=family_started,
                             rotated_at=session.rotated_at, successor_active=successor_active)


def refresh_session(services: IdentityServices, *, refresh_token: str, request: RequestInfo) -> TokenPair:
    for attempt in range(2):
        try:
            return _refresh_once(services, refresh_token, request)
        except DuplicateEntity:
            # A concurrent refresh of the same token inserted the (deterministic) successor first;
            # the retry sees the token rotated within the grace window and returns that successor.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _refresh_once(services: IdentityServices, refresh_token: str, request: RequestInfo) -> TokenPair:
    token_hash = hash_refresh_token(refresh_token)
    with services.database.unit_of_work(None) as uow:
        found = uow.sessions.find_by_token_hash(token_hash)
    if found is None:
        raise InvalidRefreshToken("unknown")
    organization_id = found.organization_id
    with services.database.unit_of_work(organization_id) as uow:
        session = uow.sessions.get(found.id)
        family = uow.sessions.get_family(session.family_id) if session and session.family_id else None
        if session is None or family is None:
            raise InvalidRefreshToken("unknown")
        successor = uow.sessions.get(session.replaced_by) if session.replaced_by else None
        now = services.now()
        family_started = family.created_at or now
        state = _state(session, family_started, family.revoked_at is not None, successor)
        fingerprint_matches = session.fingerprint_hash == request.fingerprint
        decision = decide_refresh(state, now, fingerprint_matches=fingerprint_matches)
        common = EventSubject(organization_id=organization_id, user_id=session.user_id, resource_type="session",
                              resource_id=family.id)
        if decision is RefreshDecision.REVOKE_FAMILY:
            revoked = uow.sessions.revoke_family(family.id, now, "reuse_detected")
            services.audit_log.record(uow, services.event(
                "auth.refresh.reuse_detected", request, outcome=Outcome.UNAUTHENTICATED, metadata={"revoked_count": revoked}, **common))
            services.audit_log.record(uow, services.event(
                "auth.token.revoked", request, outcome=Outcome.UNAUTHENTICATED, metadata={"reason": "reuse_detected"}, **common))
            uow.commit()
            raise InvalidRefreshToken("reuse_detected")
        if decision is RefreshDecision.REJECT:
            if not fingerprint_matches and state.status is not RefreshTokenStatus.REVOKED:
                services.audit_log.record(uow, services.event(
                    "auth.refresh.fingerprint_mismatch", request, outcome=Outcome.UNAUTHENTICATED,
                    metadata={"previous_ip": session.ip_address}, **common))
                uow.commit()
                raise InvalidRefreshToken("fingerprint_mismatch")
            raise InvalidRefreshToken(state.status.value)
        organization = uow.organizations.get(organization_id)
        # An inactive (offboarded) organization's users are not read: their data key may be gone.
        user = uow.users.get(session.user_id) if organization is not None and organization.is_active else None
        if organization is None or user is None or not organization.is_active or not user.is_active:
            uow.sessions.revoke_family(family.id, now, "account_inactive")
            uow.commit()
            raise InvalidRefreshToken("account_inactive")
        next_token = services.successor_token(refresh_token)
        if decision is RefreshDecision.RETURN_SAME_SUCCESSOR:
            if successor is None or successor.token_hash != hash_refresh_token(next_token):
                raise InvalidRefreshToken("successor_mismatch")
            access = issue_access(services, user, family.id)
            return TokenPair(access_token=access.token, access_expires_at=access.claims.expires_at,
                             refresh_token=next_token, refresh_expires_at=successor.expires_at, session_id=family.id)
        # ROTATE
        new_session = uow.sessions.add(UserSession(
            id=uuid.uuid4(), organization_id=organization_id, user_id=user.id,
            token_hash=hash_refresh_token(next_token), expires_at=refresh_expiry(family_started, now),
            family_id=family.id, ip_address=request.ip_address,
            user_agent=(request.user_agent or "")[:1024] or None, fingerprint_hash=session.fingerprint_hash,
            absolute_expires_at=family.absolute_expires_at, created_at=now, last_activity_at=now,
        ))
        uow.sessions.update(dataclasses.replace(session, rotated_at=now, replaced_by=new_session.id,
                                                last_activity_at=now))
        if session.ip_address != request.ip_address:
            services.audit_log.record(uow, services.event(
                "auth.session.ip_changed", request, outcome=Outcome.DONE,
                metadata={"previous_ip": session.ip_address, "new_ip": request.ip_address}, **common))
        services.audit_log.record(uow, services.event(
            "auth.token.issued", request, outcome=Outcome.DONE, metadata={"grant": "refresh"}, **common))
        uow.commit()
    access = issue_access(services, user, family.id)
    return TokenPair(access_token=access.token, access_expires_at=access.claims.expires_at,
                     refresh_token=next_token, refresh_expires_at=new_session.expires_at, session_id=family.id)


# --- logout ---------------------------------------------------------------------------------------


def logout(
    services: IdentityServices,
    principal: Principal,
    *,
    access_expires_at: dt.datetime,
    refresh_token: str | None,
    request: RequestInfo,
) -> bool:
    """Blacklist the access token's jti until it expires and, when the refresh token is given,
    revoke its session (token family). Returns whether a session was revoked."""
    services.token_blacklist.revoke(principal.token_id, access_expires_at)
    revoked = False
    with services.database.unit_of_work(principal.organization_id) as uow:
        family_id = None
        if refresh_token:
            with services.database.unit_of_work(None) as lookup:
                found = lookup.sessions.find_by_token_hash(hash_refresh_token(refresh_token))
            if found is not None and found.user_id == principal.user_id \
                    and found.organization_id == principal.organization_id and found.family_id:
                family_id = found.family_id
                revoked = uow.sessions.revoke_family(family_id, services.now(), "logout") > 0
        services.audit_log.record(uow, services.event(
            "auth.token.revoked", request, organization_id=principal.organization_id, user_id=principal.user_id,
            resource_type="session", resource_id=family_id, outcome=Outcome.DONE,
            metadata={"reason": "logout", "jti": principal.token_id, "logged_out": revoked}))
        uow.commit()
    return revoked
