"""A trained model scored on labelled images: the test set of the data it was trained on, other
labelled images, or the validation split its run held out."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.datasets import SPLIT_NAMES, TORCHVISION, ArrayDataset, hold_out, load_dataset, load_labelled, split_digest
from ..errors import ConfigError, DataError, note
from . import runfiles
from .calibration import BINS, Calibration, calibrate, calibration_error
from .checkpoint import save_weights
from .hub import SHIPPED, TrainedModel, load_model
from .scoring import EvalResult, score


@dataclass
class CheckpointEvaluation:
    trained: TrainedModel       # the net, its inference record and where it came from
    images: ArrayDataset        # the images scored: the test set, or the run's held-out ones
    result: EvalResult
    split: str = "test"         # which of the two (data.SPLIT_NAMES)

    def calibration_line(self) -> str:
        """The expected calibration error on these images, as trained and with the weights' temperature."""
        t = self.trained.record.temperature
        before = calibration_error(self.result.logits, self.result.targets)
        if t == 1.0:
            return (f"expected calibration error ({BINS} bins): {before:.2f} % (no temperature fitted: "
                    "advconv calibrate)")
        after = calibration_error(self.result.logits, self.result.targets, t)
        return (f"expected calibration error ({BINS} bins): {before:.2f} % as trained, {after:.2f} % with its "
                f"temperature {t:.3f}")


def data_of(trained: TrainedModel, data: str | Path | None) -> str | Path | None:
    """``data`` when given, else the data the model was trained on, if it is on this machine
    (None: torchvision's CIFAR-10, as in training; said in one line where the model's record
    names other data)."""
    if data is not None:
        return data
    stored = trained.data_config.get("path")
    if stored is not None and not Path(stored).expanduser().exists():
        raise DataError(f"the data this model was trained on, {stored}, is not on this machine: "
                        "give the data with --data PATH")
    recorded = trained.provenance.get("data")
    if stored is None and isinstance(recorded, dict) and recorded.get("name") != TORCHVISION:
        note(f"no --data given: using {TORCHVISION} (the original binaries); this model's recorded figures were "
             f"measured on {recorded['name']}, other images: give --data for those")
    return stored


def trained_on(trained: TrainedModel, data: str | Path | None = None,
               cache_dir: str | Path | None = None) -> tuple[ArrayDataset, ArrayDataset]:
    """The (train, test) data ``trained`` was trained on, or ``data`` when given."""
    return load_dataset(data_of(trained, data), cache_dir, size=trained.record.input_size)


def labelled_for(trained: TrainedModel, data: str | Path | None = None,
                 cache_dir: str | Path | None = None) -> ArrayDataset:
    """Labelled images to evaluate ``trained`` on: ``data`` (a dataset's test/, or a bare
    <class>/ folder), else the test set of the data it was trained on."""
    source = data_of(trained, data)
    if source is None:
        return trained_on(trained, None, cache_dir)[1]  # torchvision's CIFAR-10
    return load_labelled(source, trained.record.classes, cache_dir, size=trained.record.input_size)


def labelled_at_hand(trained: TrainedModel, data: str | Path | None = None,
                     cache_dir: str | Path | None = None) -> ArrayDataset | None:
    """``labelled_for`` where no download is needed: ``data`` when given, else the data the model
    was trained on when it is on this machine; None otherwise."""
    stored = trained.data_config.get("path")
    if data is None and not (stored and Path(stored).expanduser().exists()):
        return None
    return labelled_for(trained, data, cache_dir)


def held_out_for(trained: TrainedModel, data: str | Path | None = None,
                 cache_dir: str | Path | None = None) -> ArrayDataset:
    """The validation images ``trained``'s run held out of its training data (``data.val_split``):
    what a choice between recipes is scored on, so that the test set stays unseen."""
    count = trained.data_config.get("val_split", 0)
    if not count:
        raise ConfigError("this model was trained without data.val_split: it has no held-out images to be scored on")
    return hold_out(trained_on(trained, data, cache_dir)[0], count)[1]


def default_split(trained: TrainedModel) -> str:
    """What a run's own figures score: the images it held out when it had a validation split
    (the test set stays unseen while recipes are chosen), else the test set."""
    return "val" if trained.data_config.get("val_split") else "test"


def evaluate_checkpoint(source: str | Path, data: str | None = None, tta_flip: bool | None = None,
                        tta_shift: int | None = None, split: str = "test",
                        cache_dir: str | Path | None = None) -> CheckpointEvaluation:
    """Test-set result of a trained model (anything ``load_model`` takes), on ``data`` or the data
    it was trained on; ``tta_flip`` and ``tta_shift`` default to what the run used. ``split="val"``
    scores the images the run held out instead, so that test-time views or runs can be compared
    without looking at the test set; ``split=None``: the run's own (``default_split``)."""
    trained = load_model(source)
    split = split or default_split(trained)
    if split not in SPLIT_NAMES:
        raise ConfigError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}")
    images = held_out_for(trained, data, cache_dir) if split == "val" else labelled_for(trained, data, cache_dir)
    recorded = trained.provenance.get("data")
    scored_on_test = split == "test" == default_split(trained)  # a run with a validation split never was
    if scored_on_test and isinstance(recorded, dict) and recorded.get("test_digest") == split_digest(images):
        note(f"these are the test images this model was scored on ({recorded['name']}): its recorded figures "
             "should reproduce, within an image or two where they were scored in bf16")
    return CheckpointEvaluation(trained, images, score(trained, images, tta_flip, tta_shift), split)


def sample_misclassified(predictions: np.ndarray, targets: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Indices of ``count`` misclassified images spread over the test set (it is sorted by
    class, so the first ones would all be airplanes)."""
    wrong = np.flatnonzero(predictions != targets)
    return np.sort(np.random.default_rng(seed).choice(wrong, min(count, len(wrong)), replace=False))


def calibrate_weights(source: str | Path, data: str | Path | None = None, unsure_score: str = "max_probability",
                      output: str | Path | None = None,
                      cache_dir: str | Path | None = None) -> tuple[Calibration, Path]:
    """Fit ``source``'s temperature and unsure threshold (``calibrate``) on the images its figures
    do not use: its run's validation split, else the two halves of the test set of ``data`` (or
    of the data it was trained on); write the weights with them to ``output`` (default: the
    weights file it came from). Returns (the calibration, the weights file written)."""
    scored = evaluate_checkpoint(source, data, split=None, cache_dir=cache_dir)  # the run's own split
    trained, result, held_out = scored.trained, scored.result, scored.split == "val"
    found = calibrate(result.logits, result.targets, unsure_score, held_out)
    if output is None:  # the weights it came from: a run's deployed file, or the .safetensors given
        path = Path(source)
        output = path / runfiles.WEIGHTS if path.is_dir() else path
        if not output.exists() or SHIPPED in output.resolve().parents:
            raise ConfigError(f"{source} is not a weights file of yours (shipped weights live in the package): "
                              "give --output FILE.safetensors")
        if output.suffix != ".safetensors":
            raise ConfigError(f"{source} is a checkpoint: give --output FILE.safetensors for the calibrated weights")
    record = dataclasses.replace(trained.record, temperature=found.temperature, unsure_score=found.unsure_score,
                                 unsure_threshold=found.unsure_threshold)
    provenance = trained.provenance | {"calibration": dataclasses.asdict(found)}
    return found, save_weights(output, trained.net.state_dict(), record, provenance)
