"""The advconv command: what it refuses, and how it ends."""

import json

import pytest
import torch

from advconv import cli


@pytest.mark.parametrize("extra, named", [
    (["--epochs", "3"], "epochs"), (["--lr=0.1"], "optim.lr"), (["--data", "elsewhere"], "data.path"),
    (["--config", "configs/fast.yaml"], "config"), (["--overwrite"], "overwrite"),
])
def test_resume_refuses_any_other_setting(tmp_path, make_config, capsys, extra, named):
    from advconv.train import fit

    fit(make_config(epochs=1), progress=False)
    before = (tmp_path / "run" / "last.pt").read_bytes()
    assert cli.main(["train", "--resume", str(tmp_path / "run"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and "a longer or changed run is a new run" in err
    assert (tmp_path / "run" / "last.pt").read_bytes() == before


def test_resume_of_a_finished_run_changes_nothing(tmp_path, make_config, capsys):
    from advconv.checkpoint import load_checkpoint
    from advconv.train import fit

    fit(make_config(epochs=1), progress=False)
    before = load_checkpoint(tmp_path / "run")
    assert cli.main(["train", "--resume", str(tmp_path / "run"), "--no-progress"]) == 0
    assert "Resumed" in capsys.readouterr().out
    after = load_checkpoint(tmp_path / "run")
    assert after.epoch == before.epoch == 1 and after.history == before.history
    for name, tensor in before.model.items():
        assert torch.equal(tensor, after.model[name]), name  # no step ran, nothing was rewritten
    sessions = json.loads((tmp_path / "run" / "manifest.json").read_text())["sessions"]
    assert len(sessions) == 2 and all(s["finished"] for s in sessions)


def test_ctrl_c_ends_with_the_resume_command(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "last.pt").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr("advconv.api._fit", interrupted)
    assert cli.main(["train", "--run_dir", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err.strip()
    assert err == (f"advconv train: interrupted; the last finished epoch is kept: continue with "
                   f"`advconv train --resume {tmp_path / 'run'}`")
