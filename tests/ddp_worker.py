"""Launched by torchrun from test_deploy.py: trains on tiny data, saves this rank's weights."""

import sys
from pathlib import Path

import torch

from conftest import tiny_config  # torchrun puts this folder first on sys.path

from advconv.train import fit

data, workdir = Path(sys.argv[1]), Path(sys.argv[2])
cfg = tiny_config(workdir, data, epochs=2, batch_size=8, precision="fp32", device="cpu")
result = fit(cfg, progress=False)
torch.save(result.model.state_dict(), workdir / f"rank{result.rank}.pt")
print(f"rank {result.rank} of {result.world_size} done")
