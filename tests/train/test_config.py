"""TrainConfig validation and the learning-rate schedules."""

from __future__ import annotations

import math

import pytest

from survey_lib.train import TrainConfig, lr_factor, milestone_steps


def test_from_dict_rejects_unknown_keys_and_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown TrainConfig keys \\['lrr'\\].*'batch_size'"):
        TrainConfig.from_dict({"epochs": 1, "lrr": 0.1})


def test_from_dict_requires_epochs_and_lr() -> None:
    with pytest.raises(ValueError, match="needs \\['lr'\\]"):
        TrainConfig.from_dict({"epochs": 1})


def test_from_dict_turns_lists_into_tuples() -> None:
    c = TrainConfig.from_dict({"epochs": 2, "lr": 0.1, "mean": [0.1, 0.2, 0.3], "std": [1, 1, 1]})
    assert c.mean == (0.1, 0.2, 0.3) and c.std == (1.0, 1.0, 1.0)
    assert TrainConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive int"),
        ({"lr": -1.0}, "lr must be a finite number > 0"),
        ({"lr": math.inf}, "lr must be a finite number > 0"),
        ({"schedule": "linear"}, "schedule must be one of \\('cosine', 'step', 'constant'\\)"),
        ({"augment": "mixup"}, "augment must be one of"),
        ({"momentum": 0.0}, "nesterov=True needs momentum > 0"),
        ({"step_milestones": (0.5, 3)}, "all fractions in \\(0, 1\\) or all epochs"),
        ({"step_milestones": (0.8, 0.5)}, "increasing"),
        ({"std": (0.0,)}, "std values must be > 0"),
        ({"mean": (0.5, 0.5), "std": (0.5,)}, "equal lengths"),
        ({"label_smoothing": 1.0}, "label_smoothing must be in"),
        ({"warmup_epochs": 5.0}, "warmup_epochs must be in"),
        ({"batch_size": 0}, "batch_size must be a positive int"),
    ],
)
def test_invalid_values_say_what_is_valid(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{"epochs": 2, "lr": 0.1, **changes})


def test_cosine_schedule_per_step() -> None:
    c = TrainConfig(epochs=2, lr=1.0, schedule="cosine")
    factors = [lr_factor(s, c, total_steps=10, steps_per_epoch=5) for s in range(10)]
    assert factors[0] == 1.0
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert factors[5] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert 0 < factors[-1] < 0.03


def test_warmup_is_linear_then_cosine() -> None:
    c = TrainConfig(epochs=4, lr=1.0, schedule="cosine", warmup_epochs=1.0)
    factors = [lr_factor(s, c, total_steps=16, steps_per_epoch=4) for s in range(16)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[4] == 1.0 and factors[5] < 1.0


def test_step_schedule_with_fractions_and_epochs() -> None:
    frac = TrainConfig(epochs=4, lr=1.0, schedule="step", step_milestones=(0.5, 0.75), gamma=0.1)
    assert milestone_steps(frac, total_steps=40, steps_per_epoch=10) == [20, 30]
    got = [lr_factor(s, frac, 40, 10) for s in (0, 19, 20, 29, 30, 39)]
    assert got == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01, 0.01])
    ep = frac.replace(step_milestones=(1, 3))
    assert milestone_steps(ep, total_steps=40, steps_per_epoch=10) == [10, 30]


def test_constant_schedule() -> None:
    c = TrainConfig(epochs=1, lr=1.0, schedule="constant")
    assert {lr_factor(s, c, 7, 7) for s in range(7)} == {1.0}
