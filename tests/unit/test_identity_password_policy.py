"""Password policy: composition, personal data, common passwords, history, expiry, lockout,
tightening. Pure domain: the common-password and history checks get plain callables here."""

from __future__ import annotations

import datetime as dt
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reckai.domain.identity.password_policy import (
    ABSOLUTE_MAX_LENGTH,
    DEFAULT_POLICY,
    LockoutState,
    PasswordPolicy,
    PasswordViolation,
    PolicyLoosened,
    UserFacts,
    check_password,
    login_gate,
    password_expired,
    record_failure,
    record_success,
)

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
GOOD = "Kx7#pq2Lm9"


def messages(violations: list[PasswordViolation]) -> list[str]:
    return [v.message for v in violations]


def test_spec_defaults() -> None:
    p = DEFAULT_POLICY
    assert (p.min_length, p.history_size, p.max_age_days, p.lockout_threshold, p.lockout_minutes) == (8, 5, 90, 5, 30)
    assert p.require_uppercase and p.require_lowercase and p.require_digit and p.require_special


def test_good_password_passes() -> None:
    assert check_password(GOOD) == []


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Kx7#pq2", "at least 8 characters"),
        ("kx7#pq2lm9", "uppercase"),
        ("KX7#PQ2LM9", "lowercase"),
        ("Kx#pqzLm!a", "digit"),
        ("Kx7apq2Lm9", "special character"),
        ("K" * 64 + "x7#" + "a" * 70, f"at most {ABSOLUTE_MAX_LENGTH} characters"),
    ],
)
def test_each_rule_names_itself(password: str, expected: str) -> None:
    violations = check_password(password)
    assert any(expected in m for m in messages(violations)), violations
    assert all(v.field == "password" for v in violations)


def test_violations_are_field_message_pairs_for_the_envelope() -> None:
    violations = check_password("abc", field="new_password")
    assert len(violations) == 4  # length, upper, digit, special
    field, message = violations[0]
    assert field == "new_password" and "abc" not in message


def test_bcrypt_byte_limit_is_a_clear_refusal() -> None:
    password = "Kx7#" + "é" * 40  # 44 characters, 84 bytes
    (violation,) = check_password(password, max_bytes=72)
    assert "84 bytes" in violation.message and "72 bytes" in violation.message and "truncated" in violation.message
    assert check_password(password, max_bytes=None) == []


@pytest.mark.parametrize(
    ("email", "name", "password"),
    [
        ("john.smith@bank.com", "Adaeze Smithers", "xx-JOHN.SMITH-9!"),  # the e-mail's local part
        ("john.smith@bank.com", "Adaeze Smithers", "Qq9!smithers"),  # a name token, any case
        ("john.smith@bank.com", "Adaeze Smithers", "AdaezeSmithers#1"),  # the name without spaces
        ("jsmith@x.org", "J Smith", "Jsmith#2025x"),
        ("ops@bank.com", "Ops Team", "Zq9!ops@bank.com"),  # the whole address
    ],
)
def test_personal_data_refused(email: str, name: str, password: str) -> None:
    violations = check_password(password, user=UserFacts(email=email, name=name))
    assert "must not contain your e-mail address or name" in messages(violations)


def test_short_name_fragments_do_not_forbid_everything() -> None:
    facts = UserFacts(email="jo@bank.com", name="Al Bo")
    assert check_password("Jo-Al-Bo#2025x", user=facts) == []


def test_common_checker_gets_password_and_personal_fragments() -> None:
    seen: list[tuple[str, list[str]]] = []

    def is_common(password: str, inputs: object) -> bool:
        seen.append((password, list(inputs)))  # type: ignore[call-overload]
        return password == "Password1!"

    assert "is too common or too easy to guess" in messages(check_password("Password1!", is_common=is_common))
    assert check_password(GOOD, is_common=is_common, user=UserFacts(email="ada@x.io")) == []
    assert seen[-1] == (GOOD, ["ada@x.io", "ada"])


def test_history_checks_only_the_last_n_through_the_verifier() -> None:
    history = [f"hash-of-Old{i}#pass" for i in range(7)]  # newest first

    def verify(password: str, stored: str) -> bool:
        return stored == f"hash-of-{password}"

    assert "must differ from your last 5 passwords" in messages(check_password("Old4#pass", history=history, verify=verify))
    assert check_password("Old5#pass", history=history, verify=verify) == []  # 6th newest: allowed
    stricter = DEFAULT_POLICY.tightened(history_size=7)
    assert check_password("Old6#pass", stricter, history=history, verify=verify) != []


def test_expiry_after_90_days() -> None:
    assert not password_expired(T0, T0 + dt.timedelta(days=89, hours=23))
    assert password_expired(T0, T0 + dt.timedelta(days=90))
    assert password_expired(None, T0)
    assert password_expired(T0, T0 + dt.timedelta(days=31), DEFAULT_POLICY.tightened(max_age_days=30))


# --- tightening --------------------------------------------------------------------------------


def test_organization_may_tighten() -> None:
    policy = PasswordPolicy.from_organization_settings({"password_policy": {"min_length": 14, "lockout_threshold": 3}})
    assert policy.min_length == 14 and policy.lockout_threshold == 3 and policy.history_size == 5
    assert PasswordPolicy.from_organization_settings({}) == DEFAULT_POLICY


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"min_length": 6}, "password_policy.min_length"),
        ({"require_special": False}, "password_policy.require_special"),
        ({"history_size": 2}, "password_policy.history_size"),
        ({"max_age_days": 365}, "password_policy.max_age_days"),
        ({"lockout_threshold": 10}, "password_policy.lockout_threshold"),
        ({"lockout_minutes": 5}, "password_policy.lockout_minutes"),
        ({"min_length": "12"}, "password_policy.min_length"),
        ({"lockout_minutes": True}, "password_policy.lockout_minutes"),
        ({"min_length": 500}, "password_policy.min_length"),
        ({"max_age_days": 0}, "password_policy.max_age_days"),
        ({"colour": "blue"}, "password_policy.colour"),
    ],
)
def test_loosening_or_nonsense_is_refused(change: dict[str, object], field: str) -> None:
    with pytest.raises(PolicyLoosened) as caught:
        PasswordPolicy.from_organization_settings({"password_policy": change})
    assert [v.field for v in caught.value.violations] == [field]


policies = st.builds(
    lambda base, extra: DEFAULT_POLICY.tightened(**{k: getattr(DEFAULT_POLICY, k) + v for k, v in extra.items()}),
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "min_length": st.integers(0, 20),
            "history_size": st.integers(0, 20),
            "lockout_minutes": st.integers(0, 600),
        },
    ),
)
passwords = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=0, max_size=40
)


@settings(max_examples=300, deadline=None)
@given(password=passwords, policy=policies)
def test_tightened_policy_refuses_everything_the_default_refuses(password: str, policy: PasswordPolicy) -> None:
    default_fails = bool(check_password(password))
    if default_fails:
        assert check_password(password, policy)


@settings(max_examples=300, deadline=None)
@given(
    upper=st.text(string.ascii_uppercase, min_size=1, max_size=4),
    lower=st.text(string.ascii_lowercase, min_size=1, max_size=4),
    digit=st.text(string.digits, min_size=1, max_size=4),
    special=st.text("!#$%&*+-=?@^_~ ", min_size=1, max_size=4),
    pad=st.text(string.ascii_letters + string.digits, min_size=4, max_size=20),
)
def test_any_password_with_every_class_and_length_passes_composition(
    upper: str, lower: str, digit: str, special: str, pad: str
) -> None:
    password = upper + lower + digit + special + pad
    assert check_password(password) == []
    without_digits = "".join(ch for ch in password if not ch.isdigit())
    assert "must contain a digit" in messages(check_password(without_digits + "xx"))
    without_upper = password.lower()
    assert "must contain an uppercase letter" in messages(check_password(without_upper))


@settings(max_examples=200, deadline=None)
@given(password=passwords)
def test_messages_never_echo_the_password(password: str) -> None:
    for violation in check_password(password, max_bytes=72):
        assert len(password) < 4 or password not in violation.message


# --- lockout -----------------------------------------------------------------------------------


def test_fifth_consecutive_failure_locks_for_thirty_minutes() -> None:
    state = LockoutState()
    for attempt in range(1, 5):
        outcome = record_failure(state, T0)
        state = outcome.state
        assert not outcome.locked_now and state.failed_attempts == attempt and state.locked_until is None
    outcome = record_failure(state, T0 + dt.timedelta(seconds=10))
    assert outcome.locked_now
    assert outcome.state.locked_until == T0 + dt.timedelta(seconds=10, minutes=30)
    gate = login_gate(outcome.state, T0 + dt.timedelta(minutes=20))
    assert not gate.allowed and gate.retry_after == dt.timedelta(minutes=10, seconds=10)


def test_lock_expires_and_a_fresh_series_starts() -> None:
    locked = LockoutState(failed_attempts=5, locked_until=T0)
    gate = login_gate(locked, T0)
    assert gate.allowed and gate.state == LockoutState()
    assert record_failure(locked, T0).state == LockoutState(failed_attempts=1)


def test_failures_while_locked_neither_count_nor_extend() -> None:
    locked = LockoutState(failed_attempts=5, locked_until=T0 + dt.timedelta(minutes=30))
    outcome = record_failure(locked, T0 + dt.timedelta(minutes=1))
    assert outcome.state == locked and not outcome.locked_now


def test_success_resets() -> None:
    assert record_success(LockoutState(failed_attempts=4)) == LockoutState()


events = st.lists(st.tuples(st.sampled_from(["fail", "ok"]), st.integers(0, 3600)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(events=events, threshold=st.integers(1, 8), minutes=st.integers(1, 120))
def test_lockout_invariants(events: list[tuple[str, int]], threshold: int, minutes: int) -> None:
    policy = PasswordPolicy(lockout_threshold=threshold, lockout_minutes=minutes)
    state, now, streak = LockoutState(), T0, 0
    for kind, gap in events:
        now += dt.timedelta(seconds=gap)
        gate = login_gate(state, now)
        if not gate.allowed:
            # Locked: only ever for at most the lock duration, and the attempt changes nothing.
            assert state.locked_until is not None and now < state.locked_until <= now + dt.timedelta(minutes=minutes)
            assert record_failure(state, now).state == state
            continue
        if gate.state != state:
            streak = 0  # an expired lock was cleared
        state = gate.state
        if kind == "ok":
            state, streak = record_success(state), 0
        else:
            outcome = record_failure(state, now, policy)
            streak += 1
            assert outcome.locked_now == (streak == threshold)
            state = outcome.state
            if outcome.locked_now:
                assert state.locked_until == now + dt.timedelta(minutes=minutes)
                streak = 0
        assert state.failed_attempts < threshold or state.locked_until is not None
