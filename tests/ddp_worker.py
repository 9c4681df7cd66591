"""Launched by torchrun from test_deploy.py: trains on tiny data, saves this rank's weights."""

import sys

import torch

from advconv.config import load_config
from advconv.train import fit

data, workdir = sys.argv[1], sys.argv[2]
cfg = load_config(None, {"data.path": data, "cache_dir": f"{workdir}/cache", "run_dir": f"{workdir}/run",
                         "epochs": 2, "batch_size": 8, "pipeline": "batched", "precision": "fp32",
                         "lr": 0.05, "device": "cpu"})
result = fit(cfg, progress=False)
torch.save(result["model"].state_dict(), f"{workdir}/rank{result['rank']}.pt")
print(f"rank {result['rank']} of {result['world_size']} done")
