"""The code base as a map: apps import one way, layers one way, no cycle, small parts.

The apps, lowest first: `sparkexport` (settings, plumbing: errors, snapshots, storage, queue),
`tenants` (tenants, credentials, the catalog), `exports` (jobs, packages, imports). A module
may import its own app and the apps below it, never one above (docs/architecture.md). Inside
each app, `api` packages are the top layer: only other `api` modules and URLconfs import them.
"""
import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ["sparkexport", "tenants", "exports"]  # lowest first
PURE = ["tenants/naming.py", "tenants/artifacts.py", "sparkexport/zip_paths.py", "exports/packages/format.py",
        "exports/packages/writer.py", "exports/packages/reader/zip_safety.py",
        "exports/packages/reader/contents.py", "exports/packages/reader/versions.py",
        "exports/packages/reader/model.py"]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def product_modules() -> dict[str, Path]:
    modules = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imports_of(path: Path, module: str) -> set[str]:
    """Every module `path` imports, at any depth of its code, resolved to product modules."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = product_modules()
    return {name: {imp for imp in imports_of(path, name) if imp in modules and imp != name} for name, path in modules.items()}


def app_of(module: str) -> str:
    return module.split(".")[0]


def test_apps_import_only_themselves_and_the_apps_below(graph):
    upward = [
        (module, imported)
        for module, imported_modules in graph.items()
        for imported in imported_modules
        if APPS.index(app_of(imported)) > APPS.index(app_of(module))
    ]
    assert not upward, upward


def is_api(module: str) -> bool:
    return "api" in module.split(".")[1:]


def test_only_api_modules_and_urlconfs_import_api_modules(graph):
    wrong = [
        (module, imported)
        for module, imported_modules in graph.items()
        for imported in imported_modules
        if is_api(imported) and not is_api(module) and not module.endswith(".urls")
    ]
    assert not wrong, wrong


def test_no_import_cycle(graph):
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the stack, 2 done
    cycles = []

    def visit(module, stack):
        state[module] = 1
        for imported in sorted(graph[module]):
            if state[imported] == 1:
                cycles.append(stack[stack.index(imported):] + [imported])
            elif state[imported] == 0:
                visit(imported, stack + [imported])
        state[module] = 2

    for module in sorted(graph):
        if state[module] == 0:
            visit(module, [module])
    # A package's __init__ importing its own modules is how packages expose their API.
    cycles = [cycle for cycle in cycles if not all(c.startswith(cycle[0] + ".") or c == cycle[0] for c in cycle[1:-1])]
    assert not cycles, cycles


@pytest.mark.parametrize("path", PURE)
def test_pure_modules_import_no_django(path):
    assert not {imp for imp in imports_of(ROOT / path, "") if imp.split(".")[0] in ("django", "rest_framework")}


def test_modules_and_functions_are_small():
    too_big = []
    for path in product_modules().values():
        source = path.read_text()
        if source.count("\n") > MAX_MODULE_LINES:
            too_big.append(f"{path.relative_to(ROOT)}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not too_big, too_big
