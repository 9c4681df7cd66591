"""The lesson of the assignment, measured: how far each block of three nets sees, in theory and in effect.

    python lab/benchmarks/fields_by_block.py --data D \
        stem8=stem8.default reference=RUN_DIR netdilated=RUN_DIR > lab/results/fields/fields_by_block.md

For each net (a shipped tag or a run directory), at the last conv of each block: the theoretical
receptive field (summary's arithmetic) and the effective one (the smallest centred squares
holding 50 % and 95 % of the centre unit's input gradient), at random initialisation and trained,
on 64 mosaics of test images large enough that no field is clipped. Writes the figure beside
the table (lab/results/fields/fields_by_block.png) and prints the table as Markdown.
"""

import argparse
import csv
from pathlib import Path

from advconv.nets.receptive import block_ends
from advconv.trained.hub import load_model
from advconv.trained.plots import _save, _subplots
from advconv.trained.rf import receptive_fields

OUT = Path(__file__).resolve().parents[1] / "results" / "fields"


def trained_for(source: str) -> str:
    """How the weights were trained: epochs and final accuracy, from the run's metrics or the shipped record."""
    trained = load_model(source)
    metrics = Path(source) / "metrics.csv"
    if metrics.exists():
        last = list(csv.DictReader(metrics.open()))[-1]
        split = "val" if "val_acc" in last else "test"
        return f"{last['epoch']} epochs, {float(last[f'{split}_acc']):.2f} % {split}"
    acc = trained.provenance.get("test_accuracy", {}).get("with_views")
    return f"{trained.provenance.get('epochs')} epochs, {acc:.2f} % test"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("nets", nargs="+", metavar="NAME=SOURCE")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    fig, axes = _subplots(1, len(args.nets), figsize=(4.2 * len(args.nets), 4))
    print("| net (weights) | block | theoretical | random: 50 % / 95 % | trained: 50 % / 95 % | 95 % / theoretical |")
    print("|---|---|---|---|---|---|")
    measured_on = []
    for ax, named in zip(axes, args.nets):
        name, source = named.split("=", 1)
        report = receptive_fields(source, data=args.data)
        measured_on.append(f"{name}: {report.measured_on}")
        ends = set(block_ends(load_model(source).net))
        rows = {w: [f for f in fields if f.layer in ends] for w, fields in report.fields.items()}
        for random, trained in zip(rows["random"], rows["trained"]):
            print(f"| {name} ({trained_for(source)}) | {trained.layer.split('.')[0]} | {trained.theoretical_side} | "
                  f"{random.sides[0.5]} / {random.sides[0.95]} | {trained.sides[0.5]} / {trained.sides[0.95]} | "
                  f"{trained.ratio:.2f} |")
        blocks = [f.layer.split(".")[0] for f in rows["trained"]]
        ax.plot(blocks, [f.theoretical_side for f in rows["trained"]], "k-o", label="theoretical")
        for weights, style in (("random", "--s"), ("trained", "-s")):
            ax.plot(blocks, [f.sides[0.95] for f in rows[weights]], style, label=f"effective 95 %, {weights}")
            ax.plot(blocks, [f.sides[0.5] for f in rows[weights]], style, alpha=0.4, label=f"effective 50 %, {weights}")
        ax.set(title=name, xlabel="block (its last conv)", ylabel="side in input pixels")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    _save(fig, OUT / "fields_by_block.png")
    print("\nMeasured on: " + "; ".join(measured_on) + ". Figure: lab/results/fields/fields_by_block.png")


if __name__ == "__main__":
    main()
