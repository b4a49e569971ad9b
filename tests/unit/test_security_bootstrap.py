"""The composition root picks the identity/security adapters from the settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reckai import bootstrap as root
from reckai.adapters.mail.file import FileMailer
from reckai.adapters.mail.smtp import SmtpMailer
from reckai.adapters.memory.mail import MemoryMailer
from reckai.adapters.memory.rate_limit import MemoryRateLimiter
from reckai.adapters.memory.token_blacklist import MemoryTokenBlacklist
from reckai.adapters.redis.rate_limit import RedisRateLimiter
from reckai.adapters.redis.token_blacklist import RedisTokenBlacklist
from reckai.settings import MailerSettings, RedisSettings, SecuritySettings, Settings


def test_in_memory_container_has_every_security_component() -> None:
    container = root.bootstrap_in_memory()
    assert isinstance(container.rate_limiter, MemoryRateLimiter)
    assert isinstance(container.token_blacklist, MemoryTokenBlacklist)
    assert isinstance(container.mailer, MemoryMailer)
    issued = container.token_service.issue_access_token(
        user_id="u", organization_id="o", role="admin", token_version=1, session_id="s"
    )
    assert container.token_service.decode_access_token(issued.token).role == "admin"
    assert container.secret_box.open(container.secret_box.seal(b"s", "c"), "c") == b"s"
    assert container.password_hasher.hash("Kx7#pq2Lm9").startswith("$2b$04$")


def test_real_builders_pick_redis_and_smtp_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        redis=RedisSettings(url="redis://127.0.0.1:1/0"),
        mailer=MailerSettings(backend="smtp", smtp_host="mail.internal", smtp_port=587, smtp_starttls=True),
        security=SecuritySettings(password_hasher="argon2id"),
    )
    security = root.build_security(settings)
    rate_limiter, token_blacklist = root.build_rate_limit_and_blacklist(settings)
    assert isinstance(rate_limiter, RedisRateLimiter)
    assert isinstance(token_blacklist, RedisTokenBlacklist)
    assert isinstance(root.build_mailer(settings), SmtpMailer)
    assert security.password_hasher.scheme == "argon2id"  # type: ignore[attr-defined]


def test_embedded_builders_fall_back_to_memory_and_file(tmp_path: Path) -> None:
    settings = Settings(mailer=MailerSettings(backend="file", outbox_dir=tmp_path))
    rate_limiter, _ = root.build_rate_limit_and_blacklist(settings)
    assert isinstance(rate_limiter, MemoryRateLimiter)
    assert isinstance(root.build_mailer(settings), FileMailer)
    assert root.build_security(settings).password_hasher.hash("Kx7#pq2Lm9").startswith("$2b$12$")


def test_retired_keys_still_verify_and_decrypt() -> None:
    old = Settings(security=SecuritySettings(jwt_secret="o" * 32, jwt_key_id="old"))
    old_container = root.build_security(old)
    token = old_container.token_service.issue_access_token(
        user_id="u", organization_id="o", role="analyst", token_version=1, session_id="s"
    ).token
    sealed = old_container.secret_box.seal(b"mfa")
    new_security = dataclasses.replace(
        old.security,
        jwt_secret="n" * 32,
        jwt_key_id="new",
        jwt_retired_keys=(("old", "o" * 32),),
        data_encryption_key="bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3LWtleSE=",
        data_encryption_key_id="new",
        data_encryption_retired_keys=(("dev-1", old.security.data_encryption_key),),
    )
    new_container = root.build_security(dataclasses.replace(old, security=new_security))
    assert new_container.token_service.decode_access_token(token).sub == "u"
    assert new_container.secret_box.open(sealed) == b"mfa" and new_container.secret_box.needs_reseal(sealed)


def test_unknown_backends_are_refused() -> None:
    with pytest.raises(ValueError, match="MAILER_BACKEND"):
        root.build_mailer(Settings(mailer=MailerSettings(backend="pigeon")))
    with pytest.raises(ValueError, match="password hasher"):
        root.build_security(Settings(security=SecuritySettings(password_hasher="md5")))
