"""Two trained nets on the same images: the discordant counts and the exact McNemar test."""

import pytest
import torch

from advconv.cli import main
from advconv.trained.compare import mcnemar_p, paired
from advconv.trained.scoring import EvalResult
from advconv.training.train import fit


def result(predictions: list[int], targets: list[int]) -> EvalResult:
    p, t = torch.tensor(predictions), torch.tensor(targets)
    return EvalResult(0.0, int((p == t).sum()), len(t), p, t)


@pytest.mark.parametrize("only_first, only_second, expected", [
    (0, 0, 1.0),                 # no disagreement: nothing tells them apart
    (5, 5, 1.0),
    (10, 0, 2 * 0.5 ** 10),      # every disagreement one way: both tails of Binomial(10, 1/2)
    (0, 10, 2 * 0.5 ** 10),
    (7, 3, 0.34375),             # 2 * P(X >= 7), X ~ Binomial(10, 1/2) = 2 * 176 / 1024
])
def test_mcnemar_p_is_the_two_sided_exact_binomial_tail(only_first, only_second, expected):
    assert mcnemar_p(only_first, only_second) == pytest.approx(expected)


def test_paired_counts_only_the_images_one_net_gets_right():
    targets = [0, 1, 2, 3, 4, 5]
    first = result([0, 1, 2, 9, 9, 5], targets)    # right on 0, 1, 2, 5
    second = result([0, 9, 9, 3, 9, 5], targets)   # right on 0, 3, 5
    compared = paired(first, second)
    assert (compared.only_first, compared.only_second) == (2, 1)
    assert compared.p_value == pytest.approx(1.0)
    lines = compared.lines("a", "b")
    assert lines[0] == "a  66.67% (4/6)" and lines[1] == "b  50.00% (3/6)"
    assert "no difference beyond chance" in lines[3]
    assert paired(first, first).lines("a", "a")[3] == "exact McNemar test: p = 1: the two agree on every image"
    swapped = result([0, 9, 9, 3, 4, 5], targets)  # right on 0, 3, 4, 5: two images each way against first
    assert paired(first, swapped).lines("a", "b")[3].endswith("a tie: each gets half of the images they disagree on")


def test_compare_two_runs_on_their_validation_split(tmp_path, make_config, capsys):
    for seed in (0, 1):
        fit(make_config(epochs=1, val_split=40, seed=seed, run_dir=str(tmp_path / f"s{seed}")), progress=False)
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "s0"), str(tmp_path / "s1"), "--no-tta-flip"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[0].endswith("/40)") and out[3].startswith("exact McNemar test: p = ")
    assert main(["compare", str(tmp_path / "s0"), str(tmp_path / "s0")]) == 0
    assert "right only by the first: 0 images; only by the second: 0" in capsys.readouterr().out
    fit(make_config(epochs=1, val_split=30, run_dir=str(tmp_path / "other")), progress=False)
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "s0"), str(tmp_path / "other")]) == 2
    assert "scored on different val images (40 and 30)" in capsys.readouterr().err
