"""Every regularizer through the real training engine, on a tiny model and tiny data."""

from __future__ import annotations

import pytest
import torch

from survey_lib.data.base import ImageDataset
from survey_lib.regularizers import create_regularizer
from survey_lib.train import TrainConfig, fit

from .regularizer_helpers import make_pair
from .test_regularizer_contract import NAMES, ZERO


def tiny_data(n: int = 48, classes: int = 5, seed: int = 0) -> ImageDataset:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=generator)
    noise = torch.randint(0, 60, (n, 3, 8, 8), generator=generator)
    images = (noise + labels.view(n, 1, 1, 1) * 45).clamp(0, 255).to(torch.uint8)
    return ImageDataset("tiny", "train", images, labels, tuple(f"c{i}" for i in range(classes)))


@pytest.mark.parametrize("name", NAMES)
def test_fit_adds_the_penalty_and_leaves_the_source_alone(name: str) -> None:
    torch.manual_seed(0)
    source, target = make_pair()
    data = tiny_data()
    source_before = {k: v.clone() for k, v in source.state_dict().items()}
    prep = (data.images[:16].float() / 255 - 0.5) / 0.5
    extra = {
        "l2_sp_lower": {"num_sp_units": 1},
        "delta": {"attention_data": (prep, data.labels[:16]), "head_steps": 5},
        "delta_sum": {"attention_data": (prep, data.labels[:16]), "head_steps": 5},
    }
    reg = create_regularizer(name, source_model=source, target_model=target, **extra.get(name, {}))
    target = reg.transform(target)
    config = TrainConfig(epochs=1, lr=0.05, batch_size=16, augment="none", weight_decay=0.0)
    result = fit(target, data, None, config, penalty=reg.penalty, progress=False)
    assert result.status == "ok"
    penalties = result.history["train_penalty"]
    if name in ZERO:
        assert (penalties == 0).all()
    else:
        assert (penalties > 0).all()
    for key, tensor in source.state_dict().items():
        assert torch.equal(tensor, source_before[key]), key
