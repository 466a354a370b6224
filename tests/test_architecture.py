"""The code base as a map: apps import one way, layers one way, no cycle, small parts.

The apps, lowest first: `sparkexport` (settings, plumbing: errors, snapshots, storage, queue),
`tenants` (tenants, credentials, the catalog), `exports` (jobs, packages, imports). A module
may import its own app and the apps below it, never one above (docs/architecture.md). Inside
each app, `api` packages are the top layer: only other `api` modules and URLconfs import them.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ["sparkexport", "tenants", "exports"]  # lowest first
PURE = ["tenants/naming.py", "tenants/artifacts.py", "sparkexport/zip_paths.py", "exports/packages/format.py",
        "exports/packages/writer.py", "exports/packages/reader/zip_safety.py",
        "exports/packages/reader/contents.py", "exports/packages/reader/versions.py",
        "exports/packages/reader/model.py", "exports/packages/reader/metadata.py", "sparkexport/json_input.py"]
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


def with_parents(module: str, modules) -> set[str]:
    """Importing a.b.c runs a/__init__ and a/b/__init__ first: they are imported too."""
    parts = module.split(".")
    return {".".join(parts[:n]) for n in range(1, len(parts) + 1)} & modules.keys()


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = product_modules()
    edges = {}
    for name, path in modules.items():
        imported = set()
        for imp in imports_of(path, name):
            imported |= with_parents(imp, modules)
        # A module's own packages are initialised before it: not edges of its own.
        edges[name] = imported - with_parents(name, modules)
    return edges


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


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's components of more than one module: every import cycle lies inside one."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_import_cycle(graph):
    assert strongly_connected(graph) == []


def test_the_cycle_check_finds_a_cycle_through_a_package():
    assert strongly_connected({"p": {"p.a", "x"}, "p.a": {"p"}, "x": {"p.a"}}) == [{"p", "p.a", "x"}]


def module_of(path: str) -> str:
    parts = Path(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", PURE)
def test_pure_modules_import_no_django(path, graph):
    """Nor does anything they import, their packages' __init__ modules included."""
    modules = product_modules()
    seen, todo = set(), [module_of(path)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += graph[module] | with_parents(module, modules)
    third_party = {imp.split(".")[0] for module in seen for imp in imports_of(modules[module], module)}
    assert not third_party & {"django", "rest_framework", "oauth2_provider", "django_rq"}, sorted(seen)


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
