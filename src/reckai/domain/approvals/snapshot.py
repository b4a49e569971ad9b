"""The snapshot of an approval's subject, taken when it is requested, and what changed since.

A snapshot is plain JSON (strings, numbers, booleans, null, objects, lists): the subject as the
maker asked the checker to see it. `changes_between` lists every leaf that differs, by dotted path,
so a checker (and the 409 refusing a stale approval) says exactly what changed.
"""

from __future__ import annotations

from typing import Any

MAX_CHANGES = 50


def changes_between(then: Any, now: Any, path: str = "") -> list[dict[str, Any]]:
    """Leaf differences of two JSON values: [{"field": "exception.amount", "then": ..., "now": ...}]."""
    found: list[dict[str, Any]] = []
    _walk(then, now, path, found)
    return found[:MAX_CHANGES]


def _walk(then: Any, now: Any, path: str, found: list[dict[str, Any]]) -> None:
    if len(found) >= MAX_CHANGES:
        return
    if isinstance(then, dict) and isinstance(now, dict):
        for key in sorted(set(then) | set(now), key=str):
            _walk(then.get(key), now.get(key), f"{path}.{key}" if path else str(key), found)
    elif isinstance(then, list) and isinstance(now, list) and len(then) == len(now):
        for index, (left, right) in enumerate(zip(then, now, strict=True)):
            _walk(left, right, f"{path}.{index}" if path else str(index), found)
    elif then != now:
        found.append({"field": path or "subject", "then": then, "now": now})
