"""A clean install: importing adrecall changes nothing outside it, and its packages stand alone.

- Importing any product module leaves ``os.environ`` as it was (no ``HF_HUB_OFFLINE`` and the
  like set behind the caller's back; loaders pass ``local_files_only=True`` instead).
- No product module imports ``benchmarks``, which is not installed (it runs from the repository).
- The imports among product modules form no cycle (module level, nor inside functions).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_PACKAGES = (
    "adrecall", "retrieval", "rerank", "index_build", "encoder_training", "domain_adapt",
)


def _product_modules() -> dict[str, Path]:
    """Dotted name -> file of every product module (a package by its ``__init__.py``)."""
    modules: dict[str, Path] = {}
    for package in PRODUCT_PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            parts = list(file.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = file
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(
    module: str, file: Path, modules: dict[str, Path], *, module_level_only: bool
) -> set[str]:
    """The product modules ``module`` imports (``from a import b``: ``a.b`` when that is a
    module, else ``a``), skipping ``if TYPE_CHECKING:`` blocks and, when ``module_level_only``,
    function bodies."""
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if module_level_only and isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            ):
                continue
            if isinstance(child, ast.If) and _is_type_checking(child):
                for stmt in child.orelse:
                    visit(stmt)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names if alias.name in modules)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (child.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                for alias in child.names:
                    if f"{base}.{alias.name}" in modules:
                        found.add(f"{base}.{alias.name}")
                    elif base in modules:
                        found.add(base)
            visit(child)

    visit(ast.parse(file.read_text(encoding="utf-8"), str(file)))
    found.discard(module)
    return found


def _import_graph(*, module_level_only: bool) -> dict[str, set[str]]:
    """Product module -> the product modules it imports."""
    modules = _product_modules()
    return {
        module: _imports(module, file, modules, module_level_only=module_level_only)
        for module, file in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
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

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _described(graph: dict[str, set[str]], cycles: list[list[str]]) -> str:
    return "; ".join(
        ", ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c) for c in cycles
    )


def test_importing_the_product_leaves_the_environment_alone() -> None:
    script = """
import importlib, json, os, pkgutil, sys
before = dict(os.environ)
for package in sys.argv[1:]:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if not info.name.endswith(".__main__"):  # __main__ runs the command line
            importlib.import_module(info.name)
after = dict(os.environ)
print(json.dumps({k: [before.get(k), after.get(k)] for k in sorted(set(before) | set(after))
                  if before.get(k) != after.get(k)}))
"""
    # without the variables a module might setdefault, so that setting them would show
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "TOKENIZERS_", "TRANSFORMERS_", "SENTENCE_TRANSFORMERS_"))}
    done = subprocess.run(
        [sys.executable, "-c", script, *PRODUCT_PACKAGES], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    changed = json.loads(done.stdout.strip().splitlines()[-1])
    assert changed == {}, f"importing the product changed os.environ: {changed}"


def test_no_product_module_imports_benchmarks() -> None:
    offenders = []
    for module, file in _product_modules().items():
        tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            elif (
                isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
                and node.args and isinstance(node.args[0], ast.Constant)
            ):
                names = [str(node.args[0].value)]
            else:
                continue
            offenders += [f"{module}:{node.lineno} {n}" for n in names
                          if n == "benchmarks" or n.startswith("benchmarks.")]
    assert offenders == [], f"product code imports benchmarks (not installed): {offenders}"


def test_module_level_imports_form_no_cycle() -> None:
    graph = _import_graph(module_level_only=True)
    cycles = _cycles(graph)
    assert cycles == [], f"import cycles among product modules: {_described(graph, cycles)}"


def test_imports_inside_functions_form_no_cycle_either() -> None:
    """A deferred import hides a cycle at import time, but the two modules still need each
    other; the shared piece belongs in one of them (``if TYPE_CHECKING:`` imports excepted)."""
    graph = _import_graph(module_level_only=False)
    cycles = _cycles(graph)
    assert cycles == [], f"import cycles among product modules: {_described(graph, cycles)}"
