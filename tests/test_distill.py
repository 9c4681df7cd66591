"""Distillation: the teacher's probabilities in the targets, their cache, and the teacher's checks."""

import dataclasses

import numpy as np
import pytest
import torch

from advconv.data.datasets import load_dataset
from advconv.data.loaders import make_loaders
from advconv.errors import ConfigError
from advconv.runtime import Runtime
from advconv.trained.hub import load_model
from advconv.training import train
from advconv.training.distill import distilled_targets, teacher_probabilities
from advconv.training.train import fit

from .conftest import tiny_config


@pytest.fixture
def train_set(image_folder, tmp_path):
    return load_dataset(image_folder, tmp_path / "cache")[0]


def test_targets_are_the_label_and_the_teacher_in_the_given_shares(make_config, checkpoint, train_set):
    cfg = make_config(teacher=str(checkpoint), teacher_weight=0.3)
    targets, note = distilled_targets(cfg, train_set, Runtime())
    probs, _ = teacher_probabilities(load_model(checkpoint), train_set, 1.0, Runtime(), cfg.data.cache_dir)
    labels = torch.nn.functional.one_hot(torch.from_numpy(train_set.labels), 3).float()
    assert torch.allclose(targets, 0.7 * labels + 0.3 * probs)
    assert torch.allclose(targets.sum(1), torch.ones(len(train_set)))
    assert "distilling from" in note and f"{len(train_set)} training images" in note


def test_a_higher_temperature_softens_the_teacher(checkpoint, train_set, tmp_path):
    teacher = load_model(checkpoint)
    sharp, _ = teacher_probabilities(teacher, train_set, 1.0, Runtime(), tmp_path)
    soft, _ = teacher_probabilities(teacher, train_set, 4.0, Runtime(), tmp_path)
    assert (soft.max(1).values < sharp.max(1).values).all()


def test_the_cache_is_used_and_a_new_teacher_or_new_images_miss_it(checkpoint, train_set, tmp_path):
    teacher, rt = load_model(checkpoint), Runtime()
    first, cached = teacher_probabilities(teacher, train_set, 1.0, rt, tmp_path)
    again, cached_again = teacher_probabilities(teacher, train_set, 1.0, rt, tmp_path)
    assert (cached, cached_again) == (False, True) and torch.equal(first, again)

    with torch.no_grad():
        next(teacher.net.parameters()).mul_(0.5)
    changed, cached = teacher_probabilities(teacher, train_set, 1.0, rt, tmp_path)
    assert not cached and not torch.allclose(changed, first)

    other = dataclasses.replace(train_set, images=np.ascontiguousarray(train_set.images[::-1]))
    assert not teacher_probabilities(teacher, other, 1.0, rt, tmp_path)[1]


@pytest.mark.parametrize("pipeline", ["batched", "albumentations"])
def test_a_student_trains_on_the_teachers_targets(make_config, checkpoint, pipeline, monkeypatch):
    lines, given = [], []

    def loaders_seeing_the_targets(*args):
        given.append(args[-1])  # the training targets handed to the loaders
        return make_loaders(*args)

    monkeypatch.setattr(train, "make_loaders", loaders_seeing_the_targets)
    result = fit(make_config(teacher=str(checkpoint), pipeline=pipeline, epochs=2), log=lines.append, progress=False)
    assert np.isfinite(result.history[-1]["train_loss"])
    assert any(line.startswith("note: distilling from") for line in lines)
    (targets,) = given
    assert targets is not None and targets.ndim == 2 and torch.allclose(targets.sum(1), torch.ones(len(targets)))
    assert ((targets > 0) & (targets < 1)).any(1).all()  # soft: the teacher's share beside each label


def test_a_teacher_that_saw_the_validation_split_is_refused(tmp_path, image_folder, checkpoint):
    with pytest.raises(ConfigError, match="validation split"):
        fit(tiny_config(tmp_path / "s", image_folder, teacher=str(checkpoint), val_split=12), progress=False)

    held_out = fit(tiny_config(tmp_path / "t", image_folder, val_split=12, epochs=1), progress=False).run_dir
    fit(tiny_config(tmp_path / "s2", image_folder, teacher=str(held_out), val_split=12, epochs=1), progress=False)


def test_a_teacher_of_other_classes_is_refused(make_config, checkpoint, train_set):
    other = dataclasses.replace(train_set, classes=("a", "b", "c"))
    with pytest.raises(ConfigError, match="predicts the classes circle, cross, stripes"):
        distilled_targets(make_config(teacher=str(checkpoint)), other, Runtime())
