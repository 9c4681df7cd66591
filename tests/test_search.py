"""advconv search on the tiny dataset: studies that run, refuse rule-breakers untrained, resume
after a kill, share one SQLite file between two processes, and write a best config that trains."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna", reason="advconv search needs the search extra (optuna)")

from advconv.config import load_config
from advconv.errors import ConfigError
from advconv.nets.models import build_net
from advconv.nets.rules import check_rules
from advconv.nets.specs import resolve_spec
from advconv.search import findings, space, study
from advconv.training.train import fit

BUDGET = 0.02  # minutes: a few tiny epochs a trial
DENSE_ONLY = {  # a candidate with no depthwise-separable conv: a rule-breaker
    "stem": 0, "c1_width": 24, "c1_closes": "stride",
    "c2_width": 32, "c2_kind": "standard", "c2_dilation": 2, "c2_closes": "stride",
    "c3_width": 64, "c3_kind": "standard", "c3_dilation": 1, "c3_closes": "stride",
    "c4_width": 96, "c4_kind": "standard", "c4_dilation": 1, "activation": "relu",
    "optim.lr": 0.1, "optim.weight_decay": 5e-4, "optim.label_smoothing": 0.1, "batch_size": 256,
}


def base_config(tmp_path: Path, data: Path):
    return load_config("fast", {"data.path": str(data), "cache_dir": str(tmp_path / "cache"), "workers": 0})


def settings(tmp_path: Path, trials: int = 3) -> study.SearchSettings:
    return study.SearchSettings(BUDGET, trials, tmp_path / "out")


def rows(out: Path) -> list[dict]:
    with open(out / findings.CSV) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def searched(tmp_path_factory, image_folder):
    """A three-trial study whose first candidate breaks a rule, and every config it trained."""
    tmp = tmp_path_factory.mktemp("search")
    found = settings(tmp)
    found.out.mkdir()
    study.open_study(found).enqueue_trial(DENSE_ONLY)
    trained_configs = []

    def recording_fit(cfg, **kwargs):
        trained_configs.append(cfg)
        return fit(cfg, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(study, "fit", recording_fit)
        result = study.run_search(base_config(tmp, image_folder), found, say=lambda line: None)
    return result, trained_configs


def test_a_study_trains_its_trials_and_writes_its_table_figures_and_best_config(searched):
    result, _ = searched
    assert len(study.trained(result.study)) == 3
    table = rows(result.out)
    assert {r["state"] for r in table} <= {"done", "pruned", "refused"}
    done = [r for r in table if r["state"] == "done"]
    assert done and all(float(r["val_acc"]) >= 0 and int(r["epochs"]) >= study.MIN_EPOCHS for r in done)
    assert all(int(r["params"]) < 200_000 and int(r["rf"]) >= 45 for r in done)
    for name in (findings.TABLE, findings.BEST, findings.HISTORY):
        assert (result.out / name).stat().st_size > 0
    assert result.best_config == result.out / findings.BEST


def test_a_candidate_that_breaks_a_rule_is_refused_without_training(searched):
    result, trained_configs = searched
    first = rows(result.out)[0]
    assert first["state"] == "refused" and "depthwise-separable" in first["note"]
    assert not study.trial_dir(settings(result.out.parent), 0).exists()
    assert all(study.trial_dir(settings(result.out.parent), t.number).is_dir() for t in study.trained(result.study))
    broken = first["note"].count(";") + 1  # "fails RULE; RULE"
    assert result.study.trials[0].constraints == {"budget": 0.0, "rules": float(broken)}  # what the sampler learns
    for cfg in trained_configs:  # every config that trained, its one-epoch timing included, keeps every rule
        assert check_rules(build_net(resolve_spec(cfg.model)), 32).passed, cfg.model


def test_the_best_config_trains_as_it_is_written(searched, tmp_path, monkeypatch):
    result, _ = searched
    monkeypatch.chdir(tmp_path)  # its run_dir is relative
    cfg = load_config(result.best_config)
    assert cfg.data.val_split == 0 and cfg.epochs == result.study.best_trial.user_attrs["epochs"]
    trained = fit(cfg, progress=False)
    assert len(trained.history) == cfg.epochs and "test_acc" in trained.final


def test_a_study_continues_only_at_its_own_budget(searched, tmp_path, image_folder):
    result, _ = searched
    other = study.SearchSettings(BUDGET * 2, 3, result.out)
    with pytest.raises(ConfigError, match="trains 0.02 minutes a trial"):
        study.run_search(base_config(tmp_path, image_folder), other)


def test_the_proposed_nets_build_or_are_refused_with_a_reason():
    sampled = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    base = load_config("fast")
    for _ in range(30):
        trial = sampled.ask()
        cfg = space.propose(trial, base)
        refused = study.screen(trial, cfg)
        if refused is None:
            assert check_rules(build_net(resolve_spec(cfg.model)), 32).passed
        else:
            assert refused.startswith("fails ") or "model" in refused
        assert findings.describe_net(trial.params).startswith(("stem", "c1"))


def search_command(tmp_path: Path, data: Path, trials: int) -> list[str]:
    return [sys.executable, "-m", "advconv.cli", "search", "--budget-minutes", str(BUDGET), "--trials", str(trials),
            "--data", str(data), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
            "--workers", "0"]


def wait_for(condition, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def trained_rows(out: Path) -> int:
    try:
        return sum(r["state"] in ("done", "pruned") for r in rows(out))
    except (FileNotFoundError, KeyError):
        return 0


@pytest.mark.slow
def test_a_killed_search_continues_with_the_same_command(tmp_path, image_folder):
    command = search_command(tmp_path, image_folder, trials=3)
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: trained_rows(tmp_path / "out") >= 1, first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    kept = len(study.trained(study.open_study(settings(tmp_path))))
    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"{kept} trained trials, {3 - kept} to go" in second.stdout
    assert len(study.trained(study.open_study(settings(tmp_path)))) == 3


@pytest.mark.slow
def test_two_processes_work_on_one_study_at_once(tmp_path, image_folder):
    command = search_command(tmp_path, image_folder, trials=4)
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    logs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [log[-3000:] for log in logs]
    ran = [{line.split(":")[0] for line in log.splitlines() if line.startswith("trial ")} for log in logs]
    assert all(ran) and not ran[0] & ran[1]  # both trained, never the same trial
    assert len(study.trained(study.open_study(settings(tmp_path)))) >= 4


def test_without_optuna_the_search_says_how_to_get_it(tmp_path, image_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ConfigError, match=r"pip install 'advconv\[search\]'"):
        study.run_search(base_config(tmp_path, image_folder), settings(tmp_path))


def test_the_report_lists_a_trial_another_process_is_still_proposing(tmp_path):
    shared = optuna.create_study(direction="maximize")
    shared.ask().suggest_categorical("stem", space.STEM)  # chosen its stem, nothing else yet
    findings.write_report(shared, tmp_path)
    (row,) = rows(tmp_path)
    assert row["state"] == "running" and "c1 ?; c2 ?" in row["net"] and row["lr"] == ""


def test_a_trial_that_diverges_is_pruned_and_the_study_goes_on(tmp_path, monkeypatch):
    from advconv.errors import TrainingDiverged

    def diverging(cfg, **kwargs):
        raise TrainingDiverged("training stopped in epoch 2: the loss is nan. Lower the learning rate")

    monkeypatch.setattr(study, "epochs_for_budget", lambda cfg, minutes: (5, 1.0))
    monkeypatch.setattr(study, "fit", diverging)
    sampled = optuna.create_study(direction="maximize")
    sampled.enqueue_trial(DENSE_ONLY | {"c4_kind": "depthwise"})  # keeps every rule
    sampled.optimize(study.objective(load_config("fast"), settings(tmp_path), say=lambda line: None), n_trials=1)
    (trial,) = sampled.trials
    assert trial.state.name == "PRUNED" and study.trained(sampled) == [trial]
    assert findings.trial_row(trial)["note"] == "training stopped in epoch 2: the loss is nan"
