"""The package's shape: no import cycle, argparse only in the command line, no module reaching into another's
private helpers. Read from the source (every import, the ones inside functions too), nothing imported."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "scalearn_lite"
MODULES = {p.stem: ast.parse(p.read_text(), filename=str(p)) for p in sorted(PACKAGE.glob("*.py"))}


def imports_of(tree: ast.AST) -> dict:
    """{module of this package: [imported names]} for every relative import in `tree` (`from . import x` → x)."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.setdefault(node.module.split(".")[0], []).extend(a.name for a in node.names)
            else:
                for a in node.names:
                    found.setdefault(a.name, [])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("scalearn_lite."):
                    found.setdefault(a.name.split(".")[1], [])
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
    graph = {m: set(imports_of(tree)) - {m, "__init__"} for m, tree in MODULES.items() if m != "__init__"}
    assert find_cycle(graph) is None, f"import cycle: {' → '.join(find_cycle(graph))}"


def test_argparse_lives_only_in_the_command_line():
    users = sorted(m for m, tree in MODULES.items() if any(
        isinstance(n, ast.Import) and any(a.name == "argparse" for a in n.names)
        or isinstance(n, ast.ImportFrom) and n.module == "argparse" for n in ast.walk(tree)))
    assert users == ["cli"], f"argparse outside cli.py: {[m for m in users if m != 'cli']}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "__init__"))
def test_no_module_imports_another_modules_private_names(module):
    tree = MODULES[module]
    private = [f"{src}.{n}" for src, names in imports_of(tree).items() for n in names
               if n.startswith("_") and not n.startswith("__")]
    # and `from . import data as data_mod` ... data_mod._helper(): an attribute read on an imported package module
    aliases = {a.asname or a.name: a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1
               and not n.module for a in n.names if a.name in MODULES}
    private += [f"{aliases[n.value.id]}.{n.attr}" for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name) and n.value.id in aliases and n.attr.startswith("_")
                and not n.attr.startswith("__")]
    assert not private, f"{module}.py uses private helpers of other modules: {sorted(set(private))}"
