"""The package's shape: no import cycle, argparse only in the command line, no module reaching into another's
private helpers. Read from the source (every import, the ones inside functions too), nothing imported."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "scalearn_lite"


def module_name(path: Path) -> str:
    """scalearn_lite/transfer.py → "transfer", scalearn_lite/data/readers.py → "data.readers",
    scalearn_lite/data/__init__.py → "data" (the package's own __init__.py: "__init__")."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(parts) or "__init__"


MODULES = {module_name(p): ast.parse(p.read_text(), filename=str(p)) for p in sorted(PACKAGE.rglob("*.py"))}
PACKAGES = {m for m in MODULES if (PACKAGE / m.replace(".", "/") / "__init__.py").is_file()}


def imports_of(tree: ast.AST, module: str = "") -> dict:
    """{module of this package: [imported names]} for every import of the package in `tree`, relative ones resolved
    from `module` (`from . import x` → x, `from ..tasks import y` in data.readers → tasks)."""
    home = module.split(".") if module in PACKAGES else module.split(".")[:-1]
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            base = home[:len(home) - (node.level - 1)] if node.level > 1 else home
            if node.module:
                found.setdefault(".".join(base + node.module.split(".")), []).extend(a.name for a in node.names)
            else:
                for a in node.names:
                    found.setdefault(".".join(base + [a.name]), [])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("scalearn_lite."):
                    found.setdefault(a.name.split(".", 1)[1], [])
    return {m: names for m, names in found.items() if m in MODULES}


def find_cycle(graph: dict):
    """One import cycle as [a, b, ..., a], or None (depth-first search with the path on a stack)."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None


def test_no_import_cycle_between_the_package_modules():
    graph = {m: set(imports_of(tree, m)) - {m, "__init__"} for m, tree in MODULES.items() if m != "__init__"}
    assert graph["data"] >= {"data.readers", "data.splits"} and "tasks" in graph["data.readers"]  # packages resolved
    assert find_cycle(graph) is None, f"import cycle: {' → '.join(find_cycle(graph))}"


def test_argparse_lives_only_in_the_command_line():
    users = sorted(m for m, tree in MODULES.items() if any(
        isinstance(n, ast.Import) and any(a.name == "argparse" for a in n.names)
        or isinstance(n, ast.ImportFrom) and n.module == "argparse" for n in ast.walk(tree)))
    assert users == ["cli"], f"argparse outside cli.py: {[m for m in users if m != 'cli']}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "__init__"))
def test_no_module_imports_another_modules_private_names(module):
    tree = MODULES[module]
    private = [f"{src}.{n}" for src, names in imports_of(tree, module).items() for n in names
               if n.startswith("_") and not n.startswith("__")]
    # and `from . import data as data_mod` ... data_mod._helper(): an attribute read on an imported package module
    aliases = {a.asname or a.name: a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1
               and not n.module for a in n.names if a.name in MODULES}
    private += [f"{aliases[n.value.id]}.{n.attr}" for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name) and n.value.id in aliases and n.attr.startswith("_")
                and not n.attr.startswith("__")]
    assert not private, f"{module}.py uses private helpers of other modules: {sorted(set(private))}"


def test_every_package_folder_is_packaged():
    """A sub-package missing from pyproject's `packages` would be left out of a wheel (only editable installs work)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {"scalearn_lite"} | {f"scalearn_lite.{m}" for m in PACKAGES}
    assert folders == listed, f"pyproject.toml packages {sorted(listed)} but package folders {sorted(folders)}"


def test_no_module_is_named_like_a_standard_library_module():
    """A module named io.py, types.py, ... shadows the standard library for every file beside it (sources.py had to
    write `import io as _io`): a name of its own says what it holds, and nothing needs an alias."""
    import sys

    clashes = sorted(m for m in MODULES for part in m.split(".") if part in sys.stdlib_module_names)
    assert not clashes, f"modules named like standard-library modules: {clashes}"
    tests_named = sorted(p.stem for p in (ROOT / "tests").glob("*.py") if p.stem in sys.stdlib_module_names)
    assert not tests_named, f"test helpers named like standard-library modules: {tests_named}"


def test_modules_stay_readable_in_size():
    """One idea a module: none over ~400 lines, except the ones listed here with the one idea that needs the room."""
    one_idea = {"cli": "the argparse parser and one thin handler per command"}
    sizes = {m: len((PACKAGE / (m.replace(".", "/") + ("/__init__.py" if m in PACKAGES else ".py"))).read_text()
                    .splitlines()) for m in MODULES if m != "__init__"}
    over = {m: n for m, n in sizes.items() if n > 420 and m not in one_idea}
    assert not over, f"modules over ~400 lines (split them, or say which one idea needs the room): {over}"
