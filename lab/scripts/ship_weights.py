"""Make the package's shipped weights from a finished run (re-run whenever a recipe improves).

    python lab/scripts/ship_weights.py RUN_DIR ARCHITECTURE.RECIPE --log lab/results/RECIPE/train.log [--data D]

Takes the run's final epoch (``last.pt``: never a checkpoint picked on test accuracy),
measures its test accuracy in fp32 with and without the run's test-time views, and writes
``src/advconv/weights/TAG.safetensors`` with ``TAG.json`` (the inference record and the
provenance: those accuracies, the config without the training machine's paths, the command
and machine from the run's manifest, the log). The tag names the architecture, then the
recipe (``stem8.assignment9``). ``advconv.load_model(TAG)`` and ``--model TAG`` then work with
no training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

from advconv.config import Config
from advconv.data.datasets import describe_data
from advconv.nets.specs import MODELS
from advconv.trained.checkpoint import load_checkpoint, save_weights
from advconv.trained.evaluation import evaluate_checkpoint, trained_on
from advconv.trained.hub import SHIPPED, architecture_of, load_model


def portable(config: dict, tag: str) -> dict:
    """The run's config without what only the training machine had: its data and cache paths
    and its run directory."""
    defaults = Config()
    data = config["data"] | {"path": None, "cache_dir": defaults.data.cache_dir}
    return config | {"data": data, "run_dir": f"runs/{tag.split('.', 1)[1]}"}


def portable_command(command: list[str], run_dir: str) -> list[str]:
    """A training command without the training machine's paths: the cache folder left out, the
    run directory as ``run_dir``."""
    out, skip = [], False
    for i, arg in enumerate(command):
        if skip:
            skip = False
        elif arg in ("--cache_dir", "--data.cache_dir", "--run_dir"):
            out += ["--run_dir", run_dir] if arg == "--run_dir" else []
            skip = True
        else:
            out.append(arg)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("tag", help="ARCHITECTURE.RECIPE, e.g. stem8.assignment9")
    parser.add_argument("--log", required=True, help="the committed training log of the run")
    parser.add_argument("--data", default=None, help="defaults to the data the run was trained on")
    parser.add_argument("--trained-by", default=None,
                        help="the training command and commit, for a run older than manifest.json")
    parser.add_argument("--tta-shift", type=int, default=None, metavar="N",
                        help="ship with test-time views shifted by +-N pixels (default: as the run was evaluated); "
                             "the quoted accuracy is measured with them")
    args = parser.parse_args()

    if architecture_of(args.tag) not in MODELS or "." not in args.tag:
        raise SystemExit(f"{args.tag}: a tag is ARCHITECTURE.RECIPE with an architecture of {', '.join(MODELS)}")
    last = args.run_dir / "last.pt"
    checkpoint = load_checkpoint(last)
    if checkpoint.epoch != checkpoint.config["epochs"]:
        raise SystemExit(f"{last} is epoch {checkpoint.epoch} of {checkpoint.config['epochs']}: finish the run first")
    model, record = checkpoint.net(), checkpoint.record
    if args.tta_shift is not None:
        record = dataclasses.replace(record, tta_shift=args.tta_shift)
    with_views = evaluate_checkpoint(last, args.data, tta=record.tta, tta_shift=record.tta_shift).result
    plain = evaluate_checkpoint(last, args.data, tta=False, tta_shift=0).result
    manifest_path = args.run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())["sessions"] if manifest_path.exists() else []
    if not manifest and not args.trained_by:
        raise SystemExit(f"{manifest_path} is missing: say how the run was made with --trained-by")
    run_dir = portable(checkpoint.config, args.tag)["run_dir"]  # not the training machine's path
    provenance = {
        "test_accuracy": {"with_views": with_views.accuracy, "plain": plain.accuracy,
                          "views": {"flip": record.tta, "shift": record.tta_shift}, "images": with_views.total,
                          "precision": "fp32"},
        "epochs": checkpoint.epoch,
        "config": portable(checkpoint.config, args.tag),
        "trained_by": [{k: m.get(k) for k in ("command", "git_commit", "machine", "wall_s", "versions")}
                       | {"command": portable_command(m.get("command", []), run_dir)} for m in manifest]
                      or args.trained_by,
        "data": describe_data(args.data or checkpoint.config["data"]["path"], *trained_on(load_model(last), args.data)),
        "log": args.log,
        "made_by": " ".join(shlex.quote(a) for a in ["python", *sys.argv]).replace(str(args.run_dir), run_dir),
    }
    path = save_weights(SHIPPED / f"{args.tag}.safetensors", model.state_dict(), record, provenance)
    print(f"wrote {path} and {path.with_suffix('.json')}: test accuracy {with_views.accuracy:.2f}% with the "
          f"views, {plain.accuracy:.2f}% plain")


if __name__ == "__main__":
    main()
