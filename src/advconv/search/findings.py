"""What a study has found, written after every trial so that a stopped study's folder is
current: ``trials.md`` and ``trials.csv`` (one row a trial), ``best.yaml`` (the best trial as a
config ``advconv train --config`` runs as is), and Optuna's own figures."""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path
from typing import Any

import yaml

from ..files import atomic_write_bytes
from ..trained.plots import save_figure

TABLE, CSV, BEST, HISTORY, IMPORTANCES = "trials.md", "trials.csv", "best.yaml", "history.png", "importances.png"
COLUMNS = ("trial", "state", "val_acc", "epochs", "minutes", "params", "macs_m", "rf", "net", "activation", "lr",
           "weight_decay", "label_smoothing", "batch", "note")


def describe_net(p: dict[str, Any]) -> str:
    """A trial's net in one short line: ``stem16; c1 32 /s; c2 48 dw d2 /s; c3 96 std /d; c4 128 dw``
    (width, the kind of C2-C4's convs, the dilation in the skip, how C1-C3 close: /s stride 2,
    /d dilation 2); what a trial still being proposed has not chosen yet is left out."""
    parts = [f"stem{p['stem']}"] if p.get("stem") else []
    for name in ("c1", "c2", "c3", "c4"):
        words = [name, str(p.get(f"{name}_width", "?"))]
        if f"{name}_kind" in p:
            words.append("dw" if p[f"{name}_kind"] == "depthwise" else "std")
        words += [f"d{p[f'{name}_dilation']}"] if p.get(f"{name}_dilation", 1) > 1 else []
        words += [f"/{p[f'{name}_closes'][0]}"] if f"{name}_closes" in p else []
        parts.append(" ".join(words))
    return "; ".join(parts)


def trial_row(t: Any) -> dict[str, Any]:
    """One row of the table; a trial another process is running may not have chosen everything yet."""
    a, p = t.user_attrs, t.params
    state = "refused" if "refused" in a else {"COMPLETE": "done"}.get(t.state.name, t.state.name.lower())
    last = t.value if t.value is not None else (t.intermediate_values[max(t.intermediate_values)]
                                                if t.intermediate_values else None)
    rounded = lambda key, digits: None if key not in p else float(f"{p[key]:.{digits}g}")
    return {"trial": t.number, "state": state, "val_acc": last, "epochs": a.get("epochs"), "minutes": a.get("minutes"),
            "params": a.get("params"), "macs_m": round(a["macs"] / 1e6, 1) if "macs" in a else None,
            "rf": a.get("rf"), "net": describe_net(p), "activation": p.get("activation"),
            "lr": rounded("optim.lr", 3), "weight_decay": rounded("optim.weight_decay", 2),
            "label_smoothing": rounded("optim.label_smoothing", 2), "batch": p.get("batch_size"),
            "note": a.get("refused") or a.get("diverged") or (
                f"pruned after {max(t.intermediate_values)} % of its schedule"
                if state == "pruned" and t.intermediate_values else "")}


def markdown_table(rows: list[dict[str, Any]]) -> str:
    cell = lambda v: "" if v is None else f"{v:.2f}" if isinstance(v, float) and abs(v) >= 1 else str(v)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(cell(r[c]) for c in COLUMNS) + " |" for r in rows]) + "\n"


def best_config(study: Any, trial: Any) -> str:
    """The best trial's config, trained on every training image and scored on the test set."""
    cfg = dict(trial.user_attrs["config"])
    cfg["data"] = dict(cfg["data"], val_split=0)
    cfg["run_dir"] = f"runs/{study.study_name}-best"
    header = (f"# Found by advconv search, study {study.study_name!r}, trial {trial.number}: validation accuracy "
              f"{trial.value:.2f} % after {cfg['epochs']} epochs\n# (epochs sized to the study's budget on the machine "
              "that ran the trial). Trains on every training image and scores the test set.\n")
    return header + yaml.safe_dump(cfg, sort_keys=False)


def write_report(study: Any, out: Path) -> None:
    """The table, the best config and the figures of ``study`` into ``out``."""
    rows = [trial_row(t) for t in study.get_trials(deepcopy=False) if t.params]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(out / CSV, text.getvalue().encode())
    atomic_write_bytes(out / TABLE, markdown_table(rows).encode())
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and "config" in t.user_attrs]
    if done:
        atomic_write_bytes(out / BEST, best_config(study, max(done, key=lambda t: t.value)).encode())
        write_figures(study, out)


def write_figures(study: Any, out: Path) -> None:
    """Optuna's optimisation history, and its parameter importances once two trials have finished."""
    import matplotlib

    matplotlib.use("Agg")  # no screen: Optuna draws with pyplot
    import optuna.visualization.matplotlib as vis
    from matplotlib import pyplot

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib figures experimental
        figures = {HISTORY: vis.plot_optimization_history}
        if sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)) >= 2:
            figures[IMPORTANCES] = vis.plot_param_importances
        for name, draw in figures.items():
            try:
                figure = draw(study).figure
            except (RuntimeError, ValueError):  # importances of values that do not vary yet
                continue
            save_figure(figure, out / name)
            pyplot.close(figure)
