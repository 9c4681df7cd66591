"""Launched by torchrun from test_deploy.py: trains on tiny data, saves this rank's weights.

``argv[3]`` (optional) breaks one rank on purpose: ``nan_on_rank1`` poisons rank 1's loss in
epoch 2, ``checkpoint_error`` makes rank 0's second checkpoint write fail.
"""

import sys
from pathlib import Path

import torch
from conftest import tiny_config  # torchrun puts this folder first on sys.path

from advconv.errors import AdvconvError
from advconv.runtime import Runtime
from advconv.trained.checkpoint import CheckpointError
from advconv.training import loops, train

data, workdir = Path(sys.argv[1]), Path(sys.argv[2])
fault = sys.argv[3] if len(sys.argv) > 3 else None
rank = Runtime.start("cpu", "fp32").rank
calls = []

if fault == "nan_on_rank1" and rank == 1:
    real_epoch = loops.train_epoch

    def poisoned(model, loader, optimizer, scheduler, loss_fn, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            loss_fn = lambda logits, y: logits.sum() * float("nan")  # noqa: E731
        return real_epoch(model, loader, optimizer, scheduler, loss_fn, *args, **kwargs)

    train.train_epoch = poisoned
if fault == "checkpoint_error" and rank == 0:
    real_save = train.save_checkpoint

    def failing(path, state):
        calls.append(1)
        if len(calls) == 3:  # epoch 1 wrote last.pt and best.pt
            raise CheckpointError(f"cannot write checkpoint {path}: No space left on device")
        real_save(path, state)

    train.save_checkpoint = failing

cfg = tiny_config(workdir, data, epochs=3 if fault else 2, batch_size=8, precision="fp32", device="cpu")
try:
    result = train.fit(cfg, progress=False)
except AdvconvError as exc:
    (workdir / f"rank{rank}.stopped").write_text(str(exc))  # one file per rank: no interleaved output
    sys.exit(2)
torch.save(result.model.state_dict(), workdir / f"rank{result.rank}.pt")
print(f"rank {result.rank} of {result.world_size} done")
