"""Accuracy per CPU-minute: advconv's recipes and their peers on one machine's clock.

    python lab/benchmarks/accuracy_vs_time.py --time-here ../shared/data/cifar10-jpeg.tar.gz   # once per machine
    python lab/benchmarks/accuracy_vs_time.py                                                  # the figure, the table

Every curve is a run's committed ``metrics.csv`` on the CIFAR-10 JPEG tarball: test accuracy after
each tested epoch against elapsed seconds, evaluation included. The runs were made on 2-core
machines of different speeds, some on one core beside other work. ``--time-here`` trains a few
epochs of each config (advconv's recipes and the peers in ``lab/configs/peers/``) alone on this machine
and records the median seconds of an epoch's training here
(``lab/benchmarks/results/epoch_seconds_here.json``; a timing cut short resumes: what this machine has
timed is kept). Each logged epoch is then scaled by that figure over its own training seconds, so
that every curve reads on this machine's clock, alone: an epoch slowed by other work counts as fast
as the others. ``lab/benchmarks/airbench94.py``, a script, is drawn as it ran (alone, on the machine
``--time-here`` last ran on). A run still in progress is drawn dashed and left out of the finals.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from advconv.files import atomic_write_bytes  # noqa: E402
from advconv.trained.manifest import cpu_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "lab" / "results"
SPEED = REPO / "lab" / "benchmarks" / "results" / "epoch_seconds_here.json"
BUDGETS = (5, 15, 30, 60, 120)  # CPU-minutes at which the table reads each curve
TIMED_EPOCHS = 3                # epochs run here per config; the first (warm-up) is not counted


@dataclass
class Curve:
    label: str
    metrics: Path              # the run's metrics.csv
    epochs: int                # the run's planned epochs: fewer rows means it is still running
    config: str | None = None  # the config it trained from: timed here to rescale its minutes
    final_views: Path | None = None  # a results.json whose test_acc_views is the final point


CURVES = [
    Curve("fast.yaml (Muon, 16 epochs)", RESULTS / "fast_muon" / "seed0" / "metrics.csv", 16, "fast"),
    Curve("default (assignment9.yaml, 36 epochs)", RESULTS / "assignment9_stem8" / "metrics.csv", 36,
          "default"),
    Curve("best.yaml (220 epochs)", RESULTS / "best" / "metrics.csv", 220, "accurate"),
    Curve("best_long.yaml (260 epochs)", RESULTS / "best_long" / "metrics.csv", 260, "accurate_long"),
    Curve("peer: course reference net and recipe (100 epochs)", RESULTS / "peers" / "reference" / "metrics.csv", 100,
          "lab/configs/peers/reference.yaml"),
    Curve("peer: NetDilated, its recipe (60 epochs)", RESULTS / "peers" / "netdilated" / "metrics.csv", 60,
          "lab/configs/peers/netdilated.yaml"),
    Curve("peer: airbench94, no rules (9.9 epochs)", RESULTS / "peers" / "airbench94" / "metrics.csv", 10,
          final_views=RESULTS / "peers" / "airbench94" / "results.json"),
]


def rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open()))


def seconds_per_epoch(metrics: list[dict]) -> float:
    """The median seconds of an epoch's training, the first (warm-up) left out."""
    return statistics.median(float(r["train_s"]) for r in metrics[1:])


def time_here(data: str) -> None:
    """Train ``TIMED_EPOCHS`` of each config not yet timed on this machine, saving each as it ends.

    A config already in ``SPEED`` for this CPU is kept, so an interrupted timing resumes."""
    speed = json.loads(SPEED.read_text()) if SPEED.exists() else {}
    if speed.get("machine") != cpu_model():
        speed = {"machine": cpu_model(), "epochs_timed": TIMED_EPOCHS, "configs": {}}
    for c in CURVES:
        if c.config is None or c.config in speed["configs"]:
            continue
        with tempfile.TemporaryDirectory() as run_dir:
            subprocess.run([sys.executable, "-m", "advconv.cli", "train", "--config", c.config, "--data", data,
                            "--epochs", str(TIMED_EPOCHS), "--eval_every", str(TIMED_EPOCHS), "--run_dir",
                            run_dir, "--no-progress"], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
            here = seconds_per_epoch(rows(Path(run_dir) / "metrics.csv"))
        timed, line = {"here_s": round(here, 2)}, f"{c.config}: {here:.1f} s an epoch here"
        if c.metrics.exists():  # against its log: how much slower or faster its run was
            logged = seconds_per_epoch(rows(c.metrics))
            timed |= {"logged_s": round(logged, 2), "ratio": round(here / logged, 3)}
            line += f", {logged:.1f} s in its log: x{here / logged:.2f}"
        print(line, flush=True)
        speed["configs"][c.config] = timed
        atomic_write_bytes(SPEED, (json.dumps(speed, indent=2) + "\n").encode())
    print(f"wrote {SPEED}")


def points(c: Curve, metrics: list[dict], speed: dict) -> tuple[list[float], list[float]]:
    """(minutes on this machine, test accuracy) after each tested epoch.

    Each epoch (its evaluation too) is scaled on its own, by the training seconds measured here
    over its own: the runs' logs mix epochs run alone with epochs slowed by other work."""
    here = speed["configs"].get(c.config, {}).get("here_s")
    if c.config and here is None:
        print(f"{c.config} not timed here yet: its curve is drawn as logged (--time-here times it)")
    minutes, accuracy, seconds = [], [], 0.0
    for r in metrics:
        if here:
            seconds += float(r["epoch_s"]) * here / float(r["train_s"])
        else:  # as logged
            seconds = float(r["elapsed_s"])
        if r["test_acc"]:
            minutes.append(seconds / 60)
            accuracy.append(float(r["test_acc"]))
    if c.final_views and c.final_views.exists():  # the final evaluation, with its views and its seconds
        final = json.loads(c.final_views.read_text())
        minutes[-1], accuracy[-1] = final["elapsed_s"] / 60, final["test_acc_views"]
    return minutes, accuracy


def at(minutes: list[float], accuracy: list[float], budget: float) -> str:
    """The curve's last tested accuracy within ``budget`` minutes ('' before its first test)."""
    seen = [a for m, a in zip(minutes, accuracy) if m <= budget]
    return f"{seen[-1]:.2f}" if seen else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-here", metavar="DATA", help="first time the configs not yet timed on this machine")
    parser.add_argument("--out", default=str(RESULTS / "accuracy_vs_time.png"))
    args = parser.parse_args()
    if args.time_here:
        time_here(args.time_here)
    speed = json.loads(SPEED.read_text())
    fig, ax = plt.subplots(figsize=(9, 7))
    table = ["| run | epochs | final test accuracy % | minutes | " + " | ".join(f"at {b} min" for b in BUDGETS) + " |",
             "|---|---|---|---|" + "---|" * len(BUDGETS)]
    for c in CURVES:
        if not c.metrics.exists():
            print(f"{c.label}: no log yet ({c.metrics.relative_to(REPO)})")
            continue
        metrics = rows(c.metrics)
        minutes, accuracy = points(c, metrics, speed)
        done = len(metrics) >= c.epochs
        label = c.label if done else f"{c.label}, running: {len(metrics)} epochs so far"
        ax.plot(minutes, accuracy, ls="-" if done else "--",
                label=f"{label}: {accuracy[-1]:.2f} % at {minutes[-1]:.0f} min")
        if done:
            ax.plot(minutes[-1], accuracy[-1], "o", color=ax.lines[-1].get_color())
        final = f"**{accuracy[-1]:.2f}**" if done else f"({accuracy[-1]:.2f} so far)"
        table.append(f"| {label} | {len(metrics)} | {final} | {minutes[-1]:.1f} | "
                     + " | ".join(at(minutes, accuracy, b) for b in BUDGETS) + " |")
    for target in (85, 91):
        ax.axhline(target, color="grey", lw=0.6, ls=":")
    ax.set(xlabel=f"minutes on 2 CPU cores ({speed['machine']}, bf16), evaluation included",
           ylabel="test accuracy % (CIFAR-10 JPEG q75)", ylim=(70, 93), xscale="log", xlim=(1, None),
           title="Accuracy per CPU-minute, after each tested epoch (dots: finished runs' last epochs)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12))  # below: no curve hidden
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print("\n".join(table))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
