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


# --- import cycles: every import counts, function-local ones too, except under `if TYPE_CHECKING:` ---

ACYCLIC_PACKAGES = ("reckai.adapters.polars", "reckai.domain.ingestion")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def reckai_imports(path: Path, modules: set[str]) -> set[str]:
    """The reckai modules `path` imports anywhere but in an `if TYPE_CHECKING:` block."""

    def owning_module(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found: set[str] = set()
    pending: list[ast.AST] = [ast.parse(path.read_text(), filename=str(path))]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(filter(None, (owning_module(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(filter(None, (owning_module(f"{node.module}.{alias.name}") for alias in node.names)))
        pending.extend(ast.iter_child_nodes(node))
    return found - {module_name(path)}


def import_cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = {stack.pop()}
            while module not in component:
                component.add(stack.pop())
            if len(component) > 1:
                cycles.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_ingestion_and_polars_modules_are_in_no_import_cycle() -> None:
    paths = {module_name(path): path for path in modules_under("")}
    graph = {name: reckai_imports(path, set(paths)) for name, path in paths.items()}
    assert "reckai.domain.ingestion.errors" in graph["reckai.adapters.polars.readers_excel"]
    offending = [sorted(cycle) for cycle in import_cycles(graph)
                 if any(module.startswith(ACYCLIC_PACKAGES) for module in cycle)]
    assert offending == []
