"""The house's imports: no cycle between modules or between subpackages, and no
private name (or private module) imported from outside the package that defines it.

Every import statement counts, including those deferred into functions: a deferred
import still ties two modules together."""

import ast
from pathlib import Path

import pytest

import svrecon

ROOT = Path(svrecon.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _package_of(module: str) -> str:
    path = MODULES[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = _package_of(module).split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str):
    """``(target module, imported name or None)`` for every svrecon import of ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("svrecon"):
                    yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if not target.startswith("svrecon"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub, None) if sub in MODULES else (target, alias.name)


GRAPH = {m: sorted({t for t, _ in _imports(m) if t in MODULES and t != m}) for m in MODULES}


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _top(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_the_walker_sees_the_package():
    assert {"svrecon.fields.base", "svrecon.engine.trainer", "svrecon.cli.commands"} <= set(MODULES)
    assert "svrecon.fields.base" in GRAPH["svrecon.fields.gradients"]
    # A cycle planted in a copy of the graph is found.
    planted = {**GRAPH, "svrecon.fields.base": [*GRAPH["svrecon.fields.base"], "svrecon.engine"]}
    planted["svrecon.engine"] = [*GRAPH["svrecon.engine"], "svrecon.engine.trainer"]
    assert _cycles(planted)


def test_no_module_import_cycle():
    assert _cycles(GRAPH) == []


def test_no_subpackage_import_cycle():
    packages = {}
    for module, targets in GRAPH.items():
        src = _top(module)
        packages.setdefault(src, set()).update(_top(t) for t in targets if _top(t) != src)
    # svrecon/__init__ re-exports the subpackages; it is the root, not a layer.
    packages.pop("svrecon", None)
    graph = {k: sorted(v - {"svrecon"}) for k, v in packages.items()}
    assert _cycles(graph) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_crosses_a_package(module):
    here = _package_of(module)
    for target, name in _imports(module):
        private_module = any(part.startswith("_") and part != "__init__"
                             for part in target.split("."))  # fmt: skip
        private_name = name is not None and name.startswith("_")
        if private_module or private_name:
            owner = target.rpartition(".")[0] if private_module else _package_of(target)
            assert here == owner or here.startswith(owner + "."), (
                f"{module} imports private {target}{'.' + name if name else ''}"
            )


def test_import_svrecon_pays_only_for_what_it_uses():
    """Heavy optional modules are imported where they are used, not by `import svrecon`
    or `svrecon --help` (benchmarks/bench_import.py times it)."""
    import subprocess
    import sys

    code = (
        "import sys, svrecon, svrecon.cli\n"
        "heavy = ['torchvision', 'trimesh', 'matplotlib', 'open_clip', 'scipy.optimize',"
        " 'scipy.spatial', 'mcubes', 'PIL.Image']\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
