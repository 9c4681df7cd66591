"""torchrun: data-parallel training on 2 CPU processes."""

import subprocess
import sys

import pytest
import torch

from advconv.trained.checkpoint import load_checkpoint


@pytest.mark.slow
def test_torchrun_two_cpu_processes_end_with_identical_weights(tmp_path, image_folder):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "tests/ddp_worker.py", str(image_folder), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    a = torch.load(tmp_path / "rank0.pt")
    b = torch.load(tmp_path / "rank1.pt")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # only rank 0 writes: one run directory with its checkpoint, no per-rank files
    assert (tmp_path / "run" / "last.pt").exists()
    assert len(load_checkpoint(tmp_path / "run").history) == 2


@pytest.mark.slow
@pytest.mark.parametrize("fault, message", [
    ("nan_on_rank1", "training stopped in epoch 2: loss became nan"),
    ("checkpoint_error", "cannot write checkpoint"),
])
def test_a_fault_on_one_rank_stops_every_rank_with_its_message(tmp_path, image_folder, fault, message):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "tests/ddp_worker.py", str(image_folder), str(tmp_path), fault]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    messages = [(tmp_path / f"rank{rank}.stopped").read_text() for rank in (0, 1)]  # both ranks stopped
    assert messages[0] == messages[1] and message in messages[0], done.stdout + done.stderr
