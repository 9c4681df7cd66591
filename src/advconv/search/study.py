"""A search under the rules: Optuna proposes a net and a recipe (``space``), the rule check
refuses a candidate before it trains, a timed epoch sizes its schedule to the budget, and each
epoch's validation accuracy lets the pruner stop a poor trial early.

The study lives in a database (SQLite by default; a MySQL or PostgreSQL URL when several machines
share it): the same command continues it after a stop, and any number of processes given the
same storage work on it at once. A killed process leaves its trial marked running until the
heartbeat's grace period has passed; then the next trial to start marks it failed.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import PARAM_BUDGET, Config
from ..errors import ConfigError, TrainingDiverged
from ..nets.models import build_net, validate_spec
from ..nets.rules import check_rules
from ..nets.specs import resolve_spec
from ..nets.summary import summarize
from ..training.train import fit
from .space import propose

VAL_SPLIT = 0.1         # of the training images, held out: trials are judged on it, never on the test set
MIN_EPOCHS = 3          # a candidate too slow for this many epochs in the budget is refused after its timed epoch
HEARTBEAT_S = 60        # a running trial writes a heartbeat this often ...
GRACE_S = 180           # ... and one silent this long belonged to a killed process
TRIES_PER_TRIAL = 20    # at most this many candidates proposed per trained trial asked for (most refusals cost ms)
DECILES = range(10, 101, 10)  # trials report at each tenth of their schedule, so that different lengths compare
UNBUILDABLE = 10.0      # the "rules" constraint of a net that cannot even be built (above any count of broken rules)


@dataclass
class SearchSettings:
    budget_minutes: float   # of training per trial, its evaluations included
    trials: int             # trained trials the study stops at (refused candidates do not count)
    out: Path               # trial run dirs, the table, the figures and the best config
    storage: str | None = None  # a database URL; None: SQLite in ``out``
    study: str = "advconv"

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.out / 'study.db').resolve()}"


def open_study(settings: SearchSettings) -> Any:
    """The study in ``settings.storage``, made if new: TPE, which learns from refused candidates
    through their constraints, and a median pruner over the deciles of a schedule."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line a trial, ours
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # the heartbeat's
    engine = {"connect_args": {"timeout": 60}} if settings.storage_url.startswith("sqlite") else {}
    for attempt in range(3):
        try:  # processes that start together race to make a new database's tables: the loser tries again
            storage = optuna.storages.RDBStorage(settings.storage_url, engine_kwargs=engine,
                                                 heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
            return optuna.create_study(
                storage=storage, study_name=settings.study, direction="maximize", load_if_exists=True,
                sampler=optuna.samplers.TPESampler(),  # unseeded: processes joining one study draw apart; learns
                                                       # from constraints too (``screen``)
                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=40))
        except SQLAlchemyError as exc:
            if attempt == 2:
                raise ConfigError(f"cannot open the study's storage {settings.storage_url}: "
                                  f"{str(exc).splitlines()[0]}") from None
            time.sleep(1 + attempt)


def screen(trial: Any, cfg: Config) -> str | None:
    """The rule check on the candidate, what it computes kept on the trial, and the constraints
    the sampler learns from (rules broken, 0 when it keeps them all); why it is refused, or None."""
    spec = resolve_spec(cfg.model)
    size = cfg.data.image_size
    try:
        validate_spec(spec, size)
    except ConfigError as exc:
        trial.set_constraint("rules", UNBUILDABLE)
        return str(exc)
    net = build_net(spec, size, check=False)
    summary, report = summarize(net, size), check_rules(net, size, cfg.max_params or PARAM_BUDGET)
    trial.set_user_attr("params", summary.total_params)
    trial.set_user_attr("macs", summary.total_macs)
    trial.set_user_attr("rf", max(summary.final_rf) if summary.final_rf else None)
    failed = [r.rule for r in report.results if not r.passed]
    trial.set_constraint("rules", float(len(failed)))
    return f"fails {'; '.join(failed)}" if failed else None


def timed_epoch_s(cfg: Config) -> float:
    """Seconds one epoch of ``cfg`` takes here, its evaluation included, timed by training one
    (in a temporary run directory)."""
    with tempfile.TemporaryDirectory(prefix="advconv-timing-") as folder:
        probe = dataclasses.replace(cfg, epochs=1, run_dir=folder)
        return fit(probe, log=lambda line: None, progress=False).history[0]["epoch_s"]


def epochs_for_budget(cfg: Config, budget_minutes: float) -> tuple[int, float]:
    """How many epochs of ``cfg`` fit in the budget here, and one epoch's seconds."""
    epoch_s = timed_epoch_s(cfg)
    return max(1, int(budget_minutes * 60 // epoch_s)), epoch_s


class Reporter:
    """``fit``'s ``on_epoch``: the validation accuracy at each decile of the schedule reached, and
    the trial pruned when the pruner says it trails the others there."""

    def __init__(self, trial: Any, epochs: int) -> None:
        self.trial, self.epochs, self.reported = trial, epochs, set()

    def __call__(self, row: dict[str, Any]) -> None:
        import optuna

        self.trial.set_user_attr("minutes", round(row["elapsed_s"] / 60, 2))
        if row["val_acc"] is None:  # not evaluated this epoch (eval_every)
            return
        for decile in DECILES:
            if decile not in self.reported and decile <= 100 * row["epoch"] / self.epochs:
                self.trial.report(row["val_acc"], decile)
                self.reported.add(decile)
                if self.trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at {decile} % of its schedule: val {row['val_acc']:.2f} %")


def trial_dir(settings: SearchSettings, number: int) -> Path:
    """A trained trial's run directory, named by its study so that studies sharing ``out`` never meet."""
    return settings.out / "trials" / f"{settings.study}-{number:04d}"


def objective(base: Config, settings: SearchSettings, say: Callable[[str], None]) -> Callable[[Any], float]:
    """One trial: propose, refuse what breaks a rule or cannot train enough epochs, train the rest
    on the validation split; its value is the last epoch's validation accuracy."""
    import optuna

    def run(trial: Any) -> float:
        cfg = propose(trial, base)
        cfg.run_dir = str(trial_dir(settings, trial.number))
        refused, too_slow = screen(trial, cfg), False
        if refused is None:
            epochs, epoch_s = epochs_for_budget(cfg, settings.budget_minutes)
            trial.set_user_attr("epoch_s", epoch_s)
            too_slow = epochs < MIN_EPOCHS
            if too_slow:
                refused = f"too slow: {epoch_s:.1f} s an epoch leaves {epochs} of the {MIN_EPOCHS} epochs it needs"
        trial.set_constraint("budget", float(too_slow))
        if refused is not None:
            trial.set_user_attr("refused", refused)
            say(f"trial {trial.number}: refused, {refused}")
            raise optuna.TrialPruned(refused)
        cfg.epochs = epochs
        trial.set_user_attr("epochs", epochs)
        trial.set_user_attr("config", cfg.to_dict())
        try:
            result = fit(cfg, log=lambda line: say(f"trial {trial.number}: {line}"), progress=False,
                         on_epoch=Reporter(trial, epochs))
        except TrainingDiverged as exc:  # a recipe the sampler should learn to avoid, not a broken study
            trial.set_user_attr("diverged", str(exc).split(". ")[0])
            raise optuna.TrialPruned(str(exc)) from None
        return result.final["val_acc"]

    return run


def trained(study: Any) -> list[Any]:
    """The trials that trained (finished or pruned on their curve), not the refused ones."""
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            if "epochs" in t.user_attrs]


@dataclass
class SearchResult:
    study: Any              # the optuna study: every trial, its parameters, figures and attributes
    out: Path               # where trials.md, trials.csv, best.yaml and the figures are
    best_config: Path | None  # None until a trial has finished


def _say(line: str) -> None:
    print(line, flush=True)  # a log redirected to a file shows each trial as it ends


def run_search(base: Config, settings: SearchSettings, say: Callable[[str], None] = _say) -> SearchResult:
    """Run trials of ``base`` (a recipe, its data) until the study holds ``settings.trials``
    trained trials, writing the report after each; continues a study already in the storage."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("advconv search needs Optuna: pip install 'advconv[search]'") from None
    from .findings import BEST, write_report

    base = dataclasses.replace(base, data=dataclasses.replace(base.data, val_split=base.data.val_split or VAL_SPLIT),
                               strict=True)
    settings.out.mkdir(parents=True, exist_ok=True)
    study = open_study(settings)
    budget = study.user_attrs.setdefault("budget_minutes", settings.budget_minutes)
    if budget != settings.budget_minutes:  # trials sized to two budgets would not compare
        raise ConfigError(f"study {settings.study!r} trains {budget:g} minutes a trial, not {settings.budget_minutes:g}: "
                          "give that budget, or a new --study name")
    study.set_user_attr("budget_minutes", budget)

    def after_trial(study: Any, trial: Any) -> None:
        write_report(study, settings.out)
        if trial.state.name == "COMPLETE":
            best = study.best_trial
            say(f"trial {trial.number}: val {trial.value:.2f} % after {trial.user_attrs['epochs']} epochs; "
                f"best so far trial {best.number}, {best.value:.2f} %")
        if len(trained(study)) >= settings.trials:
            study.stop()

    done = len(trained(study))
    left = settings.trials - done
    if left > 0:  # each trial rewrites the report as it ends
        say(f"study {settings.study!r} in {settings.storage_url}: {done} trained trials, "
            f"{left} to go at {settings.budget_minutes:g} min each")
        study.optimize(objective(base, settings, say), n_trials=left * TRIES_PER_TRIAL, callbacks=[after_trial])
    else:
        write_report(study, settings.out)
    best = settings.out / BEST
    return SearchResult(study, settings.out, best if best.exists() else None)
