"""The package's layout rules (issue 16): no import cycle between its modules, the Hub bundle at the top level
imports only the top level, and no file of the repository edits the import path (`sys` . `path`)."""

from __future__ import annotations

import ast
from pathlib import Path

import modeling_speechct

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(modeling_speechct.__file__).parent


def module_name(path: Path, package_dir: Path) -> str:
    parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """module → the package modules it imports, at any depth of its code (a lazy import inside a function counts:
    a cycle through it is still a tangle, and breaks as soon as the import moves to the top)."""
    files = {module_name(p, package_dir): p for p in package_dir.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names]
            for target in targets:
                while target and target not in files:  # `a.b.c` names the deepest module that exists
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path `[a, b, …, a]`, or None (depth-first search with three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_through_a_lazy_relative_import(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub.b import f\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import g\n")
    assert find_cycle(import_graph(package)) == ["pkg.a", "pkg.sub.b", "pkg.a"]
    (package / "sub" / "b.py").write_text("def f():\n    return 1\n")
    assert find_cycle(import_graph(package)) is None


def test_no_import_cycle_between_the_package_modules():
    graph = import_graph(PACKAGE)
    assert len(graph) > 40 and "modeling_speechct.hub.publish" in graph["modeling_speechct.training.outputs"]
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))


def test_the_hub_bundle_imports_nothing_from_the_subpackages():
    """Remote code is the top level, flat: `trust_remote_code` copies a file and its relative imports by name, so
    a top-level module may import only other top-level modules."""
    graph = import_graph(PACKAGE)
    top = {module_name(p, PACKAGE) for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    assert "modeling_speechct.modeling_speechct_clip" in top and "modeling_speechct.data.tts" in graph
    leaks = {name: sorted(graph[name] - top) for name in sorted(top)}
    assert not {name: found for name, found in leaks.items() if found}


def test_no_python_file_of_the_repository_edits_the_import_path():
    offenders = []
    for path in ROOT.rglob("*.py"):
        if {".venv", ".git", "fixtures"} & set(path.relative_to(ROOT).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders
