"""The one composition root.

`bootstrap(settings)` builds engines, clients and pools inside a function (never at import time),
picks adapters from the settings and returns a typed, frozen `Container`. `bootstrap_in_memory()`
builds the same container from the in-memory adapters for domain and use-case tests. Both take
replacements by keyword (`bootstrap_in_memory(clock=test_clock, scanner=InMemoryScanner())`),
the way cosmicpython's `bootstrap` injects dependencies; nothing reaches into a built container.

Reading order: the ports the container holds, then one section per concern (database, storage,
audit, identity, jobs, files, workflow, reconciliations), then the feature service bundles and
the registries the features plug into (job handlers, approval effects). docs/architecture.md
shows where a new feature adds its line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, TypedDict, Unpack

from reckai.adapters.clock import utc_now
from reckai.adapters.dramatiq.runner import (
    SCHEDULER_TICK_SECONDS,
    JobWorkerRunner,
    build_runtime,
    parse_queue_threads,
)
from reckai.adapters.dramatiq.runtime import DramatiqJobRuntime
from reckai.adapters.security.subject_cipher import AesGcmSubjectCipher
from reckai.adapters.spreadsheets.tables import CsvTableWriter, XlsxTableWriter
from reckai.application import job_types, maintenance
from reckai.application import retention as retention_cases
from reckai.application.access import AccessRecorder, BatchingAccessRecorder
from reckai.application.approvals import jobs as approval_jobs
from reckai.application.approvals.common import WorkflowServices
from reckai.application.audit import anchor_chain_heads_job
from reckai.application.audit_personal import PersonalData, PersonalDataAuditLog
from reckai.application.audit_trail import AuditTrailServices
from reckai.application.exceptions import exceptions as exception_cases
from reckai.application.files import sweeper
from reckai.application.files.mapping import normalize_file_job
from reckai.application.files.services import FileServices
from reckai.application.identity import email_verification
from reckai.application.identity import passwords as password_cases
from reckai.application.identity.common import IdentityServices
from reckai.application.identity.onboarding import user_onboarding_handler
from reckai.application.job_handlers import JobHandlers
from reckai.application.ports.audit import AuditAnchorStore, AuditLog
from reckai.application.ports.clock import Clock
from reckai.application.ports.dashboard import DashboardUnitOfWork
from reckai.application.ports.exports import TableWriters
from reckai.application.ports.files import FileParser
from reckai.application.ports.health import HealthReport
from reckai.application.ports.jobs import JobQueue, OutboxRelayStore, Queue
from reckai.application.ports.mail import Mailer
from reckai.application.ports.personal_data import KeyRotationUnitOfWork
from reckai.application.ports.privacy import PrivacyUnitOfWork
from reckai.application.ports.rate_limit import RateLimiter, RateLimits
from reckai.application.ports.reconciliations import JobMatchingEngine, RowFinder
from reckai.application.ports.reports import ReportRenderers
from reckai.application.ports.retention import RetentionUnitOfWork
from reckai.application.ports.scanner import VirusScanner
from reckai.application.ports.security import (
    CommonPasswordChecker,
    PasswordHasher,
    SecretBox,
    TokenBlacklist,
    TokenService,
    Totp,
)
from reckai.application.ports.storage import FileStorage
from reckai.application.ports.stream_schedules import CronCalendar
from reckai.application.ports.streams import StreamEngine
from reckai.application.ports.unit_of_work import Database
from reckai.application.ports.workflow import RowAmounts, SourceRows
from reckai.application.privacy import expiry as privacy_expiry
from reckai.application.privacy import generation as privacy_generation
from reckai.application.privacy.erasure import data_erasure_handler
from reckai.application.privacy.exports import data_export_handler
from reckai.application.privacy.services import GENERATE_DATA_EXPORT, PrivacyServices
from reckai.application.privacy.services import GENERATE_TIME_LIMIT_SECONDS as PRIVACY_TIME_LIMIT_SECONDS
from reckai.application.reconciliations import jobs as reconciliation_jobs
from reckai.application.reconciliations.job_types import (
    NOTIFY_RECONCILIATION,
    RUN_RECONCILIATION,
    SWEEP_RECONCILIATIONS,
)
from reckai.application.reconciliations.services import ReconciliationServices
from reckai.application.reports import expiry as report_expiry
from reckai.application.reports import generation as report_generation
from reckai.application.reports.approvals import report_generation_handler
from reckai.application.reports.services import (
    EXPIRE_PERIOD_SECONDS,
    EXPIRE_REPORTS,
    EXPIRE_TIME_LIMIT_SECONDS,
    GENERATE_REPORT,
    GENERATE_TIME_LIMIT_SECONDS,
    ReportServices,
)
from reckai.application.retention import RetentionServices
from reckai.application.rules.preview import JobRulePreview
from reckai.application.rules.rules import rule_configuration_handler
from reckai.application.settings_changes import system_setting_handler
from reckai.application.streams import periods as stream_periods
from reckai.application.streams import schedules as stream_schedules
from reckai.domain.approvals.workflow import ApprovalType
from reckai.domain.audit.chain import AuditSigner
from reckai.domain.settings_registry import OperatorValues
from reckai.settings import Mode, Settings


class AppUnitOfWork(PrivacyUnitOfWork, DashboardUnitOfWork, RetentionUnitOfWork, Protocol):
    """The unit of work of this application: every feature's repositories (each adapter's unit of
    work carries them all). Use cases ask for a narrower protocol; entrypoints get this one."""


HealthChecks = Mapping[str, Callable[[], HealthReport]]


@dataclass(frozen=True)
class Container:
    settings: Settings
    # --- infrastructure ports ---
    database: Database[AppUnitOfWork]
    storage: FileStorage
    scanner: VirusScanner
    audit_signer: AuditSigner
    audit_log: AuditLog
    audit_anchors: AuditAnchorStore
    # reads of sensitive data, batched into the audit log off the request path (docs/audit.md)
    access_recorder: AccessRecorder
    clock: Clock
    password_hasher: PasswordHasher
    common_password_checker: CommonPasswordChecker
    token_service: TokenService
    token_blacklist: TokenBlacklist
    secret_box: SecretBox
    totp: Totp
    rate_limiter: RateLimiter
    mailer: Mailer
    file_parser: FileParser
    job_matching_engine: JobMatchingEngine
    source_rows: SourceRows
    # --- background jobs ---
    job_queue: JobQueue
    job_outbox: OutboxRelayStore
    job_handlers: JobHandlers
    job_runtime: DramatiqJobRuntime
    worker_runner: JobWorkerRunner
    # --- feature service bundles, built once here ---
    identity: IdentityServices
    files: FileServices
    reconciliations: ReconciliationServices
    workflow: WorkflowServices
    audit_trail: AuditTrailServices
    reports: ReportServices
    retention: RetentionServices
    privacy: PrivacyServices  # data exports (issue 17 item 6)
    # name -> zero-argument check: "db", "storage", "queue" (/health/*)
    health_checks: HealthChecks
    # CSV and Excel writers of exports and reports (adapters/spreadsheets)
    table_writers: TableWriters = field(default_factory=lambda: TableWriters(csv=CsvTableWriter(),
                                                                             excel=XlsxTableWriter()))
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()


class Overrides(TypedDict, total=False):
    """What a caller (a test, mostly) may replace when bootstrapping; anything not given is built
    from the settings."""

    database: Database[AppUnitOfWork]
    storage: FileStorage
    scanner: VirusScanner
    clock: Clock
    password_hasher: PasswordHasher
    token_service: TokenService
    token_blacklist: TokenBlacklist
    rate_limiter: RateLimiter
    mailer: Mailer
    file_parser: FileParser
    job_matching_engine: JobMatchingEngine


def bootstrap(settings: Settings, **overrides: Unpack[Overrides]) -> Container:
    """The production and embedded container: PostgreSQL, S3 or the filesystem, Redis when
    configured, clamd when enabled, SMTP or the file mailer."""
    settings.validate()
    closers: list[Callable[[], None]] = []
    try:
        return _assemble(settings, _Parts(closers, in_memory=False), overrides)
    except BaseException:
        while closers:
            with contextlib.suppress(Exception):
                closers.pop()()
        raise


def bootstrap_in_memory(settings: Settings | None = None, **overrides: Unpack[Overrides]) -> Container:
    """The same container on the in-memory adapters (use-case and HTTP tests)."""
    settings = settings or Settings(mode=Mode.EMBEDDED)
    return _assemble(settings, _Parts([], in_memory=True), overrides)


@dataclass
class _Parts:
    closers: list[Callable[[], None]]
    in_memory: bool
    health: dict[str, Callable[[], HealthReport]] = field(default_factory=dict)


def _assemble(settings: Settings, parts: _Parts, overrides: Overrides) -> Container:
    clock = overrides.get("clock") or utc_now
    database = overrides.get("database") or _database(settings, parts)
    storage = overrides.get("storage") or _storage(settings, parts)
    scanner = overrides.get("scanner") or _scanner(settings, parts)
    parts.health["storage"] = lambda: storage_health(storage, scanner)
    signer = AuditSigner(settings.security.audit_hmac_key_id, settings.security.audit_hmac_key,
                         previous_keys=dict(settings.security.audit_hmac_retired_keys))
    security = _security(settings, parts, overrides)
    personal_data = PersonalData(database, AesGcmSubjectCipher(security.secret_box), clock)
    # Personal values in audit metadata are sealed under their subject's key (docs/privacy.md, "Erasure").
    audit_log: AuditLog = PersonalDataAuditLog(_audit_log(database, signer, parts), personal_data)
    audit_anchors = _audit_anchors(settings, parts)
    access_recorder = BatchingAccessRecorder(audit_log, batch_size=settings.audit.access_batch_size,
                                             flush_seconds=settings.audit.access_flush_seconds)
    parts.closers.append(access_recorder.close)  # closed before the database: the last batch is written
    rate_limiter, token_blacklist = _rate_limit_and_blacklist(settings, parts)
    rate_limiter = overrides.get("rate_limiter") or rate_limiter
    token_blacklist = overrides.get("token_blacklist") or token_blacklist
    mailer = overrides.get("mailer") or _mailer(settings, parts)
    file_parser = overrides.get("file_parser") or _file_parser()
    job_matching_engine = overrides.get("job_matching_engine") or _job_matching_engine()
    source_rows = _source_rows(database, storage)

    handlers = JobHandlers()
    job_queue, job_outbox = _job_queue(database, handlers, parts)

    identity = IdentityServices(
        database=database, audit_log=audit_log, password_hasher=security.password_hasher,
        common_password_checker=security.common_password_checker, token_service=security.token_service,
        token_blacklist=token_blacklist, secret_box=security.secret_box, totp=security.totp,
        rate_limiter=rate_limiter, mailer=mailer,
        refresh_successor_key=refresh_successor_key(settings.security.jwt_secret), clock=clock, job_queue=job_queue,
        allow_public_signup=settings.security.allow_public_signup,
        public_base_url=settings.http.public_base_url,
        operator_settings=settings.operator,
    )
    files = FileServices(database=database, storage=storage, scanner=scanner, parser=file_parser,
                         audit_log=audit_log, rate_limiter=rate_limiter, clock=clock,
                         rate_limits=RateLimits(settings.operator))
    reconciliations = ReconciliationServices(
        database=database, storage=storage, audit_log=audit_log, job_queue=job_queue,
        engine=job_matching_engine, settings=settings.reconciliation,
        normalize_file=partial(normalize_file_job, files), mailer=mailer, clock=clock,
        stream_engine=_stream_engine(), row_finder=_row_finder(database, storage),
        cron_calendar=_cron_calendar())
    workflow = WorkflowServices(database=database, audit_log=audit_log, job_queue=job_queue,
                                password_hasher=security.password_hasher,
                                rule_preview=_rule_preview(storage, job_matching_engine),
                                row_amounts=_row_amounts(database, storage),
                                clock=clock)

    reports = _reports(database, storage, audit_log, job_queue, clock, signer, personal_data)
    retention = RetentionServices(database=database, storage=storage, audit_log=audit_log, clock=clock,
                                  operator_settings=settings.operator)

    privacy = _privacy(database, storage, audit_log, job_queue, clock, personal_data)
    _register_approval_types(workflow, settings.operator, reports, privacy, identity)
    _register_jobs(handlers, settings, database=database, storage=storage, mailer=mailer, files=files,
                   reconciliations=reconciliations, workflow=workflow, identity=identity, reports=reports)
    handlers.register(job_types.APPLY_RETENTION, partial(retention_cases.apply_retention_job, retention),
                      time_limit_seconds=retention_cases.TIME_LIMIT_SECONDS)
    handlers.every(job_types.APPLY_RETENTION, retention_cases.PERIOD_SECONDS)
    handlers.register(GENERATE_DATA_EXPORT, partial(privacy_generation.generate_data_export_job, privacy),
                      time_limit_seconds=PRIVACY_TIME_LIMIT_SECONDS)
    handlers.register(privacy_expiry.EXPIRE_DATA_EXPORTS, partial(privacy_expiry.expire_data_exports_job, privacy),
                      time_limit_seconds=privacy_expiry.EXPIRE_TIME_LIMIT_SECONDS)
    handlers.every(privacy_expiry.EXPIRE_DATA_EXPORTS, privacy_expiry.EXPIRE_PERIOD_SECONDS)
    handlers.register(job_types.ANCHOR_AUDIT_CHAINS,
                      partial(anchor_chain_heads_job, audit_log, signer, audit_anchors), time_limit_seconds=50)
    handlers.every(job_types.ANCHOR_AUDIT_CHAINS, settings.audit.anchor_interval_seconds)
    runtime, runner = _worker(settings, database, job_queue, job_outbox, handlers, parts)

    return Container(
        settings=settings, database=database, storage=storage, scanner=scanner, audit_signer=signer,
        audit_log=audit_log, audit_anchors=audit_anchors, access_recorder=access_recorder, clock=clock, password_hasher=security.password_hasher,
        common_password_checker=security.common_password_checker, token_service=security.token_service,
        token_blacklist=token_blacklist, secret_box=security.secret_box, totp=security.totp,
        rate_limiter=rate_limiter, mailer=mailer, file_parser=file_parser,
        job_matching_engine=job_matching_engine, source_rows=source_rows, job_queue=job_queue,
        job_outbox=job_outbox, job_handlers=handlers, job_runtime=runtime, worker_runner=runner,
        identity=identity, files=files, reconciliations=reconciliations, workflow=workflow, reports=reports,
        retention=retention, privacy=privacy,
        audit_trail=AuditTrailServices(audit_log, signer, audit_anchors, access_recorder, personal_data),
        health_checks=dict(parts.health), _closers=parts.closers,
    )


# --- single concerns, for tests of one builder (the container is always built whole) ---


def key_rotation_database(container: Container) -> Database[KeyRotationUnitOfWork] | None:
    """The container's database as `reckai keys rotate` needs it (organization data keys: PostgreSQL
    only; the in-memory adapter encrypts nothing), or None."""
    from reckai.adapters.postgres.unit_of_work import PostgresDatabase

    database = container.database
    return database if isinstance(database, PostgresDatabase) else None


def build_storage(settings: Settings) -> tuple[FileStorage, VirusScanner]:
    """The storage and the scanner `bootstrap(settings)` would build (embedded/production)."""
    parts = _Parts([], in_memory=False)
    return _storage(settings, parts), _scanner(settings, parts)


def build_security(settings: Settings) -> SecurityComponents:
    return _security(settings, _Parts([], in_memory=False), Overrides())


def build_rate_limit_and_blacklist(settings: Settings) -> tuple[RateLimiter, TokenBlacklist]:
    return _rate_limit_and_blacklist(settings, _Parts([], in_memory=False))


def build_mailer(settings: Settings) -> Mailer:
    return _mailer(settings, _Parts([], in_memory=False))


# --- database (issue 2 items 3-5; docs/schema.md, docs/tenancy.md) ---


def _database(settings: Settings, parts: _Parts) -> Database[AppUnitOfWork]:
    if parts.in_memory:
        from reckai.adapters.memory.unit_of_work import MemoryDatabase

        parts.health["db"] = lambda: HealthReport(ok=True, detail="in-memory database")
        return MemoryDatabase()
    from reckai.adapters.postgres.database import database_health, open_database

    database = open_database(settings)
    parts.closers.append(database.close)
    parts.health["db"] = lambda: database_health(database)
    return database


# --- storage and virus scanner (issue 4; docs/storage.md) ---


def _storage(settings: Settings, parts: _Parts) -> FileStorage:
    if parts.in_memory:
        from reckai.adapters.memory.storage import InMemoryFileStorage

        return InMemoryFileStorage(public_base_url=settings.http.public_base_url)
    if settings.storage.backend == "s3":
        from reckai.adapters.s3.storage import S3FileStorage, make_client

        s3 = settings.storage
        if not (s3.s3_endpoint and s3.s3_access_key and s3.s3_secret_key):
            raise ValueError("STORAGE_BACKEND=s3 requires S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY")
        client = make_client(s3.s3_endpoint, s3.s3_access_key, s3.s3_secret_key,
                             secure=s3.s3_secure, region=s3.s3_region)
        s3_storage = S3FileStorage(client, s3.s3_bucket)
        if settings.mode is Mode.EMBEDDED:
            s3_storage.ensure_bucket()  # production buckets are provisioned (policy, lifecycle), not created
        return s3_storage
    if settings.storage.backend == "filesystem":
        from reckai.adapters.filesystem.storage import FileSystemStorage, decode_data_key

        security = settings.security
        keys = {kid: decode_data_key(key) for kid, key in security.data_encryption_retired_keys}
        keys[security.data_encryption_key_id] = decode_data_key(security.data_encryption_key)
        return FileSystemStorage(
            settings.storage.filesystem_root,
            keys=keys,
            current_key_id=security.data_encryption_key_id,
            public_base_url=settings.http.public_base_url,
        )
    raise ValueError(f"STORAGE_BACKEND must be 's3' or 'filesystem', not {settings.storage.backend!r}")


def _scanner(settings: Settings, parts: _Parts) -> VirusScanner:
    scanner_settings = settings.scanner
    if not scanner_settings.enabled:
        from reckai.adapters.clamav.disabled import DisabledScanner

        return DisabledScanner()
    if parts.in_memory:
        from reckai.adapters.memory.scanner import InMemoryScanner

        return InMemoryScanner()  # flags EICAR; tests can add signatures or set it down
    from reckai.adapters.clamav.scanner import ClamdScanner

    if scanner_settings.clamd_socket:
        return ClamdScanner(socket_path=scanner_settings.clamd_socket)
    if scanner_settings.clamd_host:
        return ClamdScanner(host=scanner_settings.clamd_host, port=scanner_settings.clamd_port)
    raise ValueError("SCANNER_ENABLED=true requires CLAMD_HOST or CLAMD_SOCKET")


def storage_health(storage: FileStorage, scanner: VirusScanner) -> HealthReport:
    """`/health/storage`: the storage probe, plus the scanner's state (a disabled scanner is ok
    but said out loud; a configured scanner that is down makes the check fail, since uploads
    would all be refused)."""
    stored, scanned = storage.health(), scanner.health()
    return HealthReport(ok=stored.ok and scanned.ok, detail=f"{stored.detail}; {scanned.detail}")


# --- audit log (issue 2 item 7; docs/audit.md) ---


def _audit_log(database: Database[AppUnitOfWork], signer: AuditSigner, parts: _Parts) -> AuditLog:
    from reckai.adapters.memory.unit_of_work import MemoryDatabase

    if isinstance(database, MemoryDatabase):
        from reckai.adapters.memory.audit import MemoryAuditLog

        # On the container's memory database, so `record(uow, ...)` works on its units of work.
        return MemoryAuditLog(signer, database)
    from reckai.adapters.postgres.audit import PostgresAuditLog
    from reckai.adapters.postgres.unit_of_work import PostgresDatabase

    if not isinstance(database, PostgresDatabase):
        raise TypeError(f"no audit log for a database of type {type(database).__name__}")
    return PostgresAuditLog(database.engine, signer)


def _audit_anchors(settings: Settings, parts: _Parts) -> AuditAnchorStore:
    """Where the signed chain-head checkpoints go (docs/audit.md, "Anchors"): an S3 bucket with
    Object Lock (production), else an append-only local file."""
    if parts.in_memory:
        from reckai.adapters.memory.audit_anchors import MemoryAnchorStore

        return MemoryAnchorStore()
    audit = settings.audit
    if audit.anchor_bucket:
        from reckai.adapters.s3.audit_anchors import S3ObjectLockAnchorStore
        from reckai.adapters.s3.storage import make_client

        s3 = settings.storage
        if not (s3.s3_endpoint and s3.s3_access_key and s3.s3_secret_key):
            raise ValueError("AUDIT_ANCHOR_BUCKET requires S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY")
        client = make_client(s3.s3_endpoint, s3.s3_access_key, s3.s3_secret_key, secure=s3.s3_secure,
                             region=s3.s3_region)
        return S3ObjectLockAnchorStore(client, audit.anchor_bucket, retain_days=audit.anchor_retain_days)
    from reckai.adapters.filesystem.audit_anchors import AppendOnlyFileAnchorStore

    return AppendOnlyFileAnchorStore(audit.anchor_file or settings.storage.filesystem_root.parent
                                     / "audit-checkpoints.jsonl")


# --- identity and security (issue 3; docs/identity.md) ---


@dataclass(frozen=True)
class SecurityComponents:
    password_hasher: PasswordHasher
    common_password_checker: CommonPasswordChecker
    token_service: TokenService
    secret_box: SecretBox
    totp: Totp


def _security(settings: Settings, parts: _Parts, overrides: Overrides) -> SecurityComponents:
    """Hasher, common-password check, token service, secret box, TOTP: no I/O, same in every mode."""
    from reckai.adapters.security.common_passwords import ZxcvbnPasswordChecker
    from reckai.adapters.security.jwt_tokens import JwtKeyRing, JwtTokenService
    from reckai.adapters.security.passwords import ConfiguredPasswordHasher
    from reckai.adapters.security.secret_box import AesGcmSecretBox, decode_key
    from reckai.adapters.security.totp import PyOtpTotp

    security = settings.security
    jwt_keys = {**dict(security.jwt_retired_keys), security.jwt_key_id: security.jwt_secret}
    data_keys = {kid: decode_key(key) for kid, key in security.data_encryption_retired_keys}
    data_keys[security.data_encryption_key_id] = decode_key(security.data_encryption_key)
    # Test containers hash at bcrypt's minimum cost: the same code path, 250 times cheaper.
    hasher = ConfiguredPasswordHasher(security.password_hasher, bcrypt_cost=4) if parts.in_memory \
        else ConfiguredPasswordHasher(security.password_hasher)
    return SecurityComponents(
        password_hasher=overrides.get("password_hasher") or hasher,
        common_password_checker=ZxcvbnPasswordChecker(),
        token_service=overrides.get("token_service") or JwtTokenService(JwtKeyRing(jwt_keys, security.jwt_key_id)),
        secret_box=AesGcmSecretBox(data_keys, security.data_encryption_key_id),
        totp=PyOtpTotp(),
    )


def refresh_successor_key(jwt_secret: str) -> bytes:
    """A key of its own for deriving refresh-token successors, separated from the signing use."""
    import hashlib
    import hmac

    return hmac.new(jwt_secret.encode("utf-8"), b"reckai/refresh-token-successor/v1", hashlib.sha256).digest()


def _rate_limit_and_blacklist(settings: Settings, parts: _Parts) -> tuple[RateLimiter, TokenBlacklist]:
    url = settings.redis.url
    if url is None or parts.in_memory:
        from reckai.adapters.memory.rate_limit import MemoryRateLimiter
        from reckai.adapters.memory.token_blacklist import MemoryTokenBlacklist

        return MemoryRateLimiter(), MemoryTokenBlacklist()
    from reckai.adapters.redis.rate_limit import RedisRateLimiter, connect
    from reckai.adapters.redis.token_blacklist import RedisTokenBlacklist

    client = connect(url)  # connects lazily, on first use
    parts.closers.append(client.close)
    return RedisRateLimiter(client), RedisTokenBlacklist(client)


def _mailer(settings: Settings, parts: _Parts) -> Mailer:
    mail = settings.mailer
    if parts.in_memory:
        from reckai.adapters.memory.mail import MemoryMailer

        return MemoryMailer(mail.sender)
    if mail.backend == "smtp":
        from reckai.adapters.mail.smtp import SmtpMailer

        return SmtpMailer(mail.smtp_host, mail.smtp_port, mail.sender, starttls=mail.smtp_starttls,
                          username=mail.smtp_username, password=mail.smtp_password)
    if mail.backend == "file":
        from reckai.adapters.mail.file import FileMailer

        return FileMailer(mail.outbox_dir, mail.sender)
    raise ValueError(f"MAILER_BACKEND must be 'smtp' or 'file', not {mail.backend!r}")


# --- background jobs (issue 2 item 8; docs/jobs.md) ---


def _job_queue(database: Database[AppUnitOfWork], handlers: JobHandlers,
               parts: _Parts) -> tuple[JobQueue, OutboxRelayStore]:
    """The queue refuses job types the registry does not list (a live view: features register
    their jobs further down)."""
    from reckai.adapters.memory.unit_of_work import MemoryDatabase

    if isinstance(database, MemoryDatabase):
        from reckai.adapters.memory.jobs import InMemoryOutbox

        outbox = InMemoryOutbox(database, handlers.queues)
        return outbox, outbox
    from reckai.adapters.postgres.outbox import PostgresJobQueue, PostgresOutboxStore

    return PostgresJobQueue(handlers.queues), PostgresOutboxStore(database)


def _register_jobs(handlers: JobHandlers, settings: Settings, *, database: Database[AppUnitOfWork],
                   storage: FileStorage, mailer: Mailer, files: FileServices,
                   reconciliations: ReconciliationServices, workflow: WorkflowServices,
                   identity: IdentityServices, reports: ReportServices) -> None:
    """Every feature's background jobs: type -> handler (with its time limit), and the periodic ones."""
    # identity: the password-reset and e-mail verification mails, expired sessions
    handlers.register(job_types.SEND_PASSWORD_RESET, partial(password_cases.send_password_reset_job, identity),
                      time_limit_seconds=60)
    handlers.register(job_types.SEND_EMAIL_VERIFICATION,
                      partial(email_verification.send_email_verification_job, identity), time_limit_seconds=60)
    handlers.register(job_types.CLEANUP_EXPIRED_SESSIONS, partial(maintenance.cleanup_expired_sessions_job, database),
                      time_limit_seconds=300)
    handlers.every(job_types.CLEANUP_EXPIRED_SESSIONS, settings.jobs.session_cleanup_interval_seconds)
    # files: orphaned objects
    handlers.register(job_types.SWEEP_ORPHANED_FILE_OBJECTS,
                      partial(sweeper.sweep_orphaned_file_objects_job, database, storage), time_limit_seconds=600)
    handlers.every(job_types.SWEEP_ORPHANED_FILE_OBJECTS, sweeper.SWEEP_PERIOD_SECONDS)
    # reconciliation jobs
    handlers.register(RUN_RECONCILIATION, partial(reconciliation_jobs.run_reconciliation_job, reconciliations),
                      time_limit_seconds=reconciliation_jobs.RUN_TIME_LIMIT_SECONDS)
    handlers.register(NOTIFY_RECONCILIATION, partial(reconciliation_jobs.notify_reconciliation_job, reconciliations),
                      time_limit_seconds=reconciliation_jobs.NOTIFY_TIME_LIMIT_SECONDS)
    handlers.register(SWEEP_RECONCILIATIONS, partial(reconciliation_jobs.sweep_reconciliation_jobs, reconciliations),
                      time_limit_seconds=reconciliation_jobs.SWEEP_TIME_LIMIT_SECONDS)
    # workflow: SLA escalation, notifications, ledger export
    handlers.register(job_types.ESCALATE_OVERDUE_EXCEPTIONS, partial(exception_cases.escalate_overdue_job, workflow),
                      time_limit_seconds=300)
    handlers.register(job_types.NOTIFY_WORKFLOW, partial(approval_jobs.notify_workflow_job, workflow, mailer,
                                                         settings.http.public_base_url), time_limit_seconds=60)
    handlers.register(job_types.EXPORT_LEDGER_POSTING,
                      partial(approval_jobs.export_ledger_posting_job, workflow, storage), time_limit_seconds=120)
    handlers.every(job_types.ESCALATE_OVERDUE_EXCEPTIONS, exception_cases.SLA_PERIOD_SECONDS)
    handlers.every(SWEEP_RECONCILIATIONS, settings.reconciliation.sweep_interval_seconds)
    # reports: generation (medium queue), expiry (low queue, hourly)
    handlers.register(GENERATE_REPORT, partial(report_generation.generate_report_job, reports),
                      time_limit_seconds=GENERATE_TIME_LIMIT_SECONDS)
    handlers.register(EXPIRE_REPORTS, partial(report_expiry.expire_reports_job, reports),
                      time_limit_seconds=EXPIRE_TIME_LIMIT_SECONDS)
    handlers.every(EXPIRE_REPORTS, EXPIRE_PERIOD_SECONDS)
    # stream schedules (issue 15 item 5): the tick (every minute) and the expected_file_missing mails
    handlers.register(stream_schedules.TICK_STREAM_SCHEDULES,
                      partial(stream_schedules.tick_stream_schedules_job, reconciliations),
                      time_limit_seconds=stream_schedules.TICK_TIME_LIMIT_SECONDS)
    handlers.register(stream_schedules.NOTIFY_STREAM_SCHEDULE,
                      partial(stream_schedules.notify_stream_schedule_job, reconciliations),
                      time_limit_seconds=stream_schedules.NOTIFY_TIME_LIMIT_SECONDS)
    handlers.every(stream_schedules.TICK_STREAM_SCHEDULES, stream_schedules.TICK_PERIOD_SECONDS)


def _worker(settings: Settings, database: Database[AppUnitOfWork], job_queue: JobQueue, store: OutboxRelayStore,
            handlers: JobHandlers, parts: _Parts) -> tuple[DramatiqJobRuntime, JobWorkerRunner]:
    """Brokers on REDIS_URL when set, else in-process. Without Redis the worker_runner consumes
    every queue in this process (embedded mode: `serve` starts it); with Redis, jobs run in
    `reckai worker` processes and this process only enqueues and checks the broker."""
    from reckai.adapters.dramatiq.runtime import redis_broker_factory, stub_broker_factory

    redis_url = settings.redis.url
    if redis_url:
        from reckai.adapters.redis.connection import redis_client

        broker_factory = redis_broker_factory(lambda: redis_client(redis_url), settings.jobs.redis_namespace)
    else:
        broker_factory = stub_broker_factory()
    # In-process queues are cheap to poll; a short idle timeout also makes stopping quick.
    runtime = build_runtime(handlers, broker_factory, store, worker_timeout_ms=1000 if redis_url else 200)
    parts.closers.append(runtime.close)
    in_process = redis_url is None
    runner = JobWorkerRunner(
        runtime, store, job_queue,
        threads=parse_queue_threads(settings.jobs.embedded_threads) if in_process else {},
        relay=in_process,
        schedule=handlers.schedule if in_process else None,
        open_system_uow=lambda: database.unit_of_work(None),
        relay_interval_seconds=settings.jobs.relay_interval_seconds,
        stale_after_seconds=settings.jobs.stale_after_seconds,
        scheduler_tick_seconds=scheduler_tick(settings),
    )
    parts.closers.append(runner.stop)
    parts.health["queue"] = runner.health
    return runtime, runner


def build_worker_runner(container: Container, threads: Mapping[Queue, int]) -> JobWorkerRunner:
    """The runner of one `reckai worker` process: consumes `threads` (queue -> threads per queue),
    relays the outbox and runs the scheduler, on the container's brokers and outbox."""
    settings = container.settings
    database = container.database
    return JobWorkerRunner(
        container.job_runtime, container.job_outbox, container.job_queue,
        threads=threads,
        relay=True,
        schedule=container.job_handlers.schedule,
        open_system_uow=lambda: database.unit_of_work(None),
        relay_interval_seconds=settings.jobs.relay_interval_seconds,
        stale_after_seconds=settings.jobs.stale_after_seconds,
        scheduler_tick_seconds=scheduler_tick(settings),
    )


def scheduler_tick(settings: Settings) -> float:
    """Often enough that the sweep runs on time and a head checkpoint is written at least every
    minute (its period plus one tick stays under 60 s with the defaults: 45 + 10)."""
    return min(SCHEDULER_TICK_SECONDS, settings.reconciliation.sweep_interval_seconds,
               max(1.0, (60 - settings.audit.anchor_interval_seconds) * 2 / 3))


# --- files (issue 4; docs/files.md) ---


def _file_parser() -> FileParser:
    from reckai.adapters.polars.file_processing import PolarsFileParser

    return PolarsFileParser()


def build_file_parser() -> FileParser:
    """What `reckai inspect` needs (no database, no container): the file parser."""
    return _file_parser()


# --- workflow: exceptions, approvals, matching rules (issue 7; docs/workflow.md) ---


def _register_approval_types(workflow: WorkflowServices, operator: OperatorValues, reports: ReportServices,
                             privacy: PrivacyServices, identity: IdentityServices) -> None:
    """Each approval type's effect, registered by the feature that owns it (docs/architecture.md,
    "Adding an approval type"); bootstrap fails when a type has none."""
    approvals = workflow.approval_handlers
    approvals.register(ApprovalType.RULE_CONFIGURATION, rule_configuration_handler(workflow))
    approvals.register(ApprovalType.EXCEPTION_RESOLUTION, exception_cases.exception_resolution_handler(workflow))
    approvals.register(ApprovalType.LEDGER_POSTING, approval_jobs.ledger_posting_handler(workflow))
    approvals.register(ApprovalType.USER_ONBOARDING, user_onboarding_handler(workflow))
    approvals.register(ApprovalType.SYSTEM_SETTING, system_setting_handler(workflow, operator))
    approvals.register(ApprovalType.REPORT_GENERATION, report_generation_handler(reports, workflow))
    approvals.register(ApprovalType.PERIOD_CLOSE, stream_periods.period_close_handler(workflow))
    approvals.register(ApprovalType.PERIOD_REOPEN, stream_periods.period_reopen_handler(workflow))
    approvals.register(ApprovalType.PERIOD_ADJUSTMENT, stream_periods.period_adjustment_handler(workflow))
    approvals.register(ApprovalType.DATA_EXPORT, data_export_handler(privacy))
    approvals.register(ApprovalType.DATA_ERASURE, data_erasure_handler(identity))
    approvals.require_all()



# --- data exports (issue 17 item 6; docs/privacy.md) ---


def _privacy(database: Database[AppUnitOfWork], storage: FileStorage, audit_log: AuditLog, job_queue: JobQueue,
             clock: Clock, personal: PersonalData) -> PrivacyServices:
    return PrivacyServices(database=database, storage=storage, audit_log=audit_log, job_queue=job_queue,
                           clock=clock, schema_version=_schema_version, personal=personal)


def _schema_version() -> str:
    """The Alembic head (read from the migration scripts when an export is generated, not at start-up)."""
    from reckai.adapters.postgres.migrations import head_revision

    return head_revision()


# --- reports (issue 14; docs/reports.md) ---


def _reports(database: Database[AppUnitOfWork], storage: FileStorage, audit_log: AuditLog, job_queue: JobQueue,
             clock: Clock, signer: AuditSigner, personal: PersonalData) -> ReportServices:
    from reckai.adapters.polars.report_figures import PolarsReportFigures
    from reckai.adapters.reports.pdf import PdfReportRenderer
    from reckai.adapters.reports.spreadsheets import ExcelReportRenderer, ZippedCsvRenderer

    return ReportServices(database=database, storage=storage, audit_log=audit_log, job_queue=job_queue, clock=clock,
                          figures=PolarsReportFigures(storage),
                          renderers=ReportRenderers(csv=ZippedCsvRenderer(), excel=ExcelReportRenderer(),
                                                    pdf=PdfReportRenderer()),
                          audit_signer=signer, personal=personal)


def _rule_preview(storage: FileStorage, engine: JobMatchingEngine) -> JobRulePreview:
    from reckai.adapters.polars.matcher import PolarsMatcher

    return JobRulePreview(storage, lambda: engine, PolarsMatcher())


def _row_amounts(database: Database[AppUnitOfWork], storage: FileStorage) -> RowAmounts:
    from reckai.adapters.polars.source_rows import NormalizedSourceRows

    return NormalizedSourceRows(database, storage)


def _row_finder(database: Database[AppUnitOfWork], storage: FileStorage) -> RowFinder:
    from reckai.adapters.polars.source_rows import NormalizedSourceRows

    return NormalizedSourceRows(database, storage)


def _source_rows(database: Database[AppUnitOfWork], storage: FileStorage) -> SourceRows:
    from reckai.adapters.polars.source_rows import NormalizedSourceRows

    return NormalizedSourceRows(database, storage)


# --- reconciliation jobs (issue 6; docs/reconciliation-jobs.md) ---


def _cron_calendar() -> CronCalendar:
    from reckai.adapters.cronsim.calendar import CronsimCalendar

    return CronsimCalendar()


def _stream_engine() -> StreamEngine:
    from reckai.adapters.polars.stream_runs import PolarsStreamEngine

    return PolarsStreamEngine()


def _job_matching_engine() -> JobMatchingEngine:
    from reckai.adapters.polars.job_results import PolarsJobMatchingEngine

    return PolarsJobMatchingEngine()
