"""Wall-clock time to a target test accuracy on CIFAR-10, against the seed-style baseline.

    python lab/benchmarks/time_to_accuracy.py --data ../shared/data/cifar10-jpeg.tar.gz \
        --config fast --seeds 0 1 2 --out lab/results/fast

For each seed it runs ``advconv train`` as a fresh process (imports, data loading from the
decoded cache, model build, optional compile and every epoch's full 10k-image evaluation
all count) and reads the time at which the test accuracy first reached the target.
In the same run it times the seed-style baseline: the reference net, fp32, NCHW, the
albumentations DataLoader; a fixed number of steps gives its seconds per epoch, and the
ratio of the two is printed. Results go to ``OUT/results.json`` and ``OUT/results.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from advconv.config import load_config
from advconv.data.datasets import channel_stats, load_dataset
from advconv.data.loaders import make_loaders
from advconv.runtime import cpu_supports_bf16
from advconv.trained.hub import create_model
from advconv.training.optim import build_optimizer


def baseline_seconds_per_epoch(data: str, cache_dir: str, steps: int) -> float:
    """Seed-style step time (reference net, fp32 NCHW, albumentations loader) x steps per epoch."""
    cfg = load_config(None, {"data.path": data, "cache_dir": cache_dir, "model": "reference",
                             "precision": "fp32", "channels_last": False, "pipeline": "albumentations"})
    train, test = load_dataset(data, cache_dir)
    loader_for, _ = make_loaders(cfg, train, test, channel_stats(train.images))
    loader = loader_for(0)
    model = create_model("reference")
    optimizer = build_optimizer(cfg.optim, model)
    loss_fn = nn.CrossEntropyLoss()
    times, batches = [], iter(loader)
    for step in range(steps + 2):  # 2 warm-up steps
        t = time.perf_counter()
        x, y = next(batches)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - t)
    return statistics.mean(times) * len(loader)


def run_recipe(config: str, data: str, cache_dir: str, seed: int, run_dir: Path, target: float,
               overrides: list[str]) -> dict:
    cmd = [sys.executable, "-m", "advconv.cli", "train", "--config", config, "--data", data,
           "--cache_dir", cache_dir, "--seed", str(seed), "--run_dir", str(run_dir), "--no-progress",
           "--eval_every", "1", *overrides]  # the protocol times the first epoch that reaches the target
    t0 = time.perf_counter()
    log = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    (run_dir / "train.log").parent.mkdir(parents=True, exist_ok=True)
    (run_dir / "train.log").write_text(log.stdout + log.stderr)
    if log.returncode != 0:
        raise SystemExit(f"training failed (seed {seed}):\n{log.stderr[-2000:]}")
    history = json.loads((run_dir / "metrics.json").read_text())
    startup = wall - history[-1]["elapsed_s"]  # process start + imports, before fit() began timing
    reached = next((h for h in history if h["test_acc"] >= target), None)
    return {
        "seed": seed,
        "final_acc": history[-1]["test_acc"],
        "best_acc": max(h["test_acc"] for h in history),
        "epochs": len(history),
        "time_to_target_s": round(reached["elapsed_s"] + startup, 1) if reached else None,
        "epoch_reached": reached["epoch"] if reached else None,
        "total_s": round(wall, 1),
        "s_per_epoch": round(statistics.median(h["epoch_s"] for h in history), 2),
        "train_img_per_s": round(50_000 / statistics.median(h["train_s"] for h in history)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--config", default="fast")
    parser.add_argument("--cache-dir", default="~/.cache/advconv")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--target", type=float, default=85.0)
    parser.add_argument("--baseline-steps", type=int, default=10)
    parser.add_argument("--out", default="lab/benchmarks/results/fast")
    args, overrides = parser.parse_known_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load_dataset(args.data, args.cache_dir)  # decode once so every seed starts from the cache

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU bf16: {cpu_supports_bf16()}",
          flush=True)
    baseline = baseline_seconds_per_epoch(args.data, args.cache_dir, args.baseline_steps)
    print(f"baseline (reference net, fp32 NCHW, albumentations): {baseline:.1f} s/epoch "
          f"(from {args.baseline_steps} steps)", flush=True)
    runs = []
    for seed in args.seeds:
        r = run_recipe(args.config, args.data, args.cache_dir, seed, out / f"seed{seed}", args.target, overrides)
        runs.append(r)
        print(f"seed {seed}: final {r['final_acc']:.2f}% | {args.target}% reached at epoch {r['epoch_reached']} "
              f"after {r['time_to_target_s']} s | total {r['total_s']} s | {r['s_per_epoch']} s/epoch | "
              f"{r['train_img_per_s']} train img/s | {baseline / r['s_per_epoch']:.1f}x the baseline's speed",
              flush=True)

    times = [r["time_to_target_s"] for r in runs if r["time_to_target_s"] is not None]
    accs = [r["final_acc"] for r in runs]
    summary = {
        "config": args.config, "overrides": overrides, "target": args.target, "runs": runs,
        "baseline_s_per_epoch": round(baseline, 1),
        "speedup_per_epoch": round(baseline / statistics.median(r["s_per_epoch"] for r in runs), 2),
        "reached": f"{len(times)}/{len(runs)}",
        "median_time_to_target_s": statistics.median(times) if times else None,
        "time_to_target_range_s": [min(times), max(times)] if times else None,
        "median_final_acc": statistics.median(accs), "final_acc_range": [min(accs), max(accs)],
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_bf16": cpu_supports_bf16(),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    lines = [f"# Time to {args.target}% ({args.config} {' '.join(overrides)})", "",
             "| seed | final acc % | epoch reached | time to target s | total s | s/epoch | train img/s |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['final_acc']:.2f} | {r['epoch_reached']} | {r['time_to_target_s']} | "
              f"{r['total_s']} | {r['s_per_epoch']} | {r['train_img_per_s']} |" for r in runs]
    lines += ["", f"Reached {args.target}%: {summary['reached']} seeds; median time to target "
              f"{summary['median_time_to_target_s']} s (range {summary['time_to_target_range_s']}); "
              f"median final accuracy {summary['median_final_acc']:.2f}% (range {summary['final_acc_range']}).",
              f"Seed-style baseline: {baseline:.1f} s/epoch; the recipe's epochs are "
              f"{summary['speedup_per_epoch']}x faster."]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-2:]))


if __name__ == "__main__":
    main()
