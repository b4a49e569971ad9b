"""The hexagon's dependency rule, checked on the import statements of every module
(docs/architecture.md).

- domain/ imports only the standard library and other domain modules;
- application/ imports no framework, driver or ORM, no adapter, entrypoint, bootstrap or settings;
- adapters/ import no entrypoint and not bootstrap;
- bootstrap imports no entrypoint (entrypoints depend on the composition root, never the reverse);
- no import cycle between modules, imports inside functions included (an import under
  `if TYPE_CHECKING:` is for the type checker only and does not count).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "reckai"
FRAMEWORKS_AND_DRIVERS = {
    "litestar", "sqlalchemy", "psycopg", "psycopg_pool", "redis", "dramatiq", "minio", "polars",
    "fastexcel", "uvicorn", "alembic", "msgspec", "boto3", "urllib3", "pgserver",
}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that runs (module level or inside a function), skipping the bodies
    of `if TYPE_CHECKING:` blocks."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def module_name(path: Path) -> str:
    parts = ["reckai", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def all_modules() -> frozenset[str]:
    return frozenset(module_name(path) for path in SRC.rglob("*.py"))


@cache
def imported_modules(path: Path) -> frozenset[str]:
    """Absolute names of what the module imports at run time; `from package import module` names
    the module, `from module import name` the module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names: set[str] = set()
    for node in _runtime_imports(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            module = ".".join([*base, node.module] if node.module else base)
        else:
            module = node.module or ""
        for alias in node.names:
            candidate = f"{module}.{alias.name}"
            names.add(candidate if candidate in all_modules() else module)
    return frozenset(names)


def modules_under(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def _ids(path: Path) -> str:
    return str(path.relative_to(SRC))


@pytest.mark.parametrize("path", modules_under("domain"), ids=_ids)
def test_domain_imports_only_the_standard_library_and_the_domain(path: Path) -> None:
    offending = {
        name for name in imported_modules(path)
        if not (name.split(".")[0] in sys.stdlib_module_names or name == "__future__"
                or name == "reckai.domain" or name.startswith("reckai.domain."))
    }
    assert offending == set(), f"{_ids(path)} imports {sorted(offending)}"


@pytest.mark.parametrize("path", modules_under("application"), ids=_ids)
def test_application_imports_no_framework_driver_adapter_entrypoint_or_settings(path: Path) -> None:
    offending = {
        name for name in imported_modules(path)
        if name.split(".")[0] in FRAMEWORKS_AND_DRIVERS
        or name.startswith(("reckai.adapters", "reckai.entrypoints", "reckai.bootstrap"))
        or name == "reckai.settings"
    }
    assert offending == set(), f"{_ids(path)} imports {sorted(offending)}"


@pytest.mark.parametrize("path", modules_under("adapters"), ids=_ids)
def test_adapters_import_no_entrypoint_nor_the_composition_root(path: Path) -> None:
    offending = {name for name in imported_modules(path)
                 if name.startswith(("reckai.entrypoints", "reckai.bootstrap"))}
    assert offending == set(), f"{_ids(path)} imports {sorted(offending)}"


@pytest.mark.parametrize("root", ["bootstrap.py", "bootstrap_matching.py"])
def test_bootstrap_imports_no_entrypoint(root: str) -> None:
    offending = {name for name in imported_modules(SRC / root) if name.startswith("reckai.entrypoints")}
    assert offending == set(), f"{root} imports {sorted(offending)}"


def test_reckai_reconcile_imports_neither_the_container_nor_the_server() -> None:
    """`reckai reconcile` pays only for what it runs (bootstrap_matching.py): the container's
    modules cost ~0.4 s of CPU at import, ~7 % of a 1M x 1M run."""
    sample = ROOT / "tests" / "data" / "card-vs-bank-a"
    code = (
        "import sys, tempfile\n"
        "from reckai.entrypoints.cli.main import main\n"
        f"status = main(['reconcile', '--left', {str(sample / 'bank.csv')!r}, '--right', "
        f"{str(sample / 'switch.csv')!r}, '--profile', {str(ROOT / 'examples/profiles/card-vs-bank-a.json')!r}, "
        "'--out', tempfile.mkdtemp()])\n"
        "heavy = sorted(m for m in sys.modules if m in ('reckai.bootstrap', 'litestar', 'dramatiq', 'redis', "
        "'ofxtools', 'xlsxwriter'))\n"
        "print(status, heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stdout + done.stderr


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        graph[module_name(path)] = {name for name in imported_modules(path) if name in modules}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a module importing itself),
    by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def connect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def test_no_import_cycle_between_modules() -> None:
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles (function-local imports included):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles)


def test_the_cycle_finder_finds_a_cycle_and_ignores_type_checking_imports(tmp_path: Path) -> None:
    # Guards the checker itself: a real cycle is reported, a DAG is not.
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\ndef f():\n    import y\n")
    assert [alias.name for node in _runtime_imports(tree) if isinstance(node, ast.Import) for alias in node.names] == ["y"]


def test_the_rule_is_checked_on_real_modules() -> None:
    # Guards against the globs silently matching nothing after a move.
    assert len(modules_under("domain")) > 20
    assert len(modules_under("application")) > 10
    assert len(modules_under("adapters")) > 20
    assert "reckai.bootstrap" in import_graph()


SEAM_PARAMETERS = {"uow", "database", "container", "services", "caller"}


def _mentions_any(annotation: ast.expr | None) -> bool:
    return annotation is not None and any(
        (isinstance(node, ast.Name) and node.id == "Any") or (isinstance(node, ast.Attribute) and node.attr == "Any")
        or (isinstance(node, ast.Constant) and isinstance(node.value, str) and "Any" in node.value)
        for node in ast.walk(annotation))


def untyped_seams(source: str, label: str) -> list[str]:
    """Parameters named like a seam (uow, database, container, services, caller) annotated with Any."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                if argument.arg in SEAM_PARAMETERS and _mentions_any(argument.annotation):
                    found.append(f"{label}:{argument.lineno} {argument.arg}")
    return found


def test_no_seam_parameter_is_typed_any() -> None:
    offending = [seam for package in ("application", "entrypoints") for path in modules_under(package)
                 for seam in untyped_seams(path.read_text(), _ids(path))]
    assert offending == [], "parameters typed Any where a port or the container belongs:\n" + "\n".join(offending)


def test_the_seam_check_sees_an_any_parameter() -> None:
    source = "from typing import Any\ndef f(uow: Any, services: 'Any', other: Any, caller: 'Caller') -> None: ...\n"
    assert untyped_seams(source, "sample") == ["sample:2 uow", "sample:2 services"]
