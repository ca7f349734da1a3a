"""The engine's opt-in per-epoch evaluation (``fit(..., eval_sets=...)``): it records every
epoch's test metrics without changing the training, and the default history is unchanged."""

from __future__ import annotations

import math

import pytest
import torch

from survey_lib.train import TrainConfig, evaluate, fit
from survey_lib.train.engine import _HISTORY_COLUMNS

from .tiny_model import TinyNet, tiny_data

torch.set_num_threads(1)
BASE = dict(epochs=3, lr=0.05, batch_size=16, mean=(0.5,), std=(0.25,))


def _model() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet(dropout=0.3)


def _equal_state(a: TinyNet, b: TinyNet) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("frozen", [0, 1])  # 1: the cached frozen-unit fast path
def test_eval_sets_record_without_changing_training(frozen: int) -> None:
    train, val, test = tiny_data(), tiny_data(40, seed=1), tiny_data(30, seed=2)
    config = TrainConfig(**BASE, augment="none" if frozen else "crop_flip", crop_padding=2,
                         frozen_units=frozen)
    plain, watched = _model(), _model()
    r_plain = fit(plain, train, val, config, progress=False)
    r_watched = fit(watched, train, val, config, progress=False, eval_sets={"test": test})
    assert r_plain.cached_frozen == bool(frozen) == r_watched.cached_frozen
    assert _equal_state(plain, watched)
    assert list(r_plain.history.columns) == _HISTORY_COLUMNS  # the default history, unchanged
    assert list(r_watched.history.columns) == _HISTORY_COLUMNS + ["test_loss", "test_acc"]
    shared = [c for c in _HISTORY_COLUMNS if c != "seconds"]
    assert r_plain.history[shared].equals(r_watched.history[shared])
    final = evaluate(watched, test, mean=config.mean, std=config.std, device="cpu")
    assert r_watched.history["test_acc"].iloc[-1] == final["accuracy"]
    assert r_watched.history["test_loss"].iloc[-1] == pytest.approx(final["loss"], rel=1e-6)


def test_eval_every_skips_epochs_but_always_evaluates_the_last() -> None:
    train, test = tiny_data(), tiny_data(30, seed=2)
    config = TrainConfig(**BASE, augment="none")
    result = fit(_model(), train, None, config, progress=False, eval_sets={"test": test},
                 eval_every=2)
    accs = result.history["test_acc"].tolist()
    assert math.isnan(accs[0]) and not math.isnan(accs[1]) and not math.isnan(accs[2])


@pytest.mark.parametrize(
    ("sets", "every", "match"),
    [({"val": None}, 1, "identifiers other than"), ({"my-test": None}, 1, "identifiers"),
     ({"test": "empty"}, 1, "no examples"), ({"test": "shape"}, 1, "differ from train"),
     ({}, 0, "eval_every must be an int >= 1")],
)
def test_bad_eval_sets_say_what_is_valid(sets: dict, every: int, match: str) -> None:
    train = tiny_data()
    data = {"empty": train.subset(torch.tensor([], dtype=torch.int64)),
            "shape": tiny_data(10, size=6), None: tiny_data(10)}
    with pytest.raises(ValueError, match=match):
        fit(_model(), train, None, TrainConfig(**BASE), progress=False,
            eval_sets={k: data[v] for k, v in sets.items()}, eval_every=every)
