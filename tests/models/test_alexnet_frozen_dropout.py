"""AlexNetSmall's ``frozen_dropout`` (Yosinski et al. 2014's Caffe nets keep dropout on in frozen
layers): it changes what frozen units compute in training mode, and nothing else."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from survey_lib.data.base import ImageDataset
from survey_lib.models import create_model
from survey_lib.train import TrainConfig, fit


@pytest.fixture(autouse=True)
def _single_thread() -> None:
    torch.set_num_threads(1)


def _pair(**kwargs) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    plain = create_model("alexnet_small", num_classes=4, fc_dim=32, **kwargs)
    torch.manual_seed(0)
    sticky = create_model("alexnet_small", num_classes=4, fc_dim=32, frozen_dropout=True, **kwargs)
    return plain, sticky


def _engine_modes(model: nn.Module, frozen: int) -> None:
    """What the engine does at every epoch: train mode, the first ``frozen`` units in eval."""
    model.train()
    for _, unit in model.units()[:frozen]:
        unit.eval()


def test_same_weights_and_no_extra_modules_when_off() -> None:
    plain, sticky = _pair()
    assert plain.state_dict().keys() == sticky.state_dict().keys()
    state, other = plain.state_dict(), sticky.state_dict()
    assert all(torch.equal(state[k], other[k]) for k in state)
    assert not plain.frozen_dropout and sticky.frozen_dropout
    # off: the dropouts live inside fc6/fc7, as before the option existed; no other child
    assert isinstance(plain.fc6[-1], nn.Dropout) and isinstance(plain.fc7[-1], nn.Dropout)
    assert [n for n, _ in plain.named_children()] == list(plain.unit_names)
    assert not any(isinstance(m, nn.Dropout) for m in sticky.fc6.modules())


def test_frozen_units_drop_only_with_the_option() -> None:
    plain, sticky = _pair()
    x = torch.randn(8, 1, 28, 28)
    for model in (plain, sticky):
        model.eval()
    reference = plain(x)
    torch.testing.assert_close(sticky(x), reference, rtol=0, atol=0)  # eval: identical
    for model in (plain, sticky):
        _engine_modes(model, frozen=7)  # conv1..fc7 frozen, only the head trains
    torch.manual_seed(1)
    a, b = plain(x), plain(x)
    torch.testing.assert_close(a, reference, rtol=0, atol=0)  # frozen = a fixed function
    torch.testing.assert_close(b, reference, rtol=0, atol=0)
    torch.manual_seed(1)
    c, d = sticky(x), sticky(x)
    assert not torch.equal(c, reference) and not torch.equal(c, d)
    feats = sticky.forward_features(x)  # fc7's output after its dropout: about half zeroed
    zeros = float((feats == 0).float().mean())
    kept = sticky.fc7(sticky.fc6(sticky.forward_units(x, 0, 5)))
    assert zeros > float((kept == 0).float().mean()) + 0.2


def test_nothing_frozen_computes_exactly_the_same_in_train_mode() -> None:
    plain, sticky = _pair()
    x = torch.randn(8, 1, 28, 28)
    plain.train()
    sticky.train()
    torch.manual_seed(5)
    a = plain(x)
    torch.manual_seed(5)
    b = sticky(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def _data(n: int = 48) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (n,), generator=g)
    images = (torch.randint(0, 60, (n, 1, 28, 28), generator=g) + 60 * labels.view(n, 1, 1, 1))
    return ImageDataset("toy", "train", images.clamp(0, 255).to(torch.uint8), labels,
                        ("a", "b", "c", "d"))


@pytest.mark.parametrize(("frozen", "differs"), [(0, False), (6, True)])
def test_fit_changes_only_when_fc6_is_frozen(frozen: int, differs: bool) -> None:
    config = TrainConfig(epochs=1, lr=0.05, batch_size=16, augment="none", frozen_units=frozen,
                         cache_frozen=False, mean=(0.5,), std=(0.25,))
    plain, sticky = _pair()
    fit(plain, _data(), None, config, progress=False)
    fit(sticky, _data(), None, config, progress=False)
    same = all(torch.equal(plain.state_dict()[k], sticky.state_dict()[k])
               for k in plain.state_dict())
    assert same != differs
