"""Settings: one frozen structure per concern, read from the environment once.

`Settings.from_env()` is called by the entrypoints, never at import. Development defaults are
marked `DEV_` and `Settings.validate()` refuses them when `RECKAI_MODE=production`.

The `DEV_` secrets are public (they are in this file), so only settings built in code (tests:
`Settings()`) use them. In embedded mode (`make run`) `Settings.from_env` takes each secret the
environment does not give from `<RECKAI_VAR_DIR>/secrets.json` (mode 0600), generated at random on
the first start and reused afterwards (`local_secrets`). docs/identity.md, "Secrets of an embedded
instance", has the rule for a `var/` written before that file existed.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from reckai.application.reconciliations.policy import ReconciliationSettings
from reckai.domain.settings_registry import OperatorValues, SettingInvalid, operator_values


class Mode(str, Enum):
    EMBEDDED = "embedded"
    PRODUCTION = "production"


class SettingsError(ValueError):
    """The configuration cannot run in the requested mode; the message says what to set."""


# Development-only secrets. They are public (they are in this file), so production refuses them.
DEV_JWT_SECRET = "dev-only-jwt-secret-do-not-use-in-production-0000000000000000"
DEV_AUDIT_HMAC_KEY = "dev-only-audit-hmac-key-do-not-use-in-production-000000000000"
DEV_DATA_ENCRYPTION_KEY = "ZGV2LW9ubHktMzItYnl0ZS1rZXktZG8tbm90LXVzZSE="  # base64 of 32 bytes
DEV_SECRETS = frozenset({DEV_JWT_SECRET, DEV_AUDIT_HMAC_KEY, DEV_DATA_ENCRYPTION_KEY})
DEV_KEY_ID = "dev-1"
LOCAL_SECRETS_FILE = "secrets.json"


@dataclass(frozen=True)
class DatabaseSettings:
    # Runtime URL: the app role (not superuser, NOBYPASSRLS, owns no table). None in embedded mode,
    # where bootstrap starts pgserver under `embedded_data_dir` and derives both URLs.
    url: str | None = None
    # Migration URL: the owner role that owns the tables.
    migration_url: str | None = None
    embedded_data_dir: Path = Path("var/pgdata")
    pool_size: int = 10
    max_overflow: int = 5
    slow_query_seconds: float = 1.0


@dataclass(frozen=True)
class RedisSettings:
    url: str | None = None  # None: in-memory stores and an in-process worker (embedded mode only)


@dataclass(frozen=True)
class StorageSettings:
    backend: str = "filesystem"  # filesystem | s3
    filesystem_root: Path = Path("var/storage")
    s3_endpoint: str | None = None  # host:port
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "reckai"
    s3_region: str = "us-east-1"
    s3_secure: bool = True


@dataclass(frozen=True)
class SecuritySettings:
    jwt_secret: str = DEV_JWT_SECRET
    jwt_key_id: str = "dev-1"
    audit_hmac_key: str = DEV_AUDIT_HMAC_KEY
    audit_hmac_key_id: str = "dev-1"
    data_encryption_key: str = DEV_DATA_ENCRYPTION_KEY  # base64, 32 bytes: AES-256-GCM
    data_encryption_key_id: str = "dev-1"
    # Keys kept only to verify/decrypt during rotation: ((key id, secret), ...). Env
    # JWT_RETIRED_KEYS / AUDIT_HMAC_RETIRED_KEYS / DATA_ENCRYPTION_RETIRED_KEYS as "kid=secret,kid=secret".
    # A retired key never signs, seals or encrypts anything new.
    jwt_retired_keys: tuple[tuple[str, str], ...] = ()
    audit_hmac_retired_keys: tuple[tuple[str, str], ...] = ()
    data_encryption_retired_keys: tuple[tuple[str, str], ...] = ()
    password_hasher: str = "bcrypt"  # bcrypt | argon2id
    # POST /api/organizations. From the environment: off by default in production, on in embedded
    # mode (ALLOW_PUBLIC_SIGNUP overrides either way); a sign-up always lands on the standard tier.
    allow_public_signup: bool = True


@dataclass(frozen=True)
class ScannerSettings:
    enabled: bool = False
    clamd_host: str | None = None
    clamd_port: int = 3310
    clamd_socket: str | None = None
    allow_disabled_in_production: bool = False


@dataclass(frozen=True)
class MailerSettings:
    backend: str = "file"  # file | smtp
    outbox_dir: Path = Path("var/mail")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = False  # when true, STARTTLS is required (never a plain-text fallback)
    smtp_username: str | None = None
    smtp_password: str | None = None
    sender: str = "no-reply@reckai.local"


@dataclass(frozen=True)
class JobSettings:
    # In-process worker threads per queue (embedded mode; `reckai worker` takes --threads).
    # Every queue has its own threads, so low-priority work cannot starve critical (docs/jobs.md).
    embedded_threads: tuple[tuple[str, int], ...] = (("critical", 2), ("high", 1), ("medium", 1), ("low", 1))
    relay_interval_seconds: float = 0.5
    stale_after_seconds: int = 1800  # a dispatched message with no outcome after this is re-sent
    session_cleanup_interval_seconds: int = 600
    redis_namespace: str = "reckai"  # prefix of every broker key in Redis


@dataclass(frozen=True)
class AuditSettings:
    """docs/audit.md: where the signed chain-head checkpoints go, how often, and the batching of
    access events."""

    # Production: an S3 bucket created with Object Lock (compliance mode), on the storage's S3
    # endpoint and credentials. Without one (embedded mode): an append-only local file.
    anchor_bucket: str | None = None
    # None: `audit-checkpoints.jsonl` beside the file storage root (var/ in embedded mode)
    anchor_file: Path | None = None
    anchor_retain_days: int = 7 * 366  # compliance-mode retention of each checkpoint object
    anchor_interval_seconds: int = 45  # at most 60: a checkpoint at least every minute
    # Access events (reads of sensitive data): buffered, one INSERT per organization per batch.
    access_flush_seconds: float = 1.0
    access_batch_size: int = 100


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    allowed_origins: tuple[str, ...] = ()
    public_base_url: str = "http://127.0.0.1:8000"
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    mode: Mode = Mode.EMBEDDED
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    scanner: ScannerSettings = field(default_factory=ScannerSettings)
    mailer: MailerSettings = field(default_factory=MailerSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    jobs: JobSettings = field(default_factory=JobSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    reconciliation: ReconciliationSettings = field(default_factory=ReconciliationSettings)
    log_level: str = "INFO"
    # The operator's values of the registered settings (rate limits, ...) and the bounds an
    # organization's override must lie within: domain/settings_registry.py.
    operator: OperatorValues = field(default_factory=OperatorValues)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        mode_text = env.get("RECKAI_MODE", Mode.EMBEDDED.value)
        try:
            mode = Mode(mode_text)
        except ValueError:
            raise SettingsError(f"RECKAI_MODE must be 'embedded' or 'production', not {mode_text!r}") from None
        var_dir = Path(env.get("RECKAI_VAR_DIR", "var"))
        embedded_data_dir = Path(env.get("RECKAI_EMBEDDED_PGDATA", str(var_dir / "pgdata")))
        storage_root = Path(env.get("STORAGE_ROOT", str(var_dir / "storage")))
        local = (local_secrets(var_dir, written_before=(embedded_data_dir, storage_root))
                 if mode is Mode.EMBEDDED and not all(env.get(name) for name in _SECRET_NAMES) else None)
        jwt_secret, jwt_key_id = _secret(env, local, "JWT_SECRET", "jwt")
        audit_key, audit_key_id = _secret(env, local, "AUDIT_HMAC_KEY", "audit_hmac")
        data_key, data_key_id = _secret(env, local, "DATA_ENCRYPTION_KEY", "data_encryption")
        audit_retired = _key_list(env.get("AUDIT_HMAC_RETIRED_KEYS", ""), "AUDIT_HMAC_RETIRED_KEYS")
        data_retired = _key_list(env.get("DATA_ENCRYPTION_RETIRED_KEYS", ""), "DATA_ENCRYPTION_RETIRED_KEYS")
        if local is not None and local.retire_development_keys:
            # Audit rows and stored objects written under the development keys stay verifiable and
            # readable; the development JWT key is not kept (its tokens would be forgeable).
            if not env.get("AUDIT_HMAC_KEY"):
                audit_retired += ((DEV_KEY_ID, DEV_AUDIT_HMAC_KEY),)
            if not env.get("DATA_ENCRYPTION_KEY"):
                data_retired += ((DEV_KEY_ID, DEV_DATA_ENCRYPTION_KEY),)
        settings = cls(
            mode=mode,
            database=DatabaseSettings(
                url=env.get("DATABASE_URL") or None,
                migration_url=env.get("MIGRATION_DATABASE_URL") or None,
                embedded_data_dir=embedded_data_dir,
                pool_size=int(env.get("DATABASE_POOL_SIZE", "10")),
                slow_query_seconds=float(env.get("SLOW_QUERY_SECONDS", "1.0")),
            ),
            redis=RedisSettings(url=env.get("REDIS_URL") or None),
            storage=StorageSettings(
                backend=env.get("STORAGE_BACKEND", "s3" if env.get("S3_ENDPOINT") else "filesystem"),
                filesystem_root=storage_root,
                s3_endpoint=env.get("S3_ENDPOINT") or None,
                s3_access_key=env.get("S3_ACCESS_KEY") or None,
                s3_secret_key=env.get("S3_SECRET_KEY") or None,
                s3_bucket=env.get("S3_BUCKET", "reckai"),
                s3_region=env.get("S3_REGION", "us-east-1"),
                s3_secure=_flag(env.get("S3_SECURE", "true")),
            ),
            security=SecuritySettings(
                jwt_secret=jwt_secret,
                jwt_key_id=jwt_key_id,
                audit_hmac_key=audit_key,
                audit_hmac_key_id=audit_key_id,
                data_encryption_key=data_key,
                data_encryption_key_id=data_key_id,
                jwt_retired_keys=_key_list(env.get("JWT_RETIRED_KEYS", ""), "JWT_RETIRED_KEYS"),
                audit_hmac_retired_keys=audit_retired,
                data_encryption_retired_keys=data_retired,
                password_hasher=env.get("PASSWORD_HASHER", "bcrypt"),
                allow_public_signup=_flag(env.get("ALLOW_PUBLIC_SIGNUP",
                                                  "false" if mode is Mode.PRODUCTION else "true")),
            ),
            scanner=ScannerSettings(
                enabled=_flag(env.get("SCANNER_ENABLED", "false")),
                clamd_host=env.get("CLAMD_HOST") or None,
                clamd_port=int(env.get("CLAMD_PORT", "3310")),
                clamd_socket=env.get("CLAMD_SOCKET") or None,
                allow_disabled_in_production=_flag(env.get("SCANNER_ALLOW_DISABLED", "false")),
            ),
            mailer=MailerSettings(
                backend=env.get("MAILER_BACKEND", "file"),
                outbox_dir=Path(env.get("MAIL_OUTBOX_DIR", str(var_dir / "mail"))),
                smtp_host=env.get("SMTP_HOST", "127.0.0.1"),
                smtp_port=int(env.get("SMTP_PORT", "25")),
                smtp_starttls=_flag(env.get("SMTP_STARTTLS", "false")),
                smtp_username=env.get("SMTP_USERNAME") or None,
                smtp_password=env.get("SMTP_PASSWORD") or None,
                sender=env.get("MAIL_SENDER", "no-reply@reckai.local"),
            ),
            http=HttpSettings(
                host=env.get("HOST", "127.0.0.1"),
                port=int(env.get("PORT", "8000")),
                allowed_origins=tuple(o.strip() for o in env.get("ALLOWED_ORIGINS", "").split(",") if o.strip()),
                public_base_url=env.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
                trusted_proxies=tuple(p.strip() for p in env.get("TRUSTED_PROXIES", "").split(",") if p.strip()),
            ),
            jobs=JobSettings(
                embedded_threads=_queue_threads(env.get("JOBS_EMBEDDED_THREADS", "critical=2,high=1,medium=1,low=1")),
                relay_interval_seconds=float(env.get("JOBS_RELAY_INTERVAL_SECONDS", "0.5")),
                stale_after_seconds=int(env.get("JOBS_STALE_AFTER_SECONDS", "1800")),
                session_cleanup_interval_seconds=int(env.get("SESSION_CLEANUP_INTERVAL_SECONDS", "600")),
                redis_namespace=env.get("JOBS_REDIS_NAMESPACE", "reckai"),
            ),
            audit=AuditSettings(
                anchor_bucket=env.get("AUDIT_ANCHOR_BUCKET") or None,
                anchor_file=Path(env.get("AUDIT_ANCHOR_FILE", str(var_dir / "audit-checkpoints.jsonl"))),
                anchor_retain_days=_positive(env.get("AUDIT_ANCHOR_RETAIN_DAYS", str(7 * 366)),
                                             "AUDIT_ANCHOR_RETAIN_DAYS"),
                anchor_interval_seconds=_positive(env.get("AUDIT_ANCHOR_INTERVAL_SECONDS", "45"),
                                                  "AUDIT_ANCHOR_INTERVAL_SECONDS"),
                access_flush_seconds=float(env.get("AUDIT_ACCESS_FLUSH_SECONDS", "1.0")),
                access_batch_size=_positive(env.get("AUDIT_ACCESS_BATCH_SIZE", "100"), "AUDIT_ACCESS_BATCH_SIZE"),
            ),
            reconciliation=ReconciliationSettings(
                lease_seconds=int(env.get("RECONCILIATION_LEASE_SECONDS", "60")),
                heartbeat_seconds=float(env.get("RECONCILIATION_HEARTBEAT_SECONDS", "2")),
                max_attempts=int(env.get("RECONCILIATION_MAX_ATTEMPTS", "3")),
                sweep_interval_seconds=int(env.get("RECONCILIATION_SWEEP_INTERVAL_SECONDS", "30")),
                pending_resend_seconds=int(env.get("RECONCILIATION_PENDING_RESEND_SECONDS", "900")),
            ),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            operator=_operator_values(env),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse a configuration that would silently run production on development parts."""
        if not 1 <= self.audit.anchor_interval_seconds <= 60:
            raise SettingsError("AUDIT_ANCHOR_INTERVAL_SECONDS must be between 1 and 60 (a checkpoint every minute)")
        if not 0 < self.audit.access_flush_seconds <= 1:
            raise SettingsError("AUDIT_ACCESS_FLUSH_SECONDS must be more than 0 and at most 1")
        if self.mode is not Mode.PRODUCTION:
            return
        missing = []
        if not self.database.url:
            missing.append("DATABASE_URL (the app role)")
        if not self.database.migration_url:
            missing.append("MIGRATION_DATABASE_URL (the owner role)")
        if not self.redis.url:
            missing.append("REDIS_URL")
        if self.storage.backend != "s3":
            missing.append("STORAGE_BACKEND=s3")
        if not (self.storage.s3_endpoint and self.storage.s3_access_key and self.storage.s3_secret_key):
            missing.append("S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY")
        if not self.audit.anchor_bucket:
            missing.append("AUDIT_ANCHOR_BUCKET (an S3 bucket with Object Lock, compliance mode)")
        if missing:
            raise SettingsError("production mode requires " + ", ".join(missing))
        security = self.security
        for name, value in (
            ("JWT_SECRET", security.jwt_secret),
            ("AUDIT_HMAC_KEY", security.audit_hmac_key),
            ("DATA_ENCRYPTION_KEY", security.data_encryption_key),
        ):
            if value in DEV_SECRETS:
                raise SettingsError(f"{name} is the development default; production refuses it")
            if len(value) < 32:
                raise SettingsError(f"{name} must be at least 32 characters")
        for name, retired in (("JWT_RETIRED_KEYS", security.jwt_retired_keys),
                              ("AUDIT_HMAC_RETIRED_KEYS", security.audit_hmac_retired_keys),
                              ("DATA_ENCRYPTION_RETIRED_KEYS", security.data_encryption_retired_keys)):
            if any(secret in DEV_SECRETS for _, secret in retired):
                raise SettingsError(f"{name} holds a development default; production refuses it")
        if not self.scanner.enabled and not self.scanner.allow_disabled_in_production:
            raise SettingsError(
                "virus scanning is off; set SCANNER_ENABLED=true with CLAMD_HOST/CLAMD_SOCKET, "
                "or SCANNER_ALLOW_DISABLED=true to accept the risk explicitly"
            )


def _queue_threads(text: str) -> tuple[tuple[str, int], ...]:
    """`critical=2,high=1` -> (("critical", 2), ("high", 1)); SettingsError on anything else."""
    pairs = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, count = part.partition("=")
        if not sep or name.strip() not in {"critical", "high", "medium", "low"} or not count.strip().isdigit():
            raise SettingsError(f"JOBS_EMBEDDED_THREADS must look like 'critical=2,high=1,medium=1,low=1', not {text!r}")
        pairs.append((name.strip(), int(count)))
    return tuple(pairs)


def _operator_values(env: Mapping[str, str]) -> OperatorValues:
    try:
        return operator_values(env)
    except SettingInvalid as exc:
        raise SettingsError(f"{exc.name} {exc.message}") from None


def _positive(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise SettingsError(f"{name} must be a whole number of at least 1, not {text!r}")
    return value


def _flag(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


def _key_list(text: str, name: str) -> tuple[tuple[str, str], ...]:
    """ "kid=secret,kid=secret" -> ((kid, secret), ...); base64 secrets may contain '='."""
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        kid, sep, secret = item.partition("=")
        if not sep or not kid.strip() or not secret:
            raise SettingsError(f"{name} entries must look like key_id=secret")
        pairs.append((kid.strip(), secret))
    return tuple(pairs)


# --- secrets of an embedded instance ------------------------------------------------------------

_SECRET_NAMES = ("JWT_SECRET", "AUDIT_HMAC_KEY", "DATA_ENCRYPTION_KEY")


@dataclass(frozen=True)
class LocalSecrets:
    """What `<var>/secrets.json` holds: one active key and its id per concern, and whether the
    development keys are retired keys of this instance (its data predates the file)."""

    keys: Mapping[str, tuple[str, str]]  # "jwt" | "audit_hmac" | "data_encryption" -> (key id, secret)
    retire_development_keys: bool


def local_secrets(var_dir: Path, *, written_before: tuple[Path, ...] = ()) -> LocalSecrets:
    """The embedded instance's secrets: read `<var_dir>/secrets.json`, or create it (mode 0600)
    with random keys on the first start.

    The file is created only once, atomically (a temporary file hard-linked into place), so an API
    and a worker started together agree on one set of keys. When it is created and one of
    `written_before` (the embedded PostgreSQL data directory, the file storage root) already holds
    something, that data was written under the public development keys: the file then says
    `retire_development_keys`, and the development audit and data keys are kept as retired keys
    (verify and decrypt only) for as long as the file says so."""
    path = var_dir / LOCAL_SECRETS_FILE
    if not path.exists():
        existing = any(_non_empty(directory) for directory in written_before)
        suffix = secrets.token_hex(4)
        document = {
            "note": "ReckAI embedded-mode secrets; keep private, never commit (docs/identity.md)",
            "jwt": {"key_id": f"local-{suffix}", "secret": secrets.token_urlsafe(48)},
            "audit_hmac": {"key_id": f"local-{suffix}", "secret": secrets.token_urlsafe(48)},
            "data_encryption": {"key_id": f"local-{suffix}",
                                "secret": base64.b64encode(secrets.token_bytes(32)).decode("ascii")},
            "retire_development_keys": existing,
        }
        var_dir.mkdir(parents=True, exist_ok=True)
        temporary = var_dir / f".{LOCAL_SECRETS_FILE}.{os.getpid()}.{suffix}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)  # fails if another process created it first: theirs wins
            except FileExistsError:
                pass
        finally:
            temporary.unlink(missing_ok=True)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        keys = {name: (str(document[name]["key_id"]), str(document[name]["secret"]))
                for name in ("jwt", "audit_hmac", "data_encryption")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SettingsError(f"{path} is not a readable secrets file ({type(exc).__name__}); "
                            "restore it, or set JWT_SECRET, AUDIT_HMAC_KEY and DATA_ENCRYPTION_KEY") from None
    return LocalSecrets(keys=keys, retire_development_keys=bool(document.get("retire_development_keys")))


def _non_empty(directory: Path) -> bool:
    try:
        return directory.is_dir() and any(directory.iterdir())
    except OSError:
        return False


def _secret(env: Mapping[str, str], local: LocalSecrets | None, name: str, concern: str) -> tuple[str, str]:
    """(secret, key id) for one concern: the environment's, else the local file's (embedded mode),
    else the development default (production refuses it in `validate`)."""
    id_name = {"JWT_SECRET": "JWT_KEY_ID", "AUDIT_HMAC_KEY": "AUDIT_HMAC_KEY_ID",
               "DATA_ENCRYPTION_KEY": "DATA_ENCRYPTION_KEY_ID"}[name]
    given = env.get(name)
    if given:
        return given, env.get(id_name, DEV_KEY_ID)
    if local is not None:
        key_id, secret = local.keys[concern]
        return secret, key_id
    default = {"JWT_SECRET": DEV_JWT_SECRET, "AUDIT_HMAC_KEY": DEV_AUDIT_HMAC_KEY,
               "DATA_ENCRYPTION_KEY": DEV_DATA_ENCRYPTION_KEY}[name]
    return default, env.get(id_name, DEV_KEY_ID)
