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


PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]  # the pages a user reads (not the lab notebook)


def commands_on(text: str) -> tuple[list[str], list[str]]:
    """(the ``advconv ...`` command lines a page's code blocks show, with a prompt or a venv path
    before them and a comment after them left off; its inline mentions of commands)."""
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = re.sub(r"^\$ |^\S*/bin/", "", line.strip())
            if line.startswith("advconv ") and not re.match(r"advconv [\w-]+: ", line):  # not its output
                lines.append(line.split("  #")[0].split(" # ")[0].strip())
    return lines, re.findall(r"`(advconv [^`]+)`", text)


def test_every_command_on_a_page_parses_with_the_real_parser():
    """Command lines parse whole; an inline mention names a real subcommand and real options."""
    import shlex

    from advconv.cli import build_parser

    parser, broken = build_parser(), []
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    for page in PAGES:
        lines, mentions = commands_on(page.read_text())
        for command in lines:
            if "..." in command or "[" in command:  # a usage line, not a command
                continue
            try:
                parser.parse_args(shlex.split(command)[1:])
            except SystemExit as exc:
                if exc.code:  # --help and --version exit 0
                    broken.append(f"{page.name}: {command}")
        for mention in mentions:
            words = mention.split()
            sub = subcommands.get(words[1])
            options = [w.split("=")[0] for w in words[2:] if w.startswith("--")]
            if words[1].startswith("-"):
                continue
            if sub is None or any(o not in sub._option_string_actions for o in options):
                broken.append(f"{page.name}: `{mention}`")
    assert broken == []


def test_every_file_a_page_names_exists():
    roots = ("docs/", "examples/", "tests/", "src/")  # the lab's paths are the lab check's
    pattern = r"[(`\s]((?:%s)[\w./-]*\w)" % "|".join(map(re.escape, roots))
    missing = [f"{page.name}: {path}" for page in PAGES for path in re.findall(pattern, page.read_text())
               if not (REPO / path).exists()]
    assert missing == []


def test_every_shipped_tag_a_page_names_is_shipped():
    from advconv.hub import shipped_tags
    from advconv.models import MODELS

    files = ("py", "yaml", "json", "safetensors", "int8", "onnx", "pt", "ipynb", "log", "png", "csv", "md")
    unknown = [f"{page.name}: {arch}.{recipe}" for page in PAGES
               for arch, recipe in re.findall(r"\b([a-z0-9_]+)\.([a-z0-9_]+)\b", page.read_text())
               if arch in MODELS and recipe not in files and f"{arch}.{recipe}" not in shipped_tags()]
    assert unknown == []
