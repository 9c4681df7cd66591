"""The package's shape: imports that run one way, and a map of it (docs/architecture.md) that is true."""

import ast
import re
from pathlib import Path

from advconv.config import SETTINGS

from .conftest import REPO

PACKAGE = REPO / "src" / "advconv"
FOUNDATION = {"config", "errors", "files", "runtime", "recipes"}  # any part may use these; they use only each other
USES = {  # each folder, and the folders it may import: none imports one that uses it
    "nets": set(), "data": set(), "trained": {"nets", "data"}, "training": {"nets", "data", "trained"},
    "page": {"nets", "data", "trained"}, "search": {"nets", "data", "trained", "training"},
    "": {"nets", "data", "trained", "training", "page", "search"},  # api, cli
}


def modules() -> dict[str, Path]:
    """Every module by its dotted name under advconv ("nets.blocks", "config", "recipes")."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name:
            found[name] = path
    return found


def imports_within_the_package() -> dict[str, set[str]]:
    """Each module and the package's modules it imports, at its top or inside a function."""
    known, graph = modules(), {}
    for name, path in known.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
                candidates = [f"{stem}.{a.name}".strip(".") for a in node.names] + [stem]
                found |= {c for c in candidates if c in known}
        graph[name] = found - {name}
    return graph


def folder_of(module: str) -> str:
    """The folder a module sits in ("" for the top: the API, the command and the foundation)."""
    head = module.split(".")[0]
    return head if head in USES else ""


def test_each_folder_imports_only_the_folders_it_builds_on():
    wrong = []
    for module, deps in imports_within_the_package().items():
        for dep in deps:
            if dep.split(".")[0] in FOUNDATION or folder_of(dep) == folder_of(module):
                allowed = module.split(".")[0] not in FOUNDATION or dep.split(".")[0] in FOUNDATION
            else:
                allowed = module.split(".")[0] not in FOUNDATION and folder_of(dep) in USES[folder_of(module)]
            if not allowed:
                wrong.append(f"{module} imports {dep}")
    assert wrong == []


def test_using_a_trained_net_never_imports_training():
    graph = imports_within_the_package()
    assert not [m for m in graph if m.startswith("trained.") and any(d.startswith("training") for d in graph[m])]


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
    named = set(re.findall(r"`((?:\w+/)?\w+)\.py`", text)) - {"tests/test_layout"}
    files = {str(p.relative_to(PACKAGE).with_suffix("")) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    assert named == files  # every module, and no other
    known = modules()
    for module, name in re.findall(r"\b([a-z_]+)\.([A-Za-z_]+)\b", text):
        if name in ("py", "json", "pt", "md", "yaml") or f"{module}.{name}" in SETTINGS:  # a file, or a config field
            continue
        home = next((m for m in known if m.split(".")[-1] == module), None)
        if home is not None:
            source = known[home].read_text()
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
    """Or was shipped under that name: a tag whose recipe was renamed still loads."""
    from advconv.nets.specs import MODELS
    from advconv.trained.hub import is_shipped

    files = ("py", "yaml", "json", "safetensors", "int8", "onnx", "pt", "ipynb", "log", "png", "csv", "md")
    unknown = [f"{page.name}: {arch}.{recipe}" for page in PAGES
               for arch, recipe in re.findall(r"\b([a-z0-9_]+)\.([a-z0-9_]+)\b", page.read_text())
               if arch in MODELS and recipe not in files and not is_shipped(f"{arch}.{recipe}")]
    assert unknown == []
