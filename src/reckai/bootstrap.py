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
