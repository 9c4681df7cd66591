"""The picture a user wants: test accuracy against wall-clock minutes, from committed per-epoch logs.

    python benchmarks/accuracy_vs_time.py [--out docs/results/accuracy_vs_time.png]

Every curve is a finished run's ``metrics.csv`` (test accuracy after each tested epoch, with
the run's own test-time views, against its elapsed seconds, evaluation included), all from one machine: the 2-core AMD EPYC
(AVX512-BF16) these logs were made on. The seed-style baseline (the course's reference net in
fp32 NCHW with the albumentations loader) was only timed, not trained: its point places the
course's reported 87.12 % after 100 epochs at the 100 x 82.6 s its epochs take here, and is
marked as extrapolated.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
RUNS = {  # label -> the run's metrics.csv
    "default (configs/assignment9.yaml: stem8, 36 epochs)": RESULTS / "assignment9_stem8" / "metrics.csv",
    "default until experiments row 75 (assignment9 net, 45 epochs)": RESULTS / "assignment9" / "metrics.csv",
    "fast (configs/fast.yaml, seed 0)": RESULTS / "fast" / "seed0" / "metrics.csv",
    "best, C4 at 4x4 (configs/experiments/best_4x4.yaml, 100 epochs)": RESULTS / "experiments" / "best_100ep" / "metrics.csv",
    "best, C4 at 4x4 (configs/experiments/best_4x4.yaml, 200 epochs)": RESULTS / "best_4x4" / "metrics.csv",
    "best, lr 0.2, smoothing 0.1 (configs/experiments/best8.yaml, 180 epochs)": RESULTS / "best8" / "metrics.csv",
    "best with ReLU (configs/best.yaml until experiments row 109)": RESULTS / "best_relu" / "metrics.csv",
    "best (configs/best.yaml: hardswish, 220 epochs, tested every 10 with 6 views)": RESULTS / "best" / "metrics.csv",
    "best_long (configs/best_long.yaml, 260 epochs; beside the test suite for a while)":
        RESULTS / "best_long" / "metrics.csv",
}
BASELINE = {"label": "course reference net, seed-style (extrapolated: 100 epochs x 82.6 s measured)",
            "minutes": 100 * 82.6 / 60, "accuracy": 87.12}


def curve(path: Path) -> tuple[list[float], list[float]]:
    rows = [r for r in csv.DictReader(path.open()) if r["test_acc"]]  # tested epochs (eval_every)
    return [float(r["elapsed_s"]) / 60 for r in rows], [float(r["test_acc"]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "accuracy_vs_time.png"))
    args = parser.parse_args()
    fig, ax = plt.subplots(figsize=(9, 7))
    for label, path in RUNS.items():
        minutes, accuracy = curve(path)
        ax.plot(minutes, accuracy, label=f"{label}: {accuracy[-1]:.2f} % in {minutes[-1]:.1f} min")
        ax.plot(minutes[-1], accuracy[-1], "o", color=ax.lines[-1].get_color())
        print(f"{label}: final {accuracy[-1]:.2f} % after {minutes[-1]:.1f} min ({path.relative_to(RESULTS.parents[1])})")
    ax.plot(BASELINE["minutes"], BASELINE["accuracy"], "x", color="grey", markersize=10,
            label=f"{BASELINE['label']}: {BASELINE['accuracy']} % at {BASELINE['minutes']:.0f} min")
    print(f"{BASELINE['label']}: {BASELINE['accuracy']} % at {BASELINE['minutes']:.0f} min")
    for target in (85, 91):
        ax.axhline(target, color="grey", lw=0.6, ls=":")
    ax.set(xlabel="wall-clock minutes on 2 CPU cores (AMD EPYC, bf16), evaluation included",
           ylabel="test accuracy % (CIFAR-10 JPEG q75)", ylim=(70, 95), xscale="log",
           title="Accuracy per CPU-minute: test accuracy after each tested epoch (dots: the final epochs)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12))  # below: no curve hidden
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
