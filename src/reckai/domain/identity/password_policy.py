"""Password policy (spec §2.1): composition, history, expiry and lockout, as pure functions.

The defaults are the spec's. An organization may tighten them, never loosen them
(`PasswordPolicy.tightened`, `PasswordPolicy.from_organization_settings`). Checks that need the
outside world come in as callables so the domain stays standard-library only:

- `is_common(password, user_inputs) -> bool`: the common-password list (the zxcvbn adapter behind
  the `CommonPasswordChecker` port);
- `verify(password, stored_hash) -> bool`: the password hasher, used against the history;
- `max_bytes`: the hasher's input limit (72 for bcrypt, None for argon2id).

Violations come back as `PasswordViolation(field, message)` pairs, ready for the error envelope's
`details`; the password itself never appears in a message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

# Beyond this many characters a password is refused whatever the hasher (ASVS 2.1.2: allow at
# least 64, refuse more than 128), so argon2id cannot be fed megabytes.
ABSOLUTE_MAX_LENGTH = 128
MAX_HISTORY_SIZE = 100
MAX_LOCKOUT_MINUTES = 525_600  # a year; longer is no different from disabling the account
# A name or e-mail fragment shorter than this is not looked for inside the password: "Al" or
# "jo@bank.com" would otherwise forbid half the dictionary.
MIN_PERSONAL_FRAGMENT = 3


class PasswordViolation(NamedTuple):
    field: str
    message: str


class PolicyLoosened(ValueError):
    """An organization tried to set a policy weaker than the platform's; `violations` say where."""

    def __init__(self, violations: Sequence[PasswordViolation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.message}" for v in violations))
        self.violations = list(violations)


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 8
    require_uppercase: bool = True
    require_lowercase: bool = True
    require_digit: bool = True
    require_special: bool = True
    history_size: int = 5  # the current password counts as one of them
    max_age_days: int = 90
    lockout_threshold: int = 5  # consecutive failures
    lockout_minutes: int = 30

    def tightened(self, **changes: Any) -> PasswordPolicy:
        """This policy with `changes` applied, refused (PolicyLoosened) if any change loosens it."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise PolicyLoosened(
                [
                    PasswordViolation(f"password_policy.{name}", "is not a policy setting")
                    for name in sorted(unknown)
                ]
            )
        candidate = dataclasses.replace(self, **changes)
        problems = _type_problems(candidate) or _loosenings(self, candidate)
        if problems:
            raise PolicyLoosened(problems)
        return candidate

    @classmethod
    def from_organization_settings(
        cls, org_settings: Mapping[str, Any], platform: PasswordPolicy | None = None
    ) -> PasswordPolicy:
        """The policy stored under `organizations.settings["password_policy"]`, on top of the
        platform's; a stored value that loosens it is refused, not silently clamped."""
        base = platform or cls()
        overrides = org_settings.get("password_policy") or {}
        if not isinstance(overrides, Mapping):
            raise PolicyLoosened([PasswordViolation("password_policy", "must be an object")])
        return base.tightened(**dict(overrides))


_INT_FIELDS = ("min_length", "history_size", "max_age_days", "lockout_threshold", "lockout_minutes")
_BOOL_FIELDS = ("require_uppercase", "require_lowercase", "require_digit", "require_special")


def _type_problems(policy: PasswordPolicy) -> list[PasswordViolation]:
    problems = []
    for name in _INT_FIELDS:
        value = getattr(policy, name)
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(PasswordViolation(f"password_policy.{name}", "must be a whole number"))
        elif value < 1:
            problems.append(PasswordViolation(f"password_policy.{name}", "must be at least 1"))
    for name in _BOOL_FIELDS:
        if not isinstance(getattr(policy, name), bool):
            problems.append(PasswordViolation(f"password_policy.{name}", "must be true or false"))
    if not problems:
        # Upper bounds: a lock of `lockout_minutes` must stay a date (an unbounded value made the
        # failed login that locks an account a 500), and a history is read back in full.
        for name, maximum in (("min_length", ABSOLUTE_MAX_LENGTH), ("history_size", MAX_HISTORY_SIZE),
                              ("lockout_minutes", MAX_LOCKOUT_MINUTES)):
            if getattr(policy, name) > maximum:
                problems.append(PasswordViolation(f"password_policy.{name}", f"must be at most {maximum}"))
    return problems


def _loosenings(base: PasswordPolicy, new: PasswordPolicy) -> list[PasswordViolation]:
    # For each field: is a larger value stricter (True) or a smaller one (False)?
    larger_is_stricter = {
        "min_length": True,
        "history_size": True,
        "lockout_minutes": True,
        "max_age_days": False,
        "lockout_threshold": False,
    }
    problems = []
    for name, up in larger_is_stricter.items():
        old, value = getattr(base, name), getattr(new, name)
        if (up and value < old) or (not up and value > old):
            bound = "at least" if up else "at most"
            problems.append(
                PasswordViolation(f"password_policy.{name}", f"may only be tightened: must be {bound} {old}")
            )
    for name in _BOOL_FIELDS:
        if getattr(base, name) and not getattr(new, name):
            problems.append(
                PasswordViolation(f"password_policy.{name}", "may only be tightened: must stay true")
            )
    return problems


DEFAULT_POLICY = PasswordPolicy()

CommonCheck = Callable[[str, Sequence[str]], bool]
Verify = Callable[[str, str], bool]


@dataclass(frozen=True)
class UserFacts:
    """What the password must not contain."""

    email: str = ""
    name: str = ""

    def fragments(self) -> list[str]:
        local = self.email.split("@", 1)[0]
        candidates = [self.email, local, *re.split(r"[\s._\-+]+", local), *self.name.split()]
        joined_name = "".join(self.name.split())
        candidates.append(joined_name)
        seen: list[str] = []
        for fragment in candidates:
            lowered = fragment.casefold()
            if len(lowered) >= MIN_PERSONAL_FRAGMENT and lowered not in seen:
                seen.append(lowered)
        return seen


def check_password(
    password: str,
    policy: PasswordPolicy = DEFAULT_POLICY,
    *,
    user: UserFacts | None = None,
    max_bytes: int | None = None,
    is_common: CommonCheck | None = None,
    history: Sequence[str] = (),
    verify: Verify | None = None,
    field: str = "password",
) -> list[PasswordViolation]:
    """Every rule the password breaks (empty list: acceptable).

    `history` holds the user's stored hashes, newest first, current password included; only the
    first `policy.history_size` are checked, each through `verify`.
    """
    violations: list[PasswordViolation] = []

    def refuse(message: str) -> None:
        violations.append(PasswordViolation(field, message))

    if len(password) < policy.min_length:
        refuse(f"must be at least {policy.min_length} characters long")
    if len(password) > ABSOLUTE_MAX_LENGTH:
        refuse(f"must be at most {ABSOLUTE_MAX_LENGTH} characters long")
    size = len(password.encode("utf-8"))
    if max_bytes is not None and size > max_bytes:
        refuse(
            f"is {size} bytes long in UTF-8 but the password hasher (bcrypt) accepts at most {max_bytes} bytes; "
            "choose a shorter password (it is never silently truncated)"
        )
    if policy.require_uppercase and not any(ch.isupper() for ch in password):
        refuse("must contain an uppercase letter")
    if policy.require_lowercase and not any(ch.islower() for ch in password):
        refuse("must contain a lowercase letter")
    if policy.require_digit and not any(ch.isdecimal() for ch in password):
        refuse("must contain a digit")
    if policy.require_special and not any(is_special(ch) for ch in password):
        refuse("must contain a special character (anything that is not a letter or a digit)")
    facts = user or UserFacts()
    lowered = password.casefold()
    fragments = facts.fragments()
    if any(fragment in lowered for fragment in fragments):
        refuse("must not contain your e-mail address or name")
    if is_common is not None and is_common(password, fragments):
        refuse("is too common or too easy to guess")
    if (
        history
        and verify is not None
        and any(verify(password, stored) for stored in history[: policy.history_size])
    ):
        refuse(f"must differ from your last {policy.history_size} passwords")
    return violations


def describe_password_policy(policy: PasswordPolicy, *, max_bytes: int | None = None) -> list[str]:
    """The rules `check_password` applies, as sentences for the person choosing a password (the
    pages behind mail links show them before the first attempt)."""
    rules = [f"At least {policy.min_length} and at most {ABSOLUTE_MAX_LENGTH} characters"
             + (f" (and at most {max_bytes} bytes in UTF-8)" if max_bytes is not None else "") + "."]
    for required, what in ((policy.require_uppercase, "uppercase letter"),
                           (policy.require_lowercase, "lowercase letter"),
                           (policy.require_digit, "digit"),
                           (policy.require_special, "special character (anything that is not a letter or a digit)")):
        if required:
            rules.append(f"At least one {what}.")
    rules.append("Not your e-mail address or name, and not a common or easily guessed password.")
    if policy.history_size > 1:
        rules.append(f"Different from your last {policy.history_size} passwords.")
    return rules


def is_special(ch: str) -> bool:
    return not ch.isalnum()


# --- expiry -------------------------------------------------------------------------------------


def password_expires_at(changed_at: dt.datetime, policy: PasswordPolicy = DEFAULT_POLICY) -> dt.datetime:
    return changed_at + dt.timedelta(days=policy.max_age_days)


def password_expired(
    changed_at: dt.datetime | None, now: dt.datetime, policy: PasswordPolicy = DEFAULT_POLICY
) -> bool:
    """A password never recorded as changed counts as expired: the user must set one."""
    if changed_at is None:
        return True
    return now >= password_expires_at(changed_at, policy)


# --- lockout ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockoutState:
    """What `users.failed_login_attempts` and `users.locked_until` hold."""

    failed_attempts: int = 0
    locked_until: dt.datetime | None = None


@dataclass(frozen=True)
class LoginGate:
    """Before checking a password: may this account try at all?

    `state` is the state to persist when it changed (an expired lock is cleared, and its failure
    count with it, so the next failures start a fresh series).
    """

    allowed: bool
    state: LockoutState
    retry_after: dt.timedelta | None = None


@dataclass(frozen=True)
class FailureOutcome:
    state: LockoutState
    locked_now: bool  # this failure started a lock: audit "account locked"


def login_gate(state: LockoutState, now: dt.datetime) -> LoginGate:
    if state.locked_until is not None:
        if now < state.locked_until:
            return LoginGate(allowed=False, state=state, retry_after=state.locked_until - now)
        return LoginGate(allowed=True, state=LockoutState())
    return LoginGate(allowed=True, state=state)


def record_failure(
    state: LockoutState, now: dt.datetime, policy: PasswordPolicy = DEFAULT_POLICY
) -> FailureOutcome:
    """A wrong password. Failures while locked neither count nor extend the lock (the gate refuses
    before the password is checked)."""
    gate = login_gate(state, now)
    if not gate.allowed:
        return FailureOutcome(state=state, locked_now=False)
    failures = gate.state.failed_attempts + 1
    if failures >= policy.lockout_threshold:
        locked = LockoutState(
            failed_attempts=failures, locked_until=now + dt.timedelta(minutes=policy.lockout_minutes)
        )
        return FailureOutcome(state=locked, locked_now=True)
    return FailureOutcome(state=LockoutState(failed_attempts=failures), locked_now=False)


def record_success(state: LockoutState) -> LockoutState:
    return LockoutState()


# --- lockout per account and source, with an account-wide delay (issue 12 item 7) -------------------
#
# The spec's lockout (5 failures, 30 minutes) applies per account *and source* (client address):
# wrong passwords typed elsewhere cannot lock a colleague out. What limits guessing from many
# addresses is an account-wide progressive delay: from the `lockout_threshold`-th consecutive
# failure (any source) the account refuses every attempt for 1 s, then 2, 4 ... at most
# ACCOUNT_DELAY_CAP, counted from the last failure; a success ends it. docs/identity.md has the
# trade-off.

ACCOUNT_DELAY_CAP = dt.timedelta(seconds=60)
MAX_TRACKED_SOURCES = 100
UNKNOWN_SOURCE = "unknown"


@dataclass(frozen=True)
class SourceFailures:
    """Recent failures from one source: counted within `lockout_minutes` of the last one."""

    failed_attempts: int
    last_failure_at: dt.datetime
    locked_until: dt.datetime | None = None


@dataclass(frozen=True)
class SignInState:
    """`account` is what `users.failed_login_attempts` (consecutive failures from any source) and
    `users.locked_until` (the end of the account-wide delay) hold; `sources` is `users.login_sources`."""

    account: LockoutState = LockoutState()
    sources: Mapping[str, SourceFailures] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class SignInGate:
    allowed: bool
    reason: str | None = None  # "locked" (this source) | "delayed" (the account)
    retry_after: dt.timedelta | None = None


@dataclass(frozen=True)
class SignInFailure:
    state: SignInState
    source_locked_now: bool  # this failure locked the source out: audit "account locked" with the source
    delay: dt.timedelta | None  # the account-wide delay this failure started, if any


def account_delay(consecutive_failures: int, policy: PasswordPolicy = DEFAULT_POLICY) -> dt.timedelta | None:
    """No delay below the threshold; then 1 s, doubling with each further failure, capped."""
    steps = consecutive_failures - policy.lockout_threshold
    if steps < 0:
        return None
    return min(dt.timedelta(seconds=2 ** min(steps, 16)), ACCOUNT_DELAY_CAP)


def sign_in_gate(state: SignInState, source: str, now: dt.datetime) -> SignInGate:
    """Before checking a password or a code: may this source try this account now?"""
    entry = state.sources.get(source)
    if entry is not None and entry.locked_until is not None and now < entry.locked_until:
        return SignInGate(False, "locked", entry.locked_until - now)
    if state.account.locked_until is not None and now < state.account.locked_until:
        return SignInGate(False, "delayed", state.account.locked_until - now)
    return SignInGate(True)


def record_sign_in_failure(state: SignInState, source: str, now: dt.datetime,
                           policy: PasswordPolicy = DEFAULT_POLICY) -> SignInFailure:
    """A wrong password or code from `source` (the gate allowed it)."""
    window = dt.timedelta(minutes=policy.lockout_minutes)
    sources = _live_sources(state.sources, now, window)
    previous = sources.get(source)
    failures = (previous.failed_attempts if previous is not None else 0) + 1
    locked_now = failures >= policy.lockout_threshold
    sources[source] = SourceFailures(failures, now, now + window if locked_now else None)
    consecutive = state.account.failed_attempts + 1
    delay = account_delay(consecutive, policy)
    account = LockoutState(failed_attempts=consecutive, locked_until=now + delay if delay else None)
    return SignInFailure(SignInState(account, _bounded(sources)), locked_now, delay)


def record_sign_in_success(state: SignInState, source: str, now: dt.datetime,
                           policy: PasswordPolicy = DEFAULT_POLICY) -> SignInState:
    """The account's consecutive count and delay end; this source's failures are forgotten. Other
    sources keep their locks: a success proves this source, not theirs."""
    sources = _live_sources(state.sources, now, dt.timedelta(minutes=policy.lockout_minutes))
    sources.pop(source, None)
    return SignInState(LockoutState(), sources)


def _live_sources(sources: Mapping[str, SourceFailures], now: dt.datetime,
                  window: dt.timedelta) -> dict[str, SourceFailures]:
    """Sources still locked, or whose last failure is within the window; an expired lock starts a
    fresh series."""
    live = {}
    for source, entry in sources.items():
        if entry.locked_until is not None:
            if now < entry.locked_until:
                live[source] = entry
        elif now < entry.last_failure_at + window:
            live[source] = entry
    return live


def _bounded(sources: dict[str, SourceFailures]) -> dict[str, SourceFailures]:
    """At most MAX_TRACKED_SOURCES: locks first, then the most recent failures (a spray from many
    addresses cannot grow the row without bound)."""
    if len(sources) <= MAX_TRACKED_SOURCES:
        return sources
    ranked = sorted(sources.items(), key=lambda item: (item[1].locked_until is not None, item[1].last_failure_at),
                    reverse=True)
    return dict(ranked[:MAX_TRACKED_SOURCES])


def sources_to_json(sources: Mapping[str, SourceFailures]) -> dict[str, Any]:
    return {source: {"failed_attempts": entry.failed_attempts,
                     "last_failure_at": entry.last_failure_at.isoformat(),
                     "locked_until": entry.locked_until.isoformat() if entry.locked_until else None}
            for source, entry in sources.items()}


def sources_from_json(stored: Mapping[str, Any] | None) -> dict[str, SourceFailures]:
    """The stored map; an entry that does not parse is dropped (it can only forget a failure)."""
    sources = {}
    for source, raw in (stored or {}).items():
        try:
            locked = raw.get("locked_until")
            sources[str(source)] = SourceFailures(
                int(raw["failed_attempts"]), _aware(dt.datetime.fromisoformat(raw["last_failure_at"])),
                _aware(dt.datetime.fromisoformat(locked)) if locked else None)
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
    return sources


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
