"""fit and resume: the whole job on the tiny dataset."""

import json
import re

import pytest
import torch

from advconv.config import SETTINGS, load_config
from advconv.errors import CheckpointError, ConfigError
from advconv.trained.checkpoint import load_checkpoint
from advconv.training.train import fit

from .conftest import tiny_config


@pytest.mark.parametrize("pipeline", SETTINGS["data.pipeline"].choices)
def test_fit_learns_tiny_dataset_and_writes_run(tmp_path, make_config, pipeline):
    result = fit(make_config(pipeline=pipeline, epochs=4), progress=False)
    assert len(result.history) == 4
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    run = tmp_path / "run"
    for name in ("last.pt", "best.pt", "metrics.csv", "metrics.json"):
        assert (run / name).exists(), name
    assert (run / "metrics.csv").read_text().splitlines()[0].startswith("epoch,train_loss,train_acc")
    state = load_checkpoint(run / "last.pt")
    assert state.epoch == 4 and state.record.classes == ("circle", "cross", "stripes")


def test_eval_every_tests_every_nth_epoch_and_the_last(tmp_path, make_config):
    from advconv.trained.report import plot_run

    lines = []
    result = fit(make_config(epochs=5, eval_every=2), log=lines.append, progress=False)
    assert [h["test_acc"] is not None for h in result.history] == [False, True, False, True, True]
    assert sum("test not evaluated" in line for line in lines) == 2
    assert (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1].split(",")[3:5] == ["", ""]
    assert round(result.best_acc, 3) == max(h["test_acc"] for h in result.history if h["test_acc"] is not None)
    assert load_checkpoint(tmp_path / "run" / "best.pt").epoch in (2, 4, 5)
    assert (tmp_path / "run" / "curves.png") in plot_run(tmp_path / "run")


def interrupt_after(epochs: int):
    """A log that stops the run (as Ctrl-C would) once ``epochs`` epochs are saved: at the line
    of the next epoch, before that epoch is written."""
    def log(line: str) -> None:
        if line.startswith(f"Epoch {epochs + 1}/"):
            raise KeyboardInterrupt
    return log


@pytest.mark.parametrize("pipeline, levers", [(p, {}) for p in SETTINGS["data.pipeline"].choices]
                         + [("batched", {"whiten": True, "ema": 0.9}), ("batched", {"name": "muon"}),
                            ("batched", {"mixup": 0.4, "cutmix": 1.0}), ("batched", {"teacher": "checkpoint"})])
def test_resume_equals_uninterrupted_run(tmp_path, image_folder, pipeline, levers, request):
    levers = {k: str(request.getfixturevalue(v)) if v == "checkpoint" else v for k, v in levers.items()}
    settings = dict(pipeline=pipeline, precision="fp32", deterministic=True, epochs=3, **levers)
    straight = fit(tiny_config(tmp_path / "a", image_folder, **settings), progress=False)
    cfg = tiny_config(tmp_path / "b", image_folder, **settings)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, log=interrupt_after(1), progress=False)
    assert load_checkpoint(tmp_path / "b" / "run").epoch == 1
    resumed = fit(resume_from=cfg.run_dir, progress=False)

    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert [h["test_acc"] for h in straight.history] == [h["test_acc"] for h in resumed.history]
    final = load_checkpoint(tmp_path / "b" / "run")
    assert final.epoch == 3 and final.history == resumed.history


def test_progress_and_test_lines_have_the_course_format(make_config, capsys):
    fit(make_config(epochs=1), progress=True)
    captured = capsys.readouterr()
    assert re.search(r"Train: Loss=\d+\.\d\d Batch_id=\d+ Accuracy=\d+\.\d\d", captured.err)
    assert re.search(r"Test set: Average loss: \d+\.\d{4}, Accuracy: \d+/24 \(\d+\.\d\d%\)", captured.out)


def test_fast_recipe_runs_in_fp32(tmp_path, image_folder):
    """The fast recipe's path (batched, Muon, whitening, alternating flips, channels_last, TTA) on a
    CPU without bf16: each of its levers is in the run, not only a falling loss."""
    def run(name: str, **changed):
        return fit(load_config("fast", {
            "data.path": str(image_folder), "cache_dir": str(tmp_path / "cache"), "run_dir": str(tmp_path / name),
            "epochs": 3, "batch_size": 16, "precision": "fp32", "lr": 0.05} | changed), progress=False)

    result = run("run")
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    groups = load_checkpoint(tmp_path / "run").optimizer["param_groups"]
    assert any(group["orthogonalize"] for group in groups)  # Muon steps the dense filters
    first_conv = next(m for m in result.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert not first_conv.weight.requires_grad  # the whitened first conv stays frozen
    random_flips = run("random_flips", **{"augment.alternate_flip": False})
    assert random_flips.history[0]["train_loss"] != result.history[0]["train_loss"]


def test_ema_weights_are_saved_and_deployed(tmp_path, make_config):
    fit(make_config(epochs=2, ema=0.9), progress=False)
    state = load_checkpoint(tmp_path / "run")
    assert state.ema is not None and state.ema_state is not None
    differs = [not torch.equal(state.ema[k], state.model[k]) for k in state.model
               if state.model[k].is_floating_point()]
    assert any(differs)
    for k, v in state.net().state_dict().items():  # evaluation and export use the averaged weights
        assert torch.equal(v, state.ema[k])


@pytest.mark.parametrize("optim, schedule", [(name, "onecycle") for name in SETTINGS["optim.name"].choices]
                         + [("sgd", s) for s in SETTINGS["optim.schedule"].choices if s != "onecycle"])
def test_every_optimizer_and_schedule_trains(make_config, optim, schedule):
    lr = 0.05 if optim == "sgd" else 0.003
    history = fit(make_config(epochs=4, name=optim, schedule=schedule, lr=lr), progress=False).history
    assert history[-1]["train_loss"] < history[0]["train_loss"]  # it learns
    at_end = {"cosine": 0.0, "linear": 0.0, "step": lr * 0.01, "constant": lr}
    if schedule == "onecycle":  # torch's one-cycle, sampled one step past its end, is back off its floor
        assert history[-1]["lr"] < lr / 20
    else:
        assert history[-1]["lr"] == pytest.approx(at_end[schedule], abs=1e-12)  # the named schedule ran to its end


def test_target_accuracy_stops_early(make_config, capsys):
    result = fit(make_config(epochs=5, target_accuracy=0.0), progress=False)
    assert len(result.history) == 1
    assert "Reached the target 0.0% after epoch 1" in capsys.readouterr().out


def test_validation_split_is_evaluated_instead_of_test(tmp_path, make_config, capsys):
    result = fit(make_config(epochs=2, val_split=12, target_accuracy=101.0), progress=False)
    out = capsys.readouterr().out
    assert "60 train / 12 val images" in out
    assert re.search(r"Validation set: Average loss: .*Accuracy: \d+/12 ", out) and "Test set" not in out
    assert set(result.history[0]) >= {"val_loss", "val_acc"} and "test_acc" not in result.history[0]
    assert (tmp_path / "run" / "metrics.csv").read_text().startswith("epoch,train_loss,train_acc,val_loss,val_acc")


def test_a_run_never_replaces_another_unless_asked(tmp_path, make_config):
    from advconv.api import plot

    cfg = make_config(epochs=1)
    fit(cfg, progress=False)
    run = tmp_path / "run"
    plot(run)  # its figures are listed in the run's manifest: a new run may delete them
    (run / "notes.txt").write_text("the user's own file")
    (run / "extra.png").write_bytes(b"the user's own figure")
    before = (run / "last.pt").read_bytes()
    with pytest.raises(CheckpointError, match=r"already holds a run .*--resume .*--overwrite"):
        fit(make_config(epochs=1), progress=False)
    assert (run / "last.pt").read_bytes() == before
    fit(make_config(epochs=2), progress=False, overwrite=True)
    assert not (run / "curves.png").exists() and not (run / "confusion.png").exists()
    assert (run / "notes.txt").exists() and (run / "extra.png").read_bytes() == b"the user's own figure"
    assert load_checkpoint(run).epoch == 2


USERS_FILES = {"holiday.png": b"\x89PNG a photo", "notes.txt": b"my notes", "model.onnx": b"my own export",
               "manifest.json": b'{"trip": "2026"}'}


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_of_the_users_own_files_is_refused_and_kept_byte_for_byte(tmp_path, make_config, overwrite, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for name, content in USERS_FILES.items():
        (run / name).write_bytes(content)
    with pytest.raises(CheckpointError, match="holds files that no advconv run wrote .*choose another --run_dir or "
                                              "an empty one"):
        fit(make_config(epochs=1), progress=False, overwrite=overwrite)
    assert {f.name: f.read_bytes() for f in run.iterdir()} == USERS_FILES


def test_a_run_that_never_finished_an_epoch_blocks_nothing(tmp_path, make_config):
    from advconv.trained.manifest import record_outputs, start_session

    run = tmp_path / "run"
    run.mkdir()
    start_session(run, {"config": {}})  # what a run stopped before its first epoch leaves
    (run / "curves.png").write_bytes(b"stale")
    record_outputs([run / "curves.png"])
    fit(make_config(epochs=1), progress=False)
    assert not (run / "curves.png").exists() and load_checkpoint(run).epoch == 1


def test_manifest_names_command_config_and_machine(tmp_path, make_config):
    import importlib.metadata
    import json

    cfg = make_config(epochs=1)
    fit(cfg, progress=False)
    (session,) = json.loads((tmp_path / "run" / "manifest.json").read_text())["sessions"]
    assert session["config"] == cfg.to_dict() and session["finished"] and session["wall_s"] > 0
    assert session["versions"]["torch"] == importlib.metadata.version("torch")
    machine = session["machine"]
    assert machine["cpu"] and machine["torch_threads"] >= 1 and machine["device"] == "cpu"
    assert isinstance(session["command"], list)


def test_fp16_training_resumes_with_its_loss_scale(tmp_path, image_folder):
    settings = dict(precision="fp16", deterministic=True, epochs=2)
    straight = fit(tiny_config(tmp_path / "a", image_folder, **settings), progress=False)
    cfg = tiny_config(tmp_path / "b", image_folder, **settings)
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, log=interrupt_after(1), progress=False)
    saved = load_checkpoint(tmp_path / "b" / "run")
    assert saved.epoch == 1 and saved.scaler["scale"] > 0  # the scaler's state travels with the checkpoint
    resumed = fit(resume_from=cfg.run_dir, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]  # the resumed run trained epoch 2
    a, b = load_checkpoint(tmp_path / "a" / "run"), load_checkpoint(tmp_path / "b" / "run")
    assert a.scaler == b.scaler  # the scale and its growth counter went on where they stopped
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


OPEN_NET = {"blocks": [{"conv_type": ["standard", "standard"], "out_channels": [8, 8], "kernel_size": [3, 3],
                        "stride": [1, 1], "padding": [1, 1], "dilation": [1, 1]}]}  # breaks most of the rules


def test_a_net_outside_the_rules_trains_with_a_warning_per_rule_or_not_at_all_when_strict(make_config, capsys):
    fit(make_config(epochs=1, model=OPEN_NET), progress=False)
    warned = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: the net fails")]
    assert len(warned) == 4 and any("'dilated conv'" in line for line in warned)
    with pytest.raises(ConfigError, match="strict: the net fails .*dilated conv"):
        fit(make_config(epochs=1, model=OPEN_NET, strict=True, run_dir=str(make_config().run_dir) + "2"),
            progress=False)
    fit(make_config(epochs=1, strict=True, run_dir=str(make_config().run_dir) + "3"), progress=False)
    # the default net keeps every rule
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("min_steps, batch, lr", [(20, 16, 0.05 * 16 / 64), (0, 64, 0.05)])
def test_a_small_training_set_trains_with_a_smaller_batch_and_says_so(tmp_path, make_config, min_steps, batch, lr):
    lines = []
    result = fit(make_config(epochs=1, batch_size=64, min_steps=min_steps), log=lines.append, progress=False)
    saved = load_checkpoint(tmp_path / "run").config
    assert (saved["batch_size"], saved["optim"]["lr"]) == (batch, pytest.approx(lr))  # a resume keeps them
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["sessions"][0]["config"] == saved  # the record says what ran, adaptations included
    noted = [line for line in lines if line.startswith("note: 72 training images make 1 steps of batch 64")]
    assert len(noted) == (1 if min_steps else 0)
    assert load_checkpoint(tmp_path / "run").optimizer["param_groups"][-1]["max_lr"] == pytest.approx(lr)
    assert result.history[0]["lr"] < lr  # one-cycle's peak was the adapted lr


def test_a_conv_this_torch_gets_wrong_in_channels_last_makes_the_run_train_nchw(tmp_path, make_config,
                                                                                monkeypatch):
    from advconv.training import train

    lines = []
    fit(make_config(epochs=1), log=lines.append, progress=False)  # the default net: right in channels_last
    assert load_checkpoint(tmp_path / "run").config["channels_last"] is True
    assert not [line for line in lines if "channels_last" in line]

    tried = []

    def wrong(conv, input_shape, rt):
        tried.append((conv.groups, input_shape))
        return False

    monkeypatch.setattr(train, "channels_last_grads_right", wrong)
    fit(make_config(epochs=1), log=lines.append, progress=False, overwrite=True)
    assert len(tried) == 1 and tried[0][0] > 1 and len(tried[0][1]) == 3  # the first grouped conv, at its (C, H, W)
    assert load_checkpoint(tmp_path / "run").config["channels_last"] is False  # a resume keeps it
    assert [line for line in lines if line.startswith("note: this torch computes the weight gradients of c")
            and "training NCHW (channels_last: false)" in line]


def test_the_data_path_is_stored_resolved(tmp_path, image_folder, monkeypatch):
    import os

    monkeypatch.chdir(image_folder.parent)
    fit(tiny_config(tmp_path, os.path.relpath(image_folder), epochs=1), progress=False)
    assert load_checkpoint(tmp_path / "run").config["data"]["path"] == str(image_folder.resolve())
