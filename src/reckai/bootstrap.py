"""The one composition root.

`bootstrap(settings)` builds engines, clients and pools inside a function (never at import time)
and picks adapters from the settings. `bootstrap_in_memory()` builds the same container from the
in-memory adapters for domain and use-case tests.

Each concern has its own builder below; the Container is what entrypoints (HTTP, worker, CLI) use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reckai.settings import Mode, Settings


@dataclass
class Container:
    settings: Settings
    # Concern name -> built component. Keys used so far: "database" (unit-of-work factory owner),
    # "storage", "job_queue", "audit_log", "clock", "scanner", "mailer", "rate_limiter".
    components: dict[str, Any] = field(default_factory=dict)
    # name -> zero-argument callable returning a HealthReport; keys "db", "storage", "queue".
    health_checks: dict[str, Callable[[], Any]] = field(default_factory=dict)
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        components = self.__dict__.get("components", {})
        if name in components:
            return components[name]
        raise AttributeError(name)

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()


def bootstrap(settings: Settings) -> Container:
    settings.validate()
    container = Container(settings=settings)
    try:
        for build in _BUILDERS:
            build(container)
    except BaseException:
        container.close()
        raise
    return container


def bootstrap_in_memory(settings: Settings | None = None) -> Container:
    settings = settings or Settings(mode=Mode.EMBEDDED)
    container = Container(settings=settings)
    for build in _MEMORY_BUILDERS:
        build(container)
    return container


# --- builders, one per concern; each adds to container.components / health_checks / on_close ---

_BUILDERS: list[Callable[[Container], None]] = []
_MEMORY_BUILDERS: list[Callable[[Container], None]] = []


# --- database (issue 2 items 3-5; docs/schema.md, docs/tenancy.md). First: others use it. ---


def _build_database(container: Container) -> None:
    from reckai.adapters.postgres.database import database_health, open_database

    database = open_database(container.settings)
    container.components["database"] = database
    container.on_close(database.close)
    container.health_checks["db"] = lambda: database_health(database)


def _build_memory_database(container: Container) -> None:
    from reckai.adapters.memory.unit_of_work import MemoryDatabase
    from reckai.application.ports.health import HealthReport

    container.components["database"] = MemoryDatabase()
    container.health_checks["db"] = lambda: HealthReport(ok=True, detail="in-memory database")


_BUILDERS.append(_build_database)
_MEMORY_BUILDERS.append(_build_memory_database)


# --- storage and virus scanner (issue 4; docs/storage.md) ---


def _build_storage(container: Container) -> None:
    settings = container.settings
    if settings.storage.backend == "s3":
        from reckai.adapters.s3.storage import S3FileStorage, make_client

        s3 = settings.storage
        if not (s3.s3_endpoint and s3.s3_access_key and s3.s3_secret_key):
            raise ValueError("STORAGE_BACKEND=s3 requires S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY")
        client = make_client(s3.s3_endpoint, s3.s3_access_key, s3.s3_secret_key,
                             secure=s3.s3_secure, region=s3.s3_region)
        storage: Any = S3FileStorage(client, s3.s3_bucket)
        if settings.mode is Mode.EMBEDDED:
            storage.ensure_bucket()  # production buckets are provisioned (policy, lifecycle), not created
    elif settings.storage.backend == "filesystem":
        from reckai.adapters.filesystem.storage import FileSystemStorage, decode_data_key

        security = settings.security
        storage = FileSystemStorage(
            settings.storage.filesystem_root,
            keys={security.data_encryption_key_id: decode_data_key(security.data_encryption_key)},
            current_key_id=security.data_encryption_key_id,
            public_base_url=settings.http.public_base_url,
        )
    else:
        raise ValueError(f"STORAGE_BACKEND must be 's3' or 'filesystem', not {settings.storage.backend!r}")
    container.components["storage"] = storage
    _register_scanner(container)


def _register_scanner(container: Container) -> None:
    scanner_settings = container.settings.scanner
    if scanner_settings.enabled:
        from reckai.adapters.clamav.scanner import ClamdScanner

        if scanner_settings.clamd_socket:
            scanner: Any = ClamdScanner(socket_path=scanner_settings.clamd_socket)
        elif scanner_settings.clamd_host:
            scanner = ClamdScanner(host=scanner_settings.clamd_host, port=scanner_settings.clamd_port)
        else:
            raise ValueError("SCANNER_ENABLED=true requires CLAMD_HOST or CLAMD_SOCKET")
    else:
        from reckai.adapters.clamav.disabled import DisabledScanner

        scanner = DisabledScanner()
    container.components["scanner"] = scanner
    container.health_checks["storage"] = lambda: storage_health(container.storage, container.scanner)


def storage_health(storage: Any, scanner: Any) -> Any:
    """`/health/storage`: the storage probe, plus the scanner's state (a disabled scanner is ok
    but said out loud; a configured scanner that is down makes the check fail, since uploads
    would all be refused)."""
    from reckai.application.ports.health import HealthReport

    stored, scanned = storage.health(), scanner.health()
    return HealthReport(ok=stored.ok and scanned.ok, detail=f"{stored.detail}; {scanned.detail}")


def _build_memory_storage(container: Container) -> None:
    from reckai.adapters.memory.storage import InMemoryFileStorage

    container.components["storage"] = InMemoryFileStorage(
        public_base_url=container.settings.http.public_base_url
    )
    if container.settings.scanner.enabled:
        from reckai.adapters.memory.scanner import InMemoryScanner

        scanner: Any = InMemoryScanner()  # flags EICAR; tests can add signatures or set it down
    else:
        from reckai.adapters.clamav.disabled import DisabledScanner

        scanner = DisabledScanner()
    container.components["scanner"] = scanner
    container.health_checks["storage"] = lambda: storage_health(container.storage, container.scanner)


_BUILDERS.append(_build_storage)
_MEMORY_BUILDERS.append(_build_memory_storage)


# --- audit log (issue 2 item 7; docs/audit.md) ---


def _audit_signer(container: Container) -> Any:
    from reckai.domain.audit.chain import AuditSigner

    security = container.settings.security
    signer = AuditSigner(security.audit_hmac_key_id, security.audit_hmac_key)
    container.components["audit_signer"] = signer
    return signer


def _build_audit_log(container: Container) -> None:
    # Needs the "database" component; when no builder provided one there is no audit log (and
    # whatever needs it fails loudly on `container.audit_log`) rather than a silent in-memory one.
    database = container.components.get("database")
    if database is None:
        return
    from reckai.adapters.postgres.audit import PostgresAuditLog

    container.components["audit_log"] = PostgresAuditLog(database.engine, _audit_signer(container))


def _build_memory_audit_log(container: Container) -> None:
    from reckai.adapters.memory.audit import MemoryAuditLog

    # The container's memory database when there is one, so `record(uow, ...)` works on its units
    # of work; otherwise a private one.
    database = container.components.get("database")
    container.components["audit_log"] = MemoryAuditLog(_audit_signer(container), database)


_BUILDERS.append(_build_audit_log)
_MEMORY_BUILDERS.append(_build_memory_audit_log)


# --- identity and security (issue 3; docs/identity.md) ---


def _build_security(container: Container) -> None:
    """Hasher, common-password check, token service, secret box, TOTP: no I/O, same in every mode."""
    from reckai.adapters.security.common_passwords import ZxcvbnPasswordChecker
    from reckai.adapters.security.jwt_tokens import JwtKeyRing, JwtTokenService
    from reckai.adapters.security.passwords import ConfiguredPasswordHasher
    from reckai.adapters.security.secret_box import AesGcmSecretBox, decode_key
    from reckai.adapters.security.totp import PyOtpTotp

    security = container.settings.security
    jwt_keys = {**dict(security.jwt_retired_keys), security.jwt_key_id: security.jwt_secret}
    data_keys = {kid: decode_key(key) for kid, key in security.data_encryption_retired_keys}
    data_keys[security.data_encryption_key_id] = decode_key(security.data_encryption_key)
    container.components["password_hasher"] = ConfiguredPasswordHasher(security.password_hasher)
    container.components["common_password_checker"] = ZxcvbnPasswordChecker()
    container.components["token_service"] = JwtTokenService(JwtKeyRing(jwt_keys, security.jwt_key_id))
    container.components["secret_box"] = AesGcmSecretBox(data_keys, security.data_encryption_key_id)
    container.components["totp"] = PyOtpTotp()


def _build_rate_limit_and_blacklist(container: Container) -> None:
    url = container.settings.redis.url
    if url is None:
        _build_memory_rate_limit_and_blacklist(container)
        return
    from reckai.adapters.redis.rate_limit import RedisRateLimiter, connect
    from reckai.adapters.redis.token_blacklist import RedisTokenBlacklist

    client = connect(url)  # connects lazily, on first use
    container.on_close(client.close)
    container.components["rate_limiter"] = RedisRateLimiter(client)
    container.components["token_blacklist"] = RedisTokenBlacklist(client)


def _build_memory_rate_limit_and_blacklist(container: Container) -> None:
    from reckai.adapters.memory.rate_limit import MemoryRateLimiter
    from reckai.adapters.memory.token_blacklist import MemoryTokenBlacklist

    container.components["rate_limiter"] = MemoryRateLimiter()
    container.components["token_blacklist"] = MemoryTokenBlacklist()


def _build_mailer(container: Container) -> None:
    mail = container.settings.mailer
    if mail.backend == "smtp":
        from reckai.adapters.mail.smtp import SmtpMailer

        mailer: Any = SmtpMailer(
            mail.smtp_host,
            mail.smtp_port,
            mail.sender,
            starttls=mail.smtp_starttls,
            username=mail.smtp_username,
            password=mail.smtp_password,
        )
    elif mail.backend == "file":
        from reckai.adapters.mail.file import FileMailer

        mailer = FileMailer(mail.outbox_dir, mail.sender)
    else:
        raise ValueError(f"MAILER_BACKEND must be 'smtp' or 'file', not {mail.backend!r}")
    container.components["mailer"] = mailer


def _build_memory_mailer(container: Container) -> None:
    from reckai.adapters.memory.mail import MemoryMailer

    container.components["mailer"] = MemoryMailer(container.settings.mailer.sender)


def _build_memory_security(container: Container) -> None:
    from reckai.adapters.security.passwords import ConfiguredPasswordHasher

    _build_security(container)
    # Test containers hash at bcrypt's minimum cost: the same code path, 250 times cheaper.
    container.components["password_hasher"] = ConfiguredPasswordHasher(
        container.settings.security.password_hasher, bcrypt_cost=4
    )


_BUILDERS.extend([_build_security, _build_rate_limit_and_blacklist, _build_mailer])
_MEMORY_BUILDERS.extend([_build_memory_security, _build_memory_rate_limit_and_blacklist, _build_memory_mailer])


# --- background jobs (issue 2 item 8; docs/jobs.md) ---


def _build_jobs(container: Container) -> None:
    from reckai.adapters.postgres.outbox import PostgresJobQueue, PostgresOutboxStore
    from reckai.entrypoints.worker.actors import known_jobs

    database = container.components["database"]
    _wire_jobs(container, PostgresJobQueue(known_jobs()), PostgresOutboxStore(database))


def _build_memory_jobs(container: Container) -> None:
    from reckai.adapters.memory.jobs import InMemoryOutbox
    from reckai.entrypoints.worker.actors import known_jobs

    outbox = InMemoryOutbox(container.components["database"], known_jobs())
    _wire_jobs(container, outbox, outbox)


def _wire_jobs(container: Container, job_queue: Any, store: Any) -> None:
    """Brokers on REDIS_URL when set, else in-process. Without Redis the worker_runner consumes
    every queue in this process (embedded mode: `serve` starts it); with Redis, jobs run in
    `reckai worker` processes and this process only enqueues and checks the broker."""
    from reckai.adapters.dramatiq.runtime import redis_broker_factory, stub_broker_factory
    from reckai.entrypoints.worker.runner import (
        JobWorkerRunner,
        build_runtime,
        default_schedule,
        parse_queue_threads,
    )

    settings = container.settings
    redis_url = settings.redis.url
    if redis_url:
        from reckai.adapters.redis.connection import redis_client

        broker_factory = redis_broker_factory(lambda: redis_client(redis_url), settings.jobs.redis_namespace)
    else:
        broker_factory = stub_broker_factory()
    # In-process queues are cheap to poll; a short idle timeout also makes stopping quick.
    runtime = build_runtime(container, broker_factory, store, worker_timeout_ms=1000 if redis_url else 200)
    container.on_close(runtime.close)
    database = container.components["database"]
    in_process = redis_url is None
    runner = JobWorkerRunner(
        runtime,
        store,
        job_queue,
        threads=parse_queue_threads(settings.jobs.embedded_threads) if in_process else {},
        relay=in_process,
        schedule=default_schedule(settings.jobs.session_cleanup_interval_seconds,
                                  settings.reconciliation.sweep_interval_seconds) if in_process else None,
        open_system_uow=lambda: database.unit_of_work(None),
        relay_interval_seconds=settings.jobs.relay_interval_seconds,
        stale_after_seconds=settings.jobs.stale_after_seconds,
    )
    container.on_close(runner.stop)
    container.components["job_queue"] = job_queue
    container.components["job_outbox"] = store
    container.components["job_runtime"] = runtime
    container.components["worker_runner"] = runner
    container.health_checks["queue"] = runner.health


_BUILDERS.append(_build_jobs)
_MEMORY_BUILDERS.append(_build_memory_jobs)


# --- files (issue 4; docs/files.md): the parser, and the file repositories on every unit of work ---


def _build_files(container: Container) -> None:
    import reckai.adapters.postgres.files  # noqa: F401  registers uow.files, uow.data_mappings, uow.normalized_files
    from reckai.adapters.polars.file_processing import PolarsFileParser

    container.components["file_parser"] = PolarsFileParser()


def _build_memory_files(container: Container) -> None:
    import reckai.adapters.memory.files  # noqa: F401  registers the in-memory twins
    from reckai.adapters.polars.file_processing import PolarsFileParser

    container.components["file_parser"] = PolarsFileParser()


_BUILDERS.append(_build_files)
_MEMORY_BUILDERS.append(_build_memory_files)


# --- workflow: exceptions, approvals, matching rules (issue 7; docs/workflow.md) ---


def _workflow_services(container: Container) -> Any:
    from reckai.adapters.polars.matcher import PolarsMatcher
    from reckai.application.approvals.common import WorkflowServices
    from reckai.application.rules.preview import JobRulePreview

    components = container.components
    # The job feature's loader may be built after this builder: looked up when a preview runs.
    preview = JobRulePreview(components["storage"], lambda: components.get("job_matching_engine"), PolarsMatcher())
    return WorkflowServices(
        database=container.components["database"],
        audit_log=container.components["audit_log"],
        job_queue=container.components["job_queue"],
        password_hasher=container.components.get("password_hasher"),
        rule_preview=preview,
    )


def _build_workflow(container: Container) -> None:
    import reckai.adapters.postgres.workflow  # noqa: F401  registers uow.breaks, .approvals, .rules, .matches, .declined_pairs
    from reckai.adapters.polars.source_rows import NormalizedSourceRows

    container.components["workflow"] = _workflow_services(container)
    container.components["source_rows"] = NormalizedSourceRows(container.components["database"],
                                                               container.components["storage"])


def _build_memory_workflow(container: Container) -> None:
    import reckai.adapters.memory.workflow  # noqa: F401  registers the in-memory twins
    from reckai.adapters.polars.source_rows import NormalizedSourceRows

    container.components["workflow"] = _workflow_services(container)
    container.components["source_rows"] = NormalizedSourceRows(container.components["database"],
                                                               container.components["storage"])


_BUILDERS.append(_build_workflow)
_MEMORY_BUILDERS.append(_build_memory_workflow)


# --- reconciliation jobs (issue 6; docs/reconciliation-jobs.md) ---


def _build_reconciliations(container: Container) -> None:
    import reckai.adapters.postgres.reconciliations  # noqa: F401  registers uow.reconciliation_jobs, ...
    from reckai.adapters.polars.job_results import PolarsJobMatchingEngine

    container.components["job_matching_engine"] = PolarsJobMatchingEngine()


def _build_memory_reconciliations(container: Container) -> None:
    import reckai.adapters.memory.reconciliations  # noqa: F401  registers the in-memory twins
    from reckai.adapters.polars.job_results import PolarsJobMatchingEngine

    container.components["job_matching_engine"] = PolarsJobMatchingEngine()


_BUILDERS.append(_build_reconciliations)
_MEMORY_BUILDERS.append(_build_memory_reconciliations)
