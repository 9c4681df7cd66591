"""The Python API: every ``advconv`` command is one call here, and the CLI is a thin layer over it.

    import advconv
    result = advconv.fit("fast", data="../shared/data/cifar10-jpeg.tar.gz", epochs=3)
    model = advconv.load_model("stem8.default")   # shipped weights, or a run dir / .safetensors / .pt
    advconv.predict(model, ["cat.jpg", pil_image, uint8_array, tensor])
    print(advconv.summary("stem8")); print(advconv.check(model))
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from .config import PARAM_BUDGET, Config, apply_overrides, load_config
from .errors import ConfigError
from .nets.rules import RulesReport, check_rules
from .nets.summary import ModelSummary, summarize
from .page.demo import serve as demo
from .search.study import SearchResult, SearchSettings, run_search
from .trained.compare import compare_models as compare
from .trained.evaluation import calibrate_weights as calibrate
from .trained.evaluation import evaluate_checkpoint as evaluate
from .trained.explain import explain_checkpoint as explain
from .trained.export import export
from .trained.hub import TrainedModel, create_model, load_model, resolve_model, resolve_with_size
from .trained.inference import predict, predict_files
from .trained.plots import plot_lr_range
from .trained.publish import space_folder as space
from .trained.report import plot_run as plot
from .trained.rf import FieldsReport, receptive_fields
from .training import lrfind
from .training.lrfind import RangeTest, lr_range_test
from .training.train import TrainResult
from .training.train import fit as _fit

__all__ = ["fit", "lr_find", "load_model", "create_model", "resolve_model", "predict", "predict_files", "summary",
           "receptive_fields", "FieldsReport", "calibrate", "space", "search",
           "check", "evaluate", "compare", "plot", "export", "explain", "demo", "TrainedModel", "TrainResult",
           "RangeTest"]


def fit(config: str | Path | Config | None = None, *, resume_from: str | Path | None = None, progress: bool = True,
        overwrite: bool = False, **overrides: Any) -> TrainResult:
    """Train: ``config`` is a recipe's name (``"fast"``), a YAML path, a ``Config`` or None (the defaults, as
    the default recipe spells them out); ``overrides`` set any field by name (``epochs=3``,
    ``lr=1e-3``, ``data="path/to/data"``). ``resume_from``: continue the run in that directory
    exactly as it was configured."""
    if resume_from is not None:
        given = (["config"] if config is not None else []) + list(overrides) + (["overwrite"] if overwrite else [])
        if given:
            raise ConfigError(f"resuming continues {resume_from} exactly as it was configured, so {', '.join(given)} "
                              "cannot be given with it; a longer or changed run is a new run, in a new run_dir")
        return _fit(resume_from=resume_from, progress=progress)
    return _fit(_config(config, overrides), progress=progress, overwrite=overwrite)


def lr_find(config: str | Path | Config | None = None, *, output: str | Path | None = lrfind.FIGURE,
            steps: int = lrfind.STEPS, start_lr: float = lrfind.START_LR, end_lr: float = lrfind.END_LR,
            progress: bool = True,
            **overrides: Any) -> RangeTest:
    """The learning-rate range test on the net, data and optimizer ``fit`` would train with the same
    arguments; its figure goes to ``output`` (None: none). ``.suggestion`` is a peak lr for
    one-cycle, or None where the curve cannot place one."""
    test = lr_range_test(_config(config, overrides), steps, start_lr, end_lr, progress)
    if output is not None:
        plot_lr_range(test.lrs, test.losses, test.smoothed, test.suggestion, output)
    return test


def _config(config: str | Path | Config | None, overrides: dict[str, Any]) -> Config:
    """A YAML path, a ``Config`` or None (the defaults), with ``overrides`` by field name (``data``
    names data.path)."""
    if "data" in overrides:
        overrides["data.path"] = overrides.pop("data")
    if isinstance(config, Config):
        return apply_overrides(copy.deepcopy(config), overrides)
    return load_config(config, overrides)


def search(config: str | Path | Config | None = "fast", *, budget_minutes: float, trials: int,
           storage: str | None = None, study: str = "advconv", out: str | Path = "runs/search",
           **overrides: Any) -> SearchResult:
    """Search nets and recipes that keep the rules (``advconv search``): trials start from
    ``config`` with ``overrides`` (``data=...``), train ``budget_minutes`` each on a validation
    split, until ``storage`` (default: SQLite in ``out``) holds ``trials`` trained trials."""
    settings = SearchSettings(budget_minutes, trials, Path(out), storage, study)
    return run_search(_config(config, overrides), settings)


def summary(model: Any, input_size: int | None = None) -> ModelSummary:
    """The per-layer table (``print`` it) of anything ``resolve_model`` takes; ``input_size``
    defaults to the model's own (a trained model's, a config's), else 32."""
    net, size = resolve_with_size(model)
    return summarize(net, input_size or size)


def check(model: Any, input_size: int | None = None, max_params: int = PARAM_BUDGET) -> RulesReport:
    """The assignment's rules on anything ``resolve_model`` takes; ``.passed``, or ``print`` it."""
    net, size = resolve_with_size(model)
    return check_rules(net, input_size or size, max_params)
