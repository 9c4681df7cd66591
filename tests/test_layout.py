"""The package's shape: imports that run one way, and a map of it (docs/architecture.md) that is true."""

import ast
import re

from advconv.config import SETTINGS

from .conftest import REPO

PACKAGE = REPO / "src" / "advconv"


def imports_within_the_package() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        graph[path.stem] = {m for m in found if (PACKAGE / f"{m}.py").exists()} - {path.stem}
    return graph


def test_the_import_graph_has_no_cycle():
    graph, done, path = imports_within_the_package(), set(), []

    def visit(module: str) -> None:
        assert module not in path, " -> ".join(path[path.index(module):] + [module])
        if module in done:
            return
        path.append(module)
        for dep in sorted(graph[module]):
            visit(dep)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_the_architecture_page_names_only_what_exists():
    text = (REPO / "docs" / "architecture.md").read_text()
    modules = set(re.findall(r"`(\w+)\.py`", text))
    assert modules == {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}  # every module, and no other
    for module, name in re.findall(r"\b([a-z_]+)\.([A-Za-z_]+)\b", text):
        if name in ("py", "json", "pt", "md") or f"{module}.{name}" in SETTINGS:  # a file, or a config field
            continue
        if (PACKAGE / f"{module}.py").exists():
            source = (PACKAGE / f"{module}.py").read_text()
            assert re.search(rf"^(def|class) {name}\b|^{name}\b[^=\n]*=", source, re.M), f"{module}.{name}"
