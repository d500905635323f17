"""dvc.yaml deps cover the code each stage runs: every module its script imports, transitively inside `realfake`.

A module the stage imports but does not list would let an edit to it re-run nothing and leave stale outputs.
Imports are read with `ast` (nothing is executed), including the ones inside functions.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "realfake"
SCRIPT = re.compile(r"\bpython\s+(stages/\S+\.py)")


def stages() -> dict[str, dict]:
    """Every stage of dvc.yaml by name, foreach stages by their template (`do`)."""
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: body.get("do", body) for name, body in spec.items()}


def module_file(module: str) -> Path | None:
    """The source file of a dotted module inside the package (its __init__.py for a package), else None."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    """The dotted name of a package source file."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Dotted names of everything `path` imports, at any depth of the file (lazy imports count)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: only package files have them
                package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return found


def with_parents(module: str) -> list[str]:
    """A module and every package above it: importing a.b.c runs a/__init__, a/b/__init__ and a/b/c."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def package_closure(script: Path) -> set[Path]:
    """The package files `script` runs when imported: its imports, theirs, and the packages above them."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for module in imported_modules(todo.pop()):
            for name in with_parents(module):
                path = module_file(name)
                if path is not None and path not in seen:
                    seen.add(path)
                    todo.append(path)
    return seen


def covered(path: Path, deps: list[str]) -> bool:
    """Whether a dep names the file or a directory above it."""
    rel = PurePosixPath(path.relative_to(REPO).as_posix())
    return any(rel == PurePosixPath(d) or PurePosixPath(d) in rel.parents for d in deps)


def dep_paths(stage: dict) -> list[str]:
    """The stage's deps as plain paths (a dep may be written as a one-key mapping)."""
    return [next(iter(d)) if isinstance(d, dict) else str(d) for d in stage.get("deps", [])]


STAGES = stages()
TOP_INIT = REPO / PACKAGE / "__init__.py"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_every_package_module_its_script_imports(name):
    stage = STAGES[name]
    match = SCRIPT.search(stage["cmd"])
    assert match, f"stage {name}: no `python stages/<x>.py` in its cmd {stage['cmd']!r}"
    script = REPO / match.group(1)
    deps = dep_paths(stage)
    assert covered(script, deps), f"stage {name}: deps do not list its script {match.group(1)}"
    # realfake/__init__.py runs for every stage; it is kept import-free (checked below) instead of listed 9 times
    missing = sorted(module_name(p) for p in package_closure(script) - {TOP_INIT} if not covered(p, deps))
    assert not missing, (f"stage {name} imports {', '.join(missing)} but its deps in dvc.yaml do not cover "
                         f"{'it' if len(missing) == 1 else 'them'}: add the package directory")


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_name_no_package_the_stage_does_not_run(name):
    """A package dep the script never imports re-runs the stage for nothing (resize once re-ran with every MTCNN edit)."""
    stage = STAGES[name]
    closure = package_closure(REPO / SCRIPT.search(stage["cmd"]).group(1))
    extra = [d for d in dep_paths(stage) if d.startswith(PACKAGE + "/") and (REPO / d).is_dir()
             and not any(covered(p, [d]) for p in closure)]
    assert not extra, f"stage {name}: deps list {extra} but its script imports nothing from there"


def test_editing_resize_does_not_rerun_faces_and_editing_faces_does_not_rerun_resize():
    deps = {name: dep_paths(STAGES[name]) for name in ("faces", "resize")}
    assert "realfake/resize" not in deps["faces"] and "realfake/faces" not in deps["resize"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_code_deps_exist(name):
    code = [d for d in dep_paths(STAGES[name]) if d.split("/")[0] in (PACKAGE, "stages") and "${" not in d]
    missing = [d for d in code if not (REPO / d).exists()]
    assert not missing, f"stage {name}: deps name code that does not exist: {missing}"


def test_top_level_init_imports_nothing():
    """realfake/__init__.py is in no stage's deps, so it must not pull in code that could change an output."""
    tree = ast.parse(TOP_INIT.read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) and getattr(n, "module", None) != "__future__"]
    assert not imports, "realfake/__init__.py imports modules: list it in every stage's deps or move the import"


def test_the_resolver_follows_from_imports_of_submodules_and_lazy_imports(tmp_path):
    """The resolver itself: `from realfake import x`, parent packages and imports inside functions count."""
    script = tmp_path / "s.py"
    script.write_text("def main():\n    from realfake.dedupe import pipeline\n")
    found = {module_name(p) for p in package_closure(script)}
    assert {"realfake", "realfake.dedupe", "realfake.dedupe.pipeline"} <= found


# ---------------------------------------------------------------- the arrows between packages

# Which stage packages each package may import (besides itself and core): the pipeline order, one way.
ALLOWED = {
    "core": set(),
    "ingest": set(),
    "faces": set(),
    "resize": set(),
    "crops": {"faces"},  # the faces stage's alignment and warp: the context view is cut the same way
    "dedupe": set(),
    "attributes": set(),
    "metadata": {"attributes"},  # face measures
    "sample": {"crops"},  # the view record and which view to pack (realfake/sample/views.py)
    "detector": set(),
    "evaluation": {"detector"},  # scores the test split with the trained checkpoint
    # `realfake serve`: a front end over realfake.predict (None: the top-level modules) and the detector's Grad-CAM
    "serve": {None, "detector"},
}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (REPO / PACKAGE / parts[1]).is_dir()) else None


def test_packages_import_only_core_and_earlier_stages():
    wrong = []
    for path in sorted((REPO / PACKAGE).glob("*/*.py")):
        pkg = path.parent.name
        for module in imported_modules(path):
            if module_file(module) is None or not module.startswith(PACKAGE + "."):
                continue
            other = package_of(module)
            if other != pkg and other not in ({"core"} - {pkg}) | ALLOWED[pkg]:
                wrong.append(f"{module_name(path)} imports {module}")
    assert not wrong, "imports against the layout (stages/ -> packages -> core):\n" + "\n".join(wrong)


def test_predict_imports_only_core_faces_crops_and_detector():
    closure = {module_name(p) for p in package_closure(REPO / PACKAGE / "predict.py")}
    outside = sorted(m for m in closure if m != PACKAGE and package_of(m) not in ("core", "faces", "crops", "detector")
                     and not m.startswith(f"{PACKAGE}.predict_"))  # its own parts: predict_inputs, predict_output
    assert not outside, f"realfake.predict pulls in stage modules: {outside}"


# ---------------------------------------------------------------- no import cycles between modules


def import_graph(root: Path) -> dict[str, set[str]]:
    """Every module under `root` (a package directory) and the modules of the same tree it imports.

    All imports count: top-level, inside functions and under `if TYPE_CHECKING:`; a cycle hidden in a lazy import
    is still two modules that cannot be read (or moved) one without the other.
    """
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path)
        targets = (module_file(m) for m in imported_modules(path))
        graph[name] = {module_name(t) for t in targets if t is not None} - {name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted: every import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def test_no_import_cycle_between_modules_of_the_package():
    cycles = import_cycles(import_graph(REPO / PACKAGE))
    assert not cycles, "import cycles (move the shared part into a module both import):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_constructed_cycle(tmp_path, monkeypatch):
    """Three modules a -> b -> c -> a (one import lazy, one under TYPE_CHECKING) and a bystander d -> a."""
    pkg = tmp_path / PACKAGE / "demo"
    pkg.mkdir(parents=True)
    (tmp_path / PACKAGE / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from realfake.demo.b import x\n")
    (pkg / "b.py").write_text("def f():\n    from realfake.demo import c\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n")
    (pkg / "d.py").write_text("import realfake.demo.a\n")
    monkeypatch.setitem(globals(), "REPO", tmp_path)  # module_file and module_name resolve against REPO
    assert import_cycles(import_graph(tmp_path / PACKAGE)) == [["realfake.demo.a", "realfake.demo.b", "realfake.demo.c"]]
    (pkg / "c.py").write_text("")
    assert import_cycles(import_graph(tmp_path / PACKAGE)) == []


def test_no_module_of_the_package_is_over_300_lines():
    """A module a newcomer can read in one sitting: split by what its parts do (see realfake/attributes)."""
    long = {p.relative_to(REPO).as_posix(): len(p.read_text().splitlines()) for p in (REPO / PACKAGE).rglob("*.py")}
    over = sorted(f"{path} ({n} lines)" for path, n in long.items() if n > 300)
    assert not over, "modules over 300 lines:\n" + "\n".join(over)


def test_no_function_of_the_package_is_over_60_lines():
    """A function a newcomer can hold in their head (its docstring included): split it by its steps."""
    over = []
    for path in sorted((REPO / PACKAGE).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    over.append(f"{path.relative_to(REPO).as_posix()}:{node.lineno} {node.name} ({lines} lines)")
    assert not over, "functions over 60 lines:\n" + "\n".join(over)
