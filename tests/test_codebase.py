"""The shape of the code a newcomer reads: no import cycles, short modules (or a stated reason), the
deployed package apart from the local tools (inventory_devkit, and the local runtime localdlt, a distribution
of its own in runtime/), which the deployed wheel does not hold, and the runtime knowing nothing of the
product."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
RUNTIME_SRC = ROOT / "runtime" / "src"
SOURCES = (SRC, RUNTIME_SRC)
LONG = 400  # lines; a longer module says why at its top ("Long because: ...")


def _modules() -> dict[str, Path]:
    modules = {}
    for base, path in sorted((src, p) for src in SOURCES for p in src.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path], top_level_only: bool = False) -> set[str]:
    """The project modules `name` imports (function-level imports too, unless `top_level_only`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        for imported in names:
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                found.add(imported)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycles_are_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_long_modules_say_why() -> None:
    too_long = []
    for path in sorted(p for root in SOURCES for p in root.rglob("*.py")):
        lines = path.read_text().splitlines()
        docstring = ast.get_docstring(ast.parse("\n".join(lines))) or ""
        if len(lines) > LONG and "Long because:" not in docstring:
            too_long.append(f"{path.relative_to(ROOT)} ({len(lines)} lines)")
    assert too_long == []


def test_deployed_code_needs_no_local_tool_to_import() -> None:
    """Only the local commands of the CLI import the local tools (inventory_devkit, localdlt) when loaded
    (directly or through what they load); the rest of the deployed package reaches them, if at all, inside a
    function a local run calls."""
    from inventory_bronze.cli import LOCAL_COMMANDS

    modules = _modules()
    loads = {name: _imports(name, path, modules, top_level_only=True) for name, path in modules.items()}
    local = {f"inventory_bronze.cli.{c}" for c in LOCAL_COMMANDS}

    def reaches_devkit(name: str, seen: set[str]) -> bool:
        seen.add(name)
        for m in loads[name] | ({name.rpartition(".")[0]} - {""}):  # a module loads its package first
            if m.startswith(("inventory_devkit", "localdlt")) or (m not in seen and reaches_devkit(m, seen)):
                return True
        return False

    offenders = [
        name
        for name in modules
        if name.startswith("inventory_bronze") and name not in local and reaches_devkit(name, set())
    ]
    assert offenders == []


@pytest.mark.slow
def test_the_deployed_wheel_holds_no_local_tools(tmp_path: Path) -> None:
    """The bundle's artifact (databricks.yml: pip wheel of the project) and what the jobs install."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path, ROOT],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("inventory_bronze-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"inventory_bronze"}
    assert "inventory_bronze/bronze.py" in names and "inventory_bronze/source/capture.py" in names
    assert not [n for n in names if "devkit" in n or n.endswith(("server.py", "generator.py", "workload.py"))]


def test_the_runtime_knows_nothing_of_the_product() -> None:
    """localdlt stands alone: none of its modules imports the product or its local tools, or names the
    product's source database (the product adds its jars: inventory_bronze.spark_session)."""
    modules = _modules()
    runtime = {name: path for name, path in modules.items() if name.split(".")[0] == "localdlt"}
    reaches = {
        name: sorted(m for m in _imports(name, path, modules) if not m.startswith("localdlt"))
        for name, path in runtime.items()
    }
    assert {name: found for name, found in reaches.items() if found} == {}
    named = [
        str(path.relative_to(ROOT))
        for path in RUNTIME_SRC.rglob("*")
        if path.is_file()
        and path.suffix in (".py", ".sql", ".properties", ".java")
        and any(word in path.read_text().lower() for word in ("inventory", "postgres"))
    ]
    assert named == []


def test_the_product_uses_the_runtime_through_its_public_api() -> None:
    """The product and its tests reach localdlt only through what it publishes (its top-level names and
    the modules its docstring lists), so the runtime can change inside without breaking them."""
    import localdlt

    public_modules = {
        "localdlt.bundle",
        "localdlt.cli",
        "localdlt.environment",
        "localdlt.monitoring",
        "localdlt.testing",
    }
    public_names = set(localdlt.__all__) | {m.rpartition(".")[2] for m in public_modules}
    offenders = []
    for path in sorted([*SRC.rglob("*.py"), *(ROOT / "tests").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "localdlt":
                names = {a.name for a in node.names}
                if node.module == "localdlt" and names <= public_names or node.module in public_modules:
                    continue
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module} import {names}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "localdlt" and alias.name not in {
                        "localdlt",
                        *public_modules,
                    }:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} import {alias.name}")
    assert offenders == []
