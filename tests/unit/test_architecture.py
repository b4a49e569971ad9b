"""The hexagon's dependency rule, checked on the import statements of every module.

domain/ imports only the standard library and other domain modules; application/ imports no
framework, driver or ORM and no adapter or entrypoint; only bootstrap and entrypoints wire adapters.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "reckai"
FRAMEWORKS_AND_DRIVERS = {
    "litestar", "sqlalchemy", "psycopg", "psycopg_pool", "redis", "dramatiq", "minio", "polars",
    "fastexcel", "uvicorn", "alembic", "msgspec", "boto3", "urllib3", "pgserver",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules_under(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules_under("domain"), ids=lambda p: str(p.relative_to(SRC)))
def test_domain_imports_only_the_standard_library_and_the_domain(path: Path) -> None:
    offending = {
        name for name in imported_modules(path)
        if not (name.split(".")[0] in sys.stdlib_module_names or name == "__future__"
                or name == "reckai.domain" or name.startswith("reckai.domain."))
    }
    assert offending == set(), f"{path.relative_to(SRC)} imports {sorted(offending)}"


@pytest.mark.parametrize("path", modules_under("application"), ids=lambda p: str(p.relative_to(SRC)))
def test_application_imports_no_framework_driver_adapter_or_entrypoint(path: Path) -> None:
    offending = {
        name for name in imported_modules(path)
        if name.split(".")[0] in FRAMEWORKS_AND_DRIVERS
        or name.startswith(("reckai.adapters", "reckai.entrypoints", "reckai.bootstrap"))
    }
    assert offending == set(), f"{path.relative_to(SRC)} imports {sorted(offending)}"


def test_the_rule_is_checked_on_real_modules() -> None:
    # Guards against the globs silently matching nothing after a move.
    assert len(modules_under("domain")) > 20
    assert len(modules_under("application")) > 10
