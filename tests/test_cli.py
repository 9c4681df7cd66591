"""The advconv command: what it refuses, and how it ends."""

import json

import pytest
import torch

from advconv import cli


@pytest.mark.parametrize("extra, named", [
    (["--epochs", "3"], "epochs"), (["--lr=0.1"], "optim.lr"), (["--data", "elsewhere"], "data.path"),
    (["--config", "fast"], "config"), (["--overwrite"], "overwrite"),
])
def test_resume_refuses_any_other_setting(tmp_path, make_config, capsys, extra, named):
    from advconv.training.train import fit

    fit(make_config(epochs=1), progress=False)
    before = (tmp_path / "run" / "last.pt").read_bytes()
    assert cli.main(["train", "--resume", str(tmp_path / "run"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and "a longer or changed run is a new run" in err
    assert (tmp_path / "run" / "last.pt").read_bytes() == before


def test_resume_of_a_finished_run_changes_nothing(tmp_path, make_config, capsys):
    from advconv.trained.checkpoint import load_checkpoint
    from advconv.training.train import fit

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


def test_version_and_help_without_markup(capsys):
    import advconv

    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"advconv {advconv.__version__}"
    for command in ([], ["train"], ["predict"]):
        with pytest.raises(SystemExit):
            cli.main([*command, "--help"])
        assert "``" not in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["train", "--lr"], "argument --optim.lr/--lr: expected one argument"),
    (["train", "--epochz", "3"], "unrecognized arguments: --epochz"),
])
def test_bad_options_get_argparse_one_liners(capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        cli.main(args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_every_multi_word_option_takes_either_spelling(tmp_path, make_config, capsys):
    from advconv.config import SETTINGS

    parser = cli.build_parser()
    flags = {flag for action in parser._subparsers._group_actions[0].choices["train"]._actions
             for flag in action.option_strings}
    for path in SETTINGS:
        if "_" in path:
            assert {f"--{path}", f"--{path.replace('_', '-')}"} <= flags, path


def test_help_and_the_parser_load_no_torch():
    """`advconv --help` must answer at once: building the parser imports nothing heavy."""
    import subprocess
    import sys

    code = ("import sys; from advconv.cli import build_parser; build_parser(); import advconv; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'scipy', 'gradio') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
