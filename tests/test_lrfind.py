"""lrfind: the range test ramps the lr over the config's own net and data, stops at divergence,
suggests a peak lr by its stated rule, and refuses a set too small for its steps."""

import pytest

import advconv
from advconv.cli import main
from advconv.errors import ConfigError
from advconv.training.lrfind import DIVERGED, RangeTest, lr_range_test


def test_the_ramp_is_exponential_and_stops_when_the_loss_blows_up(make_config):
    test = lr_range_test(make_config(batch_size=8, min_steps=0), steps=30, start_lr=1e-3, end_lr=1e4,
                         say=lambda _: None)
    ratio = test.lrs[1] / test.lrs[0]
    assert ratio == pytest.approx((1e4 / 1e-3) ** (1 / 29))
    assert all(b / a == pytest.approx(ratio) for a, b in zip(test.lrs, test.lrs[1:]))
    assert len(test.lrs) < 30 and "stopped at lr" in test.stopped  # lr 1e4 diverges long before the end
    assert test.smoothed[-1] > DIVERGED * min(test.smoothed) or "no longer finite" in test.stopped
    assert test.lrs[0] <= test.minimum <= test.lrs[-1]


def test_the_suggestion_is_a_tenth_of_the_smoothed_minimum_at_the_configured_batch():
    test = RangeTest([0.01, 0.1, 1.0, 10.0], [2.0, 1.5, 1.0, 9.0], [2.0, 1.6, 1.2, 5.0], "done")
    assert test.minimum == 1.0 and test.suggestion == pytest.approx(0.1)
    halved = RangeTest(test.lrs, test.losses, test.smoothed, "done", rescaled=2.0)  # ran at half the batch
    assert halved.suggestion == pytest.approx(0.2)
    assert "multiplies --lr by 0.5" in " ".join(halved.lines())


def test_a_curve_that_never_turns_up_gives_no_number():
    flat = RangeTest([0.01, 0.1, 1.0, 10.0], [2.0, 1.9, 1.9, 1.8], [2.0, 1.95, 1.9, 1.85], "reached end_lr 10")
    assert flat.suggestion is None
    said = "\n".join(flat.lines())
    assert "no suggestion" in said and "--lr" not in said


def test_lr_find_writes_its_figure_and_prints_the_rule(make_config, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = make_config(batch_size=8, min_steps=0)
    assert main(["lr-find", "--data", cfg.data.path, "--cache_dir", cfg.data.cache_dir, "--batch_size", "8",
                 "--min_steps", "0", "--pipeline", "batched", "--steps", "20", "--end_lr", "1e4", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "suggested peak lr for one-cycle: --lr" in out and "a tenth of the lr at the smoothed loss's minimum" in out
    assert (tmp_path / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "runs").exists()  # a range test trains no run


def test_the_api_takes_a_config_and_starting_weights(make_config, tmp_path):
    test = advconv.lr_find(make_config(), output=tmp_path / "f.png", steps=12, pretrained="stem8.default",
                           progress=False)
    assert len(test.lrs) >= 2 and (tmp_path / "f.png").exists()
    scratch = advconv.lr_find(make_config(), output=None, steps=12, model="stem8", progress=False)
    assert test.losses[0] != scratch.losses[0]  # the same net, seed and first batch: only the weights differ


def test_a_set_too_small_for_the_steps_says_so_and_writes_nothing(make_config, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = make_config()  # 72 images: batch 16 after the small-set rule, 4 batches per pass
    with pytest.raises(ConfigError, match="72 training images make 4 batches of 16: 17 steps would show each image "
                                          "more than 4 times; give --steps 16 or fewer"):
        advconv.lr_find(cfg, steps=17, progress=False)
    assert main(["lr-find", "--data", cfg.data.path, "--cache_dir", cfg.data.cache_dir, "--steps", "5"]) == 2
    assert "at least 10 steps" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png"))
