"""Issue 12 item 5: no public secrets, even locally (docs/identity.md, "Secrets of an embedded
instance"). `make run` is `RECKAI_MODE=embedded reckai serve`, whose settings come from
`Settings.from_env`: it must not sign tokens, download links or the audit chain with the
development secrets published in settings.py. Settings built in code (tests) keep them."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import stat
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from litestar.testing import TestClient

from reckai import bootstrap as root
from reckai.adapters.filesystem.download_tokens import DownloadTokenSigner, derive_signing_key
from reckai.adapters.filesystem.storage import FileSystemStorage, decode_data_key
from reckai.bootstrap import bootstrap_in_memory
from reckai.domain.audit.chain import AuditSigner, verify_chain
from reckai.domain.audit.events import GENESIS_HASH, AuditEvent
from reckai.entrypoints.http.app import create_app
from reckai.settings import (
    DEV_AUDIT_HMAC_KEY,
    DEV_DATA_ENCRYPTION_KEY,
    DEV_JWT_SECRET,
    DEV_SECRETS,
    LOCAL_SECRETS_FILE,
    Settings,
    SettingsError,
)
from tests.support.identity import bearer, login_tokens, onboard


def make_run_settings(var_dir: Path, **extra: str) -> Settings:
    """`make run`'s configuration: embedded mode, nothing secret in the environment."""
    return Settings.from_env({"RECKAI_MODE": "embedded", "RECKAI_VAR_DIR": str(var_dir), **extra})


def _forge(real_token: str, secret: str, kid: str) -> str:
    """The same claims as a real token (same user, session, version), signed with `secret`."""
    claims = jwt.decode(real_token, options={"verify_signature": False})
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid})


def _admin_token(client: TestClient[Any]) -> str:
    _, admin = onboard(client)
    return str(login_tokens(client, admin.org_code, admin.email, admin.password)["tokens"]["access_token"])


def test_a_token_forged_with_the_published_secret_gets_401_from_make_runs_configuration(tmp_path: Path) -> None:
    settings = make_run_settings(tmp_path / "var")
    with TestClient(create_app(bootstrap_in_memory(settings)), raise_server_exceptions=False) as client:
        token = _admin_token(client)
        assert client.get("/api/users", headers=bearer(token)).status_code == 200
        kid = jwt.get_unverified_header(token)["kid"]
        for forged in (_forge(token, DEV_JWT_SECRET, "dev-1"), _forge(token, DEV_JWT_SECRET, kid)):
            refused = client.get("/api/users", headers=bearer(forged))
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["code"] == "UNAUTHENTICATED"
        # the forgery itself is right: signed with the instance's own key it passes
        assert client.get("/api/users", headers=bearer(_forge(token, settings.security.jwt_secret, kid))).status_code == 200


def test_settings_built_in_code_keep_the_development_values_and_accept_such_a_token() -> None:
    """The counterpart: what a forger could do before (and what tests still rely on)."""
    settings = Settings()
    assert settings.security.jwt_secret == DEV_JWT_SECRET
    with TestClient(create_app(bootstrap_in_memory(settings)), raise_server_exceptions=False) as client:
        token = _admin_token(client)
        assert client.get("/api/users", headers=bearer(_forge(token, DEV_JWT_SECRET, "dev-1"))).status_code == 200


def test_embedded_secrets_are_random_private_and_reused(tmp_path: Path) -> None:
    var = tmp_path / "var"
    first = make_run_settings(var)
    security = first.security
    assert {security.jwt_secret, security.audit_hmac_key, security.data_encryption_key}.isdisjoint(DEV_SECRETS)
    assert len(security.jwt_secret) >= 32 and len(security.audit_hmac_key) >= 32
    assert len(base64.b64decode(security.data_encryption_key)) == 32
    assert "dev-1" not in (security.jwt_key_id, security.audit_hmac_key_id, security.data_encryption_key_id)
    assert security.jwt_retired_keys == security.audit_hmac_retired_keys == security.data_encryption_retired_keys == ()
    path = var / LOCAL_SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert make_run_settings(var).security == security  # reused, not regenerated
    assert make_run_settings(tmp_path / "other").security.jwt_secret != security.jwt_secret
    # paths follow the var directory
    assert first.database.embedded_data_dir == var / "pgdata" and first.storage.filesystem_root == var / "storage"
    assert first.mailer.outbox_dir == var / "mail"
    # download links: signed with a key derived from the instance's data key, not the published one
    storage, _ = root.build_storage(first)
    link = storage.download_url("org/file.csv", download_name="f.csv")
    forged = DownloadTokenSigner(derive_signing_key(decode_data_key(DEV_DATA_ENCRYPTION_KEY)), "http://x")
    assert link.split("/")[-1] != forged.token("org/file.csv", expires_in=dt.timedelta(minutes=5),
                                                download_name="f.csv")
    with pytest.raises(Exception, match="signature"):
        storage.verify_download_token(forged.token("org/file.csv", expires_in=dt.timedelta(minutes=5),
                                                   download_name="f.csv"))


def test_secrets_given_by_the_environment_win_and_no_file_is_needed(tmp_path: Path) -> None:
    given = {"JWT_SECRET": "j" * 40, "AUDIT_HMAC_KEY": "a" * 40,
             "DATA_ENCRYPTION_KEY": base64.b64encode(b"k" * 32).decode(), "JWT_KEY_ID": "ops-7"}
    settings = make_run_settings(tmp_path / "var", **given)
    assert (settings.security.jwt_secret, settings.security.jwt_key_id) == ("j" * 40, "ops-7")
    assert settings.security.audit_hmac_key == "a" * 40
    assert not (tmp_path / "var" / LOCAL_SECRETS_FILE).exists()


def _sealed_with_development_key(organization_id: uuid.UUID) -> Any:
    event = AuditEvent(action="auth.login.succeeded", organization_id=organization_id)
    return AuditSigner("dev-1", DEV_AUDIT_HMAC_KEY).seal(event, record_id=uuid.uuid4(), sequence_number=1,
                                                         previous_hash=GENESIS_HASH,
                                                         created_at=dt.datetime.now(dt.UTC))


def test_an_existing_var_keeps_its_audit_rows_and_stored_objects_under_retired_development_keys(
        tmp_path: Path) -> None:
    var = tmp_path / "var"
    # a var/ written before this change: the embedded PostgreSQL data and objects under dev-1
    (var / "pgdata").mkdir(parents=True)
    (var / "pgdata" / "PG_VERSION").write_text("16\n")
    old_storage = FileSystemStorage(var / "storage", keys={"dev-1": decode_data_key(DEV_DATA_ENCRYPTION_KEY)},
                                    current_key_id="dev-1", public_base_url="http://x")
    old_storage.put("org/old.csv", io.BytesIO(b"amount\n100\n"))
    organization_id = uuid.uuid4()
    old_record = _sealed_with_development_key(organization_id)

    settings = make_run_settings(var)
    security = settings.security
    assert json.loads((var / LOCAL_SECRETS_FILE).read_text())["retire_development_keys"] is True
    assert security.audit_hmac_retired_keys == (("dev-1", DEV_AUDIT_HMAC_KEY),)
    assert security.data_encryption_retired_keys == (("dev-1", DEV_DATA_ENCRYPTION_KEY),)
    assert security.jwt_retired_keys == ()  # a development JWT key kept would keep forged tokens valid
    assert security.audit_hmac_key_id != "dev-1" and security.data_encryption_key_id != "dev-1"

    # audit: old rows verify, new rows are sealed with the new key only
    container = bootstrap_in_memory(settings)
    signer = container.audit_signer
    assert verify_chain(signer, old_record.chain_key, [old_record]).ok
    new_record = signer.seal(AuditEvent(action="auth.login.succeeded", organization_id=organization_id),
                             record_id=uuid.uuid4(), sequence_number=2, previous_hash=old_record.hash,
                             created_at=dt.datetime.now(dt.UTC))
    assert new_record.key_id == security.audit_hmac_key_id
    assert verify_chain(signer, old_record.chain_key, [old_record, new_record]).ok
    assert not verify_chain(AuditSigner("dev-1", DEV_AUDIT_HMAC_KEY), old_record.chain_key,
                            [old_record, new_record]).ok

    # storage: old objects still open, new objects are encrypted under the new key id
    storage, _ = root.build_storage(settings)
    assert storage.open("org/old.csv").read() == b"amount\n100\n"
    storage.put("org/new.csv", io.BytesIO(b"amount\n200\n"))
    header = (var / "storage").rglob("new.csv*").__next__().read_bytes()[:80]
    assert security.data_encryption_key_id.encode() in header and b"dev-1" not in header
    with pytest.raises(Exception):  # noqa: B017 - the old key alone cannot read what is new
        old_storage.open("org/new.csv").read()

    # the rule is taken once, at the file's creation, and kept
    assert make_run_settings(var).security == security


def test_a_fresh_var_retires_nothing(tmp_path: Path) -> None:
    (tmp_path / "var" / "pgdata").mkdir(parents=True)  # an empty directory holds no data
    settings = make_run_settings(tmp_path / "var")
    assert settings.security.audit_hmac_retired_keys == settings.security.data_encryption_retired_keys == ()


def test_production_refuses_development_values_and_writes_no_secrets_file(tmp_path: Path) -> None:
    base = {"RECKAI_MODE": "production", "RECKAI_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": "postgresql://app@db/r", "MIGRATION_DATABASE_URL": "postgresql://owner@db/r",
            "REDIS_URL": "redis://r:6379/0", "STORAGE_BACKEND": "s3", "S3_ENDPOINT": "s3:9000",
            "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "s", "SCANNER_ALLOW_DISABLED": "true",
            "AUDIT_ANCHOR_BUCKET": "reckai-audit-anchors",
            "JWT_SECRET": "j" * 40, "AUDIT_HMAC_KEY": "a" * 40,
            "DATA_ENCRYPTION_KEY": base64.b64encode(b"k" * 32).decode()}
    assert Settings.from_env(base).security.jwt_secret == "j" * 40
    with pytest.raises(SettingsError, match="JWT_SECRET is the development default"):
        Settings.from_env({k: v for k, v in base.items() if k != "JWT_SECRET"})
    with pytest.raises(SettingsError, match="AUDIT_HMAC_RETIRED_KEYS holds a development default"):
        Settings.from_env({**base, "AUDIT_HMAC_RETIRED_KEYS": f"dev-1={DEV_AUDIT_HMAC_KEY}"})
    assert not (tmp_path / "var").exists()


def test_an_unreadable_secrets_file_is_a_settings_error(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / LOCAL_SECRETS_FILE).write_text("{not json")
    with pytest.raises(SettingsError, match="secrets file"):
        make_run_settings(tmp_path / "var")
