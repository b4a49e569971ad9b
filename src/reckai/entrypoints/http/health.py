"""`GET /health`, `/health/db`, `/health/storage`, `/health/queue` (spec §8.2).

Each dependency endpoint calls `container.health_checks[name]()` (registered by the feature that
builds the dependency) and answers 200 `{"status": "ok", "detail": ...}` or 503 with the error
envelope (SERVICE_UNAVAILABLE). A check that is missing, raises, returns something odd, or does not
answer within the timeout counts as down.

Checks are blocking calls (a `SELECT 1`, a bucket probe, a broker ping), so each runs in its own
daemon thread; the request waits at most `timeout_seconds`. A check still running from an earlier
request is joined rather than started again, so a hung dependency holds one thread per check, not
one per request, and never blocks the event loop or process exit.

`GET /health` is liveness plus a summary: it answers 200 while the process serves requests, with
`status` "ok" when every check passes and "degraded" otherwise (an orchestrator restarting the API
because the database is down would not help). Readiness probes use the per-dependency endpoints.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from reckai.application.errors import ServiceUnavailable
from reckai.application.ports.health import HealthReport
from reckai.entrypoints.http.envelope import ErrorEnvelope, Success, ok
from reckai.logging_setup import log_event

logger = logging.getLogger(__name__)

DEPENDENCIES = ("db", "storage", "queue")
DEFAULT_TIMEOUT_SECONDS = 3.0
_DOWN = {
    503: ResponseSpec(
        data_container=ErrorEnvelope, description="The dependency is down (SERVICE_UNAVAILABLE)"
    )
}


class CheckStatus(msgspec.Struct):
    status: str  # "ok" | "down"
    detail: str


class HealthSummary(msgspec.Struct):
    status: str  # "ok" | "degraded"
    checks: dict[str, CheckStatus]


class HealthProbe:
    def __init__(
        self, checks: Mapping[str, Callable[[], Any]], timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        self._checks = checks
        self.timeout_seconds = timeout_seconds
        self._in_flight: dict[str, concurrent.futures.Future[Any]] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return list(DEPENDENCIES) + sorted(name for name in self._checks if name not in DEPENDENCIES)

    async def check(self, name: str) -> HealthReport:
        check = self._checks.get(name)
        if check is None:
            return HealthReport(ok=False, detail="not configured")
        future = self._start(name, check)
        try:
            outcome = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(future)), self.timeout_seconds
            )
        except TimeoutError:
            log_event(logger, "health.check_timeout", level=logging.WARNING, metadata={"check": name})
            return HealthReport(ok=False, detail=f"no answer within {self.timeout_seconds:g} s")
        except Exception as exc:  # noqa: BLE001 - a check that raises is a check that failed
            log_event(
                logger,
                "health.check_failed",
                level=logging.ERROR,
                message=f"health check {name} raised {type(exc).__name__}",
                metadata={"check": name},
                exc_info=True,
            )
            return HealthReport(ok=False, detail=f"check failed ({type(exc).__name__})")
        if not isinstance(outcome, HealthReport):
            return HealthReport(ok=False, detail="check returned no health report")
        return outcome

    async def check_all(self) -> dict[str, HealthReport]:
        names = self.names()
        reports = await asyncio.gather(*(self.check(name) for name in names))
        return dict(zip(names, reports, strict=True))

    def _start(self, name: str, check: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        with self._lock:
            running = self._in_flight.get(name)
            if running is not None and not running.done():
                return running
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()
            future.set_running_or_notify_cancel()
            self._in_flight[name] = future

        def run() -> None:
            try:
                future.set_result(check())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
                future.set_exception(exc)

        threading.Thread(target=run, name=f"health-{name}", daemon=True).start()
        return future


class HealthController(Controller):
    path = "/health"
    tags = ["health"]  # noqa: RUF012 - Litestar layer attributes
    opt = {"public": True}  # noqa: RUF012

    @get("/", summary="Liveness and a summary of every dependency")
    async def summary(self, health_probe: NamedDependency[HealthProbe]) -> Success[HealthSummary]:
        """200 while the process serves (liveness); `status` is ok when every dependency check passes and
        degraded otherwise, with each check's status and detail. Public, for load balancers."""
        reports = await health_probe.check_all()
        checks = {name: _status(report) for name, report in reports.items()}
        overall = "ok" if all(report.ok for report in reports.values()) else "degraded"
        return ok(HealthSummary(status=overall, checks=checks))

    @get("/db", summary="PostgreSQL answers", responses=_DOWN)
    async def database(self, health_probe: NamedDependency[HealthProbe]) -> Success[CheckStatus]:
        """Readiness of the database: 200 when PostgreSQL answers within 3 s, else 503. Public."""
        return await _dependency(health_probe, "db")

    @get("/storage", summary="File storage answers", responses=_DOWN)
    async def storage(self, health_probe: NamedDependency[HealthProbe]) -> Success[CheckStatus]:
        """Readiness of file storage (S3 or the filesystem): 200 when it answers within 3 s, else 503. Public."""
        return await _dependency(health_probe, "storage")

    @get("/queue", summary="Job queue broker answers", responses=_DOWN)
    async def queue(self, health_probe: NamedDependency[HealthProbe]) -> Success[CheckStatus]:
        """Readiness of the job queue's broker: 200 when it answers within 3 s, else 503. Public."""
        return await _dependency(health_probe, "queue")


def _status(report: HealthReport) -> CheckStatus:
    return CheckStatus(status="ok" if report.ok else "down", detail=report.detail)


async def _dependency(probe: HealthProbe, name: str) -> Success[CheckStatus]:
    report = await probe.check(name)
    if not report.ok:
        raise ServiceUnavailable(name, report.detail)
    return ok(_status(report))
