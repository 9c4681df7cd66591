"""From a run to figures and numbers: plot, evaluate, unreadable checkpoints."""

import re

from advconv.cli import main
from advconv.report import plot_run
from advconv.train import fit


def test_plot_and_evaluate_from_a_run(tmp_path, make_config, capsys):
    fit(make_config(epochs=1), progress=False)
    written = plot_run(tmp_path / "run")
    assert [p.name for p in written] == ["curves.png", "misclassified.png", "confusion.png", "per_class.png"]
    assert all(p.stat().st_size > 1000 for p in written)
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run" / "best.pt")]) == 0
    assert re.search(r"Test set: Average loss: .*Accuracy: \d+/24", capsys.readouterr().out)


def test_unreadable_checkpoint_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["evaluate", "--checkpoint", str(bad)]) == 2
    assert f"checkpoint {bad} is unreadable" in capsys.readouterr().err
