"""The shape of the code, checked: the API's modules import each other without cycles, its domains use only the
shared lower layers (never another domain), its modules stay small enough to read in one sitting, and no test
module imports another test module (shared helpers live in tests/support). Benchmarks import nothing from tests/,
and the server's distribution depends only on what its code imports."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FRONTEND = REPO_ROOT / "frontend"
PACKAGE = "visualizr.frontend"
DOMAINS = ("generation", "models", "assets", "system", "studio", "characters")
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(FRONTEND).with_suffix("").parts
    return ".".join((PACKAGE, *(p for p in parts if p != "__init__")))


def frontend_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(FRONTEND.rglob("*.py"))}


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """The frontend modules ``path`` imports at module level (TYPE_CHECKING blocks included: a cycle there is still
    a tangle)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(name for name in names if name in known)
    return found


def graph() -> dict[str, set[str]]:
    known = frontend_modules()
    return {name: imports_of(path, known) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def domain_of(module: str) -> str | None:
    parts = module.removeprefix(PACKAGE + ".").split(".")
    return parts[0] if parts[0] in DOMAINS else None


def test_no_import_cycles_between_frontend_modules() -> None:
    assert cycles(graph()) == []


def test_a_cycle_is_found_when_there_is_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_domains_use_lower_layers_never_each_other() -> None:
    crossings = {
        (module, target)
        for module, targets in graph().items()
        for target in targets
        if domain_of(module) and domain_of(target) and domain_of(module) != domain_of(target)
    }
    assert crossings == set()


def test_lower_layers_import_no_domain() -> None:
    upward = {
        (module, target)
        for module, targets in graph().items()
        if domain_of(module) is None and not module.endswith(".app") and module != f"{PACKAGE}.__main__"
        for target in targets
        if domain_of(target)
    }
    assert upward == set()


def test_frontend_modules_are_small() -> None:
    lines = {name: len(path.read_text().splitlines()) for name, path in frontend_modules().items()}
    assert {name: n for name, n in lines.items() if n > MAX_LINES} == {}


def test_no_test_module_imports_another() -> None:
    tests_dir = REPO_ROOT / "tests"
    offenders = {}
    for path in sorted(tests_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                target = node.module.split(".")
                if target[0].startswith("test_") or (target[0] == "tests" and target[1] != "support"):
                    offenders[path.name] = node.module
    assert offenders == {}


def top_level_imports(folder: Path) -> set[str]:
    """The top-level names every module under ``folder`` imports (absolute imports)."""
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
    return found


def test_benchmarks_import_nothing_from_tests() -> None:
    assert "tests" not in top_level_imports(REPO_ROOT / "benchmarks")


def test_the_server_depends_only_on_what_it_imports() -> None:
    """Every core dependency of pyproject.toml is imported by the server's code (visualizr/, frontend/, export/):
    the SDK and the HTTP clients the tests use belong to the dev extra."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_canonical(re.split(r"[\[<>=!~ ]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}
    imported = set().union(*(top_level_imports(REPO_ROOT / d) for d in ("visualizr", "frontend", "export")))
    distributions = importlib.metadata.packages_distributions()
    provided = {_canonical(dist) for name in imported for dist in distributions.get(name, ())}
    assert wanted - provided == set()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
