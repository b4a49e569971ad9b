"""Feature route modules: one module per resource, found by `collect_routes()`.

A feature adds its HTTP surface by dropping a module here (no shared list to edit):

    # src/reckai/entrypoints/http/routes/reconciliations.py
    ROUTE_HANDLERS = [ReconciliationController]          # controllers, routers or handlers
    ERROR_STATUSES = {RuleVersionMismatch: 409}            # optional: non-application errors

Every handler declares who may call it with `opt` (see `reckai.entrypoints.http.permissions`):
`opt={"permission": "reconciliations:write"}`, or `opt={"public": True}` for the few routes
anyone may call (login, health). Handlers receive the composition root as the `container`
dependency and list pagination as the `pagination` dependency.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CollectedRoutes:
    handlers: list[Any] = field(default_factory=list)
    error_statuses: dict[type[BaseException], int] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)


def collect_routes(package: str = __name__) -> CollectedRoutes:
    """Import every module of `package` (sorted by name, so the app is the same on every start)
    and gather its `ROUTE_HANDLERS` and `ERROR_STATUSES`. An import error is not swallowed: a
    broken route module must stop the app, not silently drop its endpoints."""
    collected = CollectedRoutes()
    root = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda item: item.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        handlers = getattr(module, "ROUTE_HANDLERS", None)
        if handlers is None:
            continue
        collected.handlers.extend(handlers)
        statuses: Mapping[type[BaseException], int] = getattr(module, "ERROR_STATUSES", {})
        collected.error_statuses.update(statuses)
        collected.modules.append(module.__name__)
    return collected
