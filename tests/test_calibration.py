"""Calibration: a temperature that makes probabilities honest, and an unsure answer."""

import json

import pytest
import torch

from advconv.cli import main
from advconv.trained.calibration import (KEEP, UNSURE, calibrate, calibration_error, fit_temperature, scores,
                                         threshold_keeping)
from advconv.trained.hub import load_model
from advconv.trained.inference import predict


def overconfident(n: int = 4000, classes: int = 10, sharpen: float = 3.0, seed: int = 0):
    """Labels drawn from softmax(z), and the logits of a net that states them ``sharpen`` times too surely."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, classes, generator=g) * 1.5
    labels = torch.multinomial(z.softmax(1), 1, generator=g).squeeze(1)
    return z * sharpen, labels


def test_the_fitted_temperature_undoes_overconfidence_and_lowers_the_error():
    logits, labels = overconfident()
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    assert calibration_error(logits, labels, t) < calibration_error(logits, labels) / 3
    assert (logits / t).argmax(1).equal(logits.argmax(1))  # no answer changes


def test_both_scores_rank_sure_images_higher_and_the_threshold_keeps_its_share():
    sure, unsure = torch.tensor([[9.0, 0, 0]]), torch.tensor([[0.1, 0, 0]])
    for kind in ("max_probability", "energy"):
        assert scores(sure, kind) > scores(unsure, kind)
    with pytest.raises(ValueError, match="unknown score"):
        scores(sure, "entropy")
    values = torch.arange(1000.0)
    assert (values >= threshold_keeping(values)).float().mean() == pytest.approx(KEEP, abs=0.002)


def test_a_test_set_is_fitted_on_one_half_and_reported_on_the_other_both_ways():
    logits, labels = overconfident()
    held = calibrate(logits, labels, held_out=True)
    halves = calibrate(logits, labels, held_out=False)
    assert "validation split" in held.fitted_on and "one half of the test set" in halves.fitted_on
    assert halves.ece_after < halves.ece_before and halves.temperature == pytest.approx(held.temperature, rel=0.1)
    assert "unsure below max_probability" in "\n".join(halves.lines())


def test_calibrate_stores_the_temperature_and_predict_and_evaluate_use_it(checkpoint, tmp_path, capsys):
    out = tmp_path / "calibrated.safetensors"
    assert main(["calibrate", "--model", str(checkpoint), "--output", str(out)]) == 0
    assert "temperature" in capsys.readouterr().out
    record = json.loads(out.with_suffix(".json").read_text())["record"]
    plain, calibrated = load_model(checkpoint), load_model(out)
    assert calibrated.record.temperature == record["temperature"] != 1.0
    assert calibrated.record.unsure_score == "max_probability" and calibrated.record.unsure_threshold is not None
    noise = torch.rand(6, 3, 32, 32)
    before, after = predict(plain, noise, top_k=1), predict(calibrated, noise, top_k=1)
    assert [p.top[0][0] for p in before] == [p.top[0][0] for p in after]  # the same answers ...
    assert [p.top[0][1] for p in before] != [p.top[0][1] for p in after]  # ... stated otherwise
    assert main(["evaluate", "--model", str(out)]) == 0
    assert "expected calibration error (15 bins)" in capsys.readouterr().out


def test_an_image_below_the_threshold_is_marked_unsure_with_its_top_classes(checkpoint, tmp_path):
    out = tmp_path / "w.safetensors"
    main(["calibrate", "--model", str(checkpoint), "--output", str(out)])
    meta = json.loads(out.with_suffix(".json").read_text())
    meta["record"]["unsure_threshold"] = 1.1  # above any probability: every answer is unsure
    out.with_suffix(".json").write_text(json.dumps(meta))
    (found,) = predict(load_model(out), torch.rand(1, 3, 32, 32), top_k=2)
    assert found.unsure and len(found.top) == 2 and UNSURE in found.line()


def test_shipped_weights_are_not_overwritten(capsys):
    assert main(["calibrate", "--model", "stem8.default", "--data", "nowhere"]) == 2
    assert "error:" in capsys.readouterr().err
