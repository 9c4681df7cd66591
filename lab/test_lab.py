"""The lab's own check (`python -m pytest lab`), apart from the toolkit's tests: its configs, its
ledger, the figures `advconv recipes` quotes from its logs, and its links."""

import csv
import re
import subprocess
from pathlib import Path

import pytest

from advconv import recipes
from advconv.api import resolve_model
from advconv.config import load_config, parse_yaml, validate_config
from advconv.nets.models import validate_spec
from advconv.nets.rules import check_rules
from advconv.nets.specs import resolve_spec

LAB = Path(__file__).resolve().parent
REPO = LAB.parent
CONFIGS = sorted((LAB / "configs").rglob("*.yaml"))
PEERS = sorted((LAB / "configs" / "peers").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_each_config_stands_alone_or_on_one_recipe_and_builds(path):
    base = parse_yaml(path.read_text()).get("base")
    assert base is None or base in recipes.names(), f"base: {base} is not a shipped recipe"
    cfg = load_config(path)
    validate_config(cfg)
    validate_spec(resolve_spec(cfg.model), cfg.data.image_size, cfg.max_params)


def test_the_peers_fail_only_the_rules_their_files_name():
    failed = {p.name: [r.rule for r in check_rules(resolve_model(str(p))).results if not r.passed] for p in PEERS}
    assert failed == {"netdilated.yaml": ["C1 C2 C3 C4 then the output, C1-C3 close strided or dilated"],
                      "reference.yaml": []}


def ledger_rows() -> list[list[str]]:
    text = (LAB / "results" / "experiments.md").read_text()
    return [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines() if re.match(r"\| \d", line)]


def test_every_ledger_row_names_the_commit_it_ran_at():
    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=REPO, capture_output=True,
                             text=True).stdout.strip() != "false"
    for row in ledger_rows():
        commit = re.fullmatch(r"`([0-9a-f]{7,40})`", row[-1])
        assert commit, f"row {row[0]} names no commit"
        if not shallow:
            found = subprocess.run(["git", "cat-file", "-e", f"{commit[1]}^{{commit}}"], cwd=REPO)
            assert found.returncode == 0, f"row {row[0]}: no commit {commit[1]}"


RUNS = {"default": "assignment9_stem8", "fast": "fast_muon/seed0", "accurate": "best", "accurate_long": "best_long"}


@pytest.mark.parametrize("name", recipes.names())
def test_what_advconv_recipes_quotes_is_the_last_epoch_of_a_logged_run(name):
    measured = recipes.measured()[name]
    if name in RUNS:
        last = list(csv.DictReader((LAB / "results" / RUNS[name] / "metrics.csv").open()))[-1]
        accuracy, seconds = float(last[f"{measured.split}_acc"]), float(last["elapsed_s"])
    else:  # the teacher, measured on its validation split: its log's last epoch line
        log = (LAB / "results" / "experiments" / "teacher_val_15ep.log").read_text()
        epoch = re.findall(r"val loss [\d.]+ acc ([\d.]+)%.*\(elapsed ([\d.]+) s\)", log)[-1]
        accuracy, seconds = map(float, epoch)
    assert (measured.accuracy, measured.minutes) == (accuracy, round(seconds / 60, 1))


def test_every_link_on_a_page_leads_somewhere():
    pages = [REPO / "README.md", *(REPO / "docs").glob("*.md"), *LAB.rglob("*.md")]
    broken = [f"{page.relative_to(REPO)}: {target}" for page in pages
              for target in re.findall(r"\]\(([^)#\s]+)", page.read_text())
              if "://" not in target and not (page.parent / target).exists()]
    assert broken == []


def test_every_lab_path_a_page_names_exists():
    pages = [REPO / "README.md", *(REPO / "docs").glob("*.md"), *LAB.glob("*.md")]
    missing = [f"{page.relative_to(REPO)}: {path}" for page in pages
               for path in re.findall(r"[(`\s](lab/[\w./-]*\w)", page.read_text()) if not (REPO / path).exists()]
    assert missing == []
