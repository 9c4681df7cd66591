"""What a user is promised when things go wrong: kills, bad files, bad configs, NaNs, full disks."""

import errno
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from advconv.cli import main
from advconv.errors import CheckpointError, ConfigError, TrainingDiverged
from advconv.trained.checkpoint import Checkpoint, InferenceRecord, load_checkpoint, save_checkpoint
from advconv.training import train as train_mod
from advconv.training.train import fit

from .conftest import make_image_folder, tiny_config


def train_cmd(data, run_dir, cache):
    return [sys.executable, "-m", "advconv.cli", "train", "--data", str(data), "--run_dir", str(run_dir),
            "--cache_dir", str(cache), "--epochs", "5", "--batch_size", "16", "--pipeline", "batched",
            "--precision", "fp32", "--deterministic", "--lr", "0.05", "--no-progress"]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path):
    data = make_image_folder(tmp_path / "data", per_class_train=150, per_class_test=10)
    straight = subprocess.run(train_cmd(data, tmp_path / "straight", tmp_path / "cache"),
                              capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr

    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(train_cmd(data, run_dir, tmp_path / "cache"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (run_dir / "last.pt").exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # somewhere inside epoch 2 (or 3): no chance to clean up
    proc.wait()
    killed_at = load_checkpoint(run_dir).epoch
    assert 1 <= killed_at < 5

    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
    a = load_checkpoint(tmp_path / "straight")
    b = load_checkpoint(run_dir)
    assert b.epoch == 5
    for name, tensor in a.model.items():
        assert torch.equal(tensor, b.model[name]), name  # bitwise: fp32, deterministic, CPU
    assert [h["test_acc"] for h in a.history] == [h["test_acc"] for h in b.history]


def test_truncated_checkpoint_names_the_file(tmp_path, make_config, capsys):
    fit(make_config(epochs=1), progress=False)
    last = tmp_path / "run" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=f"checkpoint {last} is unreadable"):
        load_checkpoint(last)
    assert main(["train", "--resume", str(tmp_path / "run")]) == 2
    assert str(last) in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "run" / "best.pt").epoch == 1  # the other copy is intact


def small_checkpoint(epoch: int) -> Checkpoint:
    record = InferenceRecord({}, ("a", "b"), (0.5,) * 3, (0.25,) * 3)
    return Checkpoint({"w": torch.full((3,), float(epoch))}, record, {}, epoch, 0.0, [], {}, {}, {}, {})


def test_a_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, small_checkpoint(epoch=1))

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(CheckpointError, match=f"cannot write checkpoint {path}: No space left on device"):
        save_checkpoint(path, small_checkpoint(epoch=2))
    monkeypatch.undo()
    assert load_checkpoint(path).epoch == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left behind


def test_disk_full_during_training_is_a_clear_error(tmp_path, make_config, monkeypatch):
    real_fsync, full = os.fsync, []

    def fsync(fd):
        if full:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    def log(line: str) -> None:  # the disk fills up as epoch 2 ends, before its files are written
        if line.startswith("Epoch 2/"):
            full.append(True)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(CheckpointError, match="No space left on device"):
        fit(make_config(epochs=3), log=log, progress=False)
    monkeypatch.undo()
    run = tmp_path / "run"
    assert load_checkpoint(run / "last.pt").epoch == 1
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_unwritable_run_dir_fails_before_training(tmp_path, make_config, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the run directory should go")
    lines = []
    with pytest.raises(CheckpointError, match="is not writable"):
        fit(make_config(run_dir=str(blocker / "run")), log=lines.append, progress=False)
    assert lines == []  # nothing trained, nothing logged


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, make_config, monkeypatch):
    real_epoch, calls = train_mod.train_epoch, []

    def poisoned(model, loader, optimizer, scheduler, loss_fn, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            loss_fn = lambda logits, y: logits.sum() * float("nan")  # noqa: E731
        return real_epoch(model, loader, optimizer, scheduler, loss_fn, *args, **kwargs)

    monkeypatch.setattr(train_mod, "train_epoch", poisoned)
    with pytest.raises(TrainingDiverged, match=r"epoch 2: loss became nan.*last good checkpoint .*last.pt \(epoch 1\)"):
        fit(make_config(), progress=False)
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state.epoch == 1
    assert all(torch.isfinite(t).all() for t in state.model.values() if t.is_floating_point())


@pytest.mark.parametrize("overrides, message", [
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"lr": -0.1}, "optim.lr must be > 0"),
    ({"cutout": 1.5}, r"augment.cutout must be in \[0, 1\]"),
    ({"label_smoothing": 1.0}, r"optim.label_smoothing must be in \[0, 1\)"),
    ({"tta_shift": 9}, r"tta_shift must be in \[0, 8\], got 9"),
    ({"pipeline": "batched", "downsample": 0.1, "downsample_min": 40},
     r"batched.downsample_min must be below data.image_size \(32\), got 40"),
    ({"pipeline": "albumentations", "translate": 2}, "batched.translate set, but data.pipeline is albumentations"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"max_params": 100_000, "model": "reference"}, "185,346 parameters; the budget allows fewer than 100,000"),
    ({"model": {"blocks": [{"conv_type": ["standard"], "out_channels": [8, 8], "kernel_size": [3],
                            "stride": [1], "padding": [1], "dilation": [1]}]}},
     r"model.blocks\[0\]: lists must have the same length"),
    ({"model": {"blocks": [{"conv_type": ["standard"], "out_channels": [8], "kernel_size": [3],
                            "stride": [1], "padding": [0], "dilation": [20]}]}}, "below 1x1"),
    ({"model": {"normalization": "group", "number_of_groups": 3, "blocks": [
        {"conv_type": ["standard"], "out_channels": [8], "kernel_size": [3], "stride": [1], "padding": [1],
         "dilation": [1]}]}}, "8 channels are not divisible by number_of_groups=3"),
    ({"model": {"normalization": "spectral", "blocks": []}}, "model.blocks: a network needs at least one block"),
])
def test_impossible_configs_fail_before_any_data_is_read(tmp_path, overrides, message):
    cfg = tiny_config(tmp_path, tmp_path / "no data here", **overrides)  # reading it would fail otherwise
    with pytest.raises((ValueError, ConfigError), match=message):
        fit(cfg, progress=False)
    assert not (tmp_path / "run").exists()


def test_cli_reports_a_bad_config_in_one_line(tmp_path, capsys):
    assert main(["train", "--epochs", "0", "--run_dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "advconv train: error: epochs must be >= 1, got 0"


class _RunsCode:
    """A pickled payload that would create a file if it were ever unpickled with full pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_a_checkpoint_carrying_code_is_refused_and_runs_nothing(tmp_path, capsys):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "config": {}, "payload": _RunsCode(marker)}, evil)
    with pytest.raises(CheckpointError, match=r"was not loaded: it needs io.open, .*could run code"):
        load_checkpoint(evil)
    assert main(["predict", "--model", str(evil), str(tmp_path / "x.png")]) == 2
    assert "was not loaded" in capsys.readouterr().err
    assert not marker.exists()


def test_checkpoints_load_with_weights_only(tmp_path, make_config):
    fit(make_config(epochs=1), progress=False)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)  # raises if anything needs pickle
    assert state["epoch"] == 1
