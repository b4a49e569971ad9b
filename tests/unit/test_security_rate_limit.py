"""Rate limiter and token blacklist contracts, run here over the memory adapters and in
tests/integration over Redis (the same classes), plus memory-only tests with a fake clock."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable

import pytest

from reckai.adapters.memory.rate_limit import MemoryRateLimiter
from reckai.adapters.memory.token_blacklist import MemoryTokenBlacklist
from reckai.application.ports.rate_limit import TIERS, RateLimiter, RateLimitTier, auth_account_subject
from reckai.application.ports.security import TokenBlacklist


def test_tier_table_is_the_spec() -> None:
    table = {name: (t.limit, t.window_seconds, t.fail_open) for name, t in TIERS.items()}
    assert table == {
        "auth_ip": (30, 60, False),  # a setting since issue 12 (AUTH_IP_LIMIT_PER_MINUTE); per account stays 5
        "auth_account": (5, 60, False),
        "api": (100, 60, True),
        "upload": (10, 3600, False),
        "report": (5, 3600, False),
        "export": (3, 3600, False),  # issue 17: per user
        "export_organization": (10, 3600, False),  # per organization
    }
    with pytest.raises(ValueError):
        RateLimitTier("broken", limit=0, window_seconds=60, subject="x", fail_open=True)


def test_account_subject_ignores_case_and_spaces() -> None:
    assert auth_account_subject("BANK1", " Ada@Bank.COM ") == auth_account_subject("bank1", "ada@bank.com")
    assert auth_account_subject("bank1", "ada@bank.com") != auth_account_subject("bank2", "ada@bank.com")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class RateLimiterContract:
    """Subclasses provide `limiter` (a fixture) built on a fresh or shared store."""

    def test_allows_exactly_the_limit_then_refuses(self, limiter: RateLimiter) -> None:
        tier = TIERS["auth_account"]
        subject = unique("203.0.113.7")
        decisions = [limiter.hit(tier, subject) for _ in range(7)]
        assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
        assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
        refused = decisions[5]
        assert refused.limit == 5 and refused.remaining == 0 and 1 <= refused.retry_after_seconds <= 60
        assert not refused.degraded

    def test_subjects_and_tiers_have_separate_keys(self, limiter: RateLimiter) -> None:
        subject = unique("user")
        for _ in range(5):
            assert limiter.hit(TIERS["report"], subject).allowed
        assert not limiter.hit(TIERS["report"], subject).allowed
        assert limiter.hit(TIERS["report"], unique("other-user")).allowed
        assert limiter.hit(TIERS["upload"], subject).allowed  # same user, other tier
        assert limiter.hit(TIERS["api"], subject).allowed

    def test_window_slides(self, limiter: RateLimiter) -> None:
        tier = RateLimitTier("test_short", limit=2, window_seconds=1, subject="test", fail_open=False)
        subject = unique("s")
        assert limiter.hit(tier, subject).allowed
        time.sleep(0.5)
        assert limiter.hit(tier, subject).allowed
        refused = limiter.hit(tier, subject)
        assert not refused.allowed and refused.retry_after_seconds == 1
        time.sleep(0.6)  # the first hit left the window, the second has not
        assert limiter.hit(tier, subject).allowed
        assert not limiter.hit(tier, subject).allowed

    def test_reset_forgets_the_subject(self, limiter: RateLimiter) -> None:
        tier, subject = TIERS["auth_account"], unique("ORG:ada@bank.com")
        for _ in range(5):
            limiter.hit(tier, subject)
        assert not limiter.hit(tier, subject).allowed
        limiter.reset(tier, subject)
        assert limiter.hit(tier, subject).allowed

    def test_release_gives_back_exactly_the_named_hit(self, limiter: RateLimiter) -> None:
        tier, subject = TIERS["upload"], unique("uploader")
        decisions = [limiter.hit(tier, subject) for _ in range(10)]
        assert all(d.allowed and d.hit_id for d in decisions) and len({d.hit_id for d in decisions}) == 10
        assert not limiter.hit(tier, subject).allowed
        limiter.release(tier, subject, decisions[3].hit_id or "")
        limiter.release(tier, subject, decisions[3].hit_id or "")  # idempotent: one hit back, not two
        limiter.release(tier, unique("someone-else"), decisions[4].hit_id or "")  # another key: no effect
        again = limiter.hit(tier, subject)
        assert again.allowed and again.remaining == 0
        assert not limiter.hit(tier, subject).allowed

    def test_concurrent_hits_never_exceed_the_limit(self, limiter_factory: Callable[[], RateLimiter]) -> None:
        tier = TIERS["api"]
        subject = unique("busy-user")
        limiters = [limiter_factory() for _ in range(8)]  # e.g. separate connections / processes
        allowed: list[bool] = []
        lock = threading.Lock()
        barrier = threading.Barrier(len(limiters))

        def worker(own: RateLimiter) -> None:
            barrier.wait()
            results = [own.hit(tier, subject).allowed for _ in range(30)]
            with lock:
                allowed.extend(results)

        threads = [threading.Thread(target=worker, args=(own,)) for own in limiters]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(allowed) == 240 and allowed.count(True) == 100


class TokenBlacklistContract:
    def test_revoked_until_expiry(self, blacklist: TokenBlacklist) -> None:
        jti = uuid.uuid4().hex
        assert not blacklist.is_revoked(jti)
        blacklist.revoke(jti, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
        blacklist.revoke(jti, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))  # idempotent
        assert blacklist.is_revoked(jti)
        assert not blacklist.is_revoked(uuid.uuid4().hex)
        time.sleep(1.2)
        assert not blacklist.is_revoked(jti)

    def test_already_expired_token_is_a_no_op(self, blacklist: TokenBlacklist) -> None:
        jti = uuid.uuid4().hex
        blacklist.revoke(jti, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        assert not blacklist.is_revoked(jti)


class TestMemoryRateLimiter(RateLimiterContract):
    @pytest.fixture
    def limiter(self) -> RateLimiter:
        return MemoryRateLimiter()

    @pytest.fixture
    def limiter_factory(self) -> Callable[[], RateLimiter]:
        shared = MemoryRateLimiter()  # one process: every thread shares the one store
        return lambda: shared


class TestMemoryTokenBlacklist(TokenBlacklistContract):
    @pytest.fixture
    def blacklist(self) -> TokenBlacklist:
        return MemoryTokenBlacklist()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_limiter_exact_window_with_fake_clock() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    tier = TIERS["upload"]  # 10 per hour
    for minute in range(10):
        clock.now = 1000.0 + minute * 60
        assert limiter.hit(tier, "u").allowed
    clock.now = 1000.0 + 30 * 60
    refused = limiter.hit(tier, "u")
    assert not refused.allowed and refused.retry_after_seconds == 30 * 60
    clock.now = 1000.0 + 3600  # the first upload has left the window, exactly
    assert limiter.hit(tier, "u").allowed
    assert not limiter.hit(tier, "u").allowed


def test_refused_hits_are_not_counted() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    tier = TIERS["auth_account"]
    for _ in range(5):
        limiter.hit(tier, "ip")
    for second in range(59):
        clock.now = 1000.0 + second
        assert not limiter.hit(tier, "ip").allowed
    clock.now = 1060.0
    assert limiter.hit(tier, "ip").allowed


def test_memory_limiter_drops_stale_keys() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(clock=clock)
    for index in range(10_000):
        limiter.hit(TIERS["auth_ip"], f"ip-{index}")
    clock.now += 61
    limiter.hit(TIERS["auth_ip"], "new")
    assert len(limiter._hits) == 1


def test_memory_blacklist_with_fake_clock() -> None:
    now = [dt.datetime(2025, 1, 1, tzinfo=dt.UTC)]
    blacklist = MemoryTokenBlacklist(clock=lambda: now[0])
    blacklist.revoke("j1", now[0] + dt.timedelta(minutes=15))
    now[0] += dt.timedelta(minutes=14, seconds=59)
    assert blacklist.is_revoked("j1")
    now[0] += dt.timedelta(seconds=1)
    assert not blacklist.is_revoked("j1")
