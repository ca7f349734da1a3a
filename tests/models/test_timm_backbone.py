"""timm backbones: offline loading of a local weight file, preprocessing config, units."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from survey_lib.models import create_model


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def saved_resnet10t(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    torch.manual_seed(0)
    source = timm.create_model("resnet10t", pretrained=False)  # 1000-class head, 3 channels
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    path = tmp_path_factory.mktemp("weights") / "resnet10t.safetensors"
    save_file(state, str(path))
    return str(path), state


def test_local_file_loads_offline(saved_resnet10t: tuple[str, dict]) -> None:
    path, state = saved_resnet10t
    model = create_model("resnet10t.c3_in1k", num_classes=5, in_chans=3, weights=path)
    loaded = model.model.state_dict()
    backbone_keys = [k for k in state if not k.startswith("fc.")]
    assert backbone_keys
    for key in backbone_keys:
        torch.testing.assert_close(loaded[key], state[key])
    assert model.model.fc.out_features == 5
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    cfg = model.pretrained_cfg
    assert cfg["mean"] == pytest.approx((0.485, 0.456, 0.406))
    assert cfg["std"] == pytest.approx((0.229, 0.224, 0.225))
    assert cfg["input_size"][0] == 3 and cfg["weights"] == f"file:{path}"


def test_single_channel_adapts_first_conv_and_stats(saved_resnet10t: tuple[str, dict]) -> None:
    path, state = saved_resnet10t
    model = create_model("resnet10t.c3_in1k", num_classes=5, in_chans=1, weights=path)
    first = model.model.conv1[0].weight
    assert first.shape[1] == 1
    torch.testing.assert_close(first, state["conv1.0.weight"].sum(dim=1, keepdim=True))
    assert model.pretrained_cfg["mean"] == pytest.approx(((0.485 + 0.456 + 0.406) / 3,))
    assert model.pretrained_cfg["input_size"][0] == 1


def test_random_init_differs_from_file(saved_resnet10t: tuple[str, dict]) -> None:
    path, state = saved_resnet10t
    torch.manual_seed(1)
    model = create_model("resnet10t.c3_in1k", num_classes=5, in_chans=3)
    assert model.pretrained_cfg["weights"] == "random"
    assert not torch.equal(model.model.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])


def test_units_follow_timm_grouping() -> None:
    model = create_model("resnet10t", num_classes=3)
    assert model.unit_names == ("stem", "stage1", "stage2", "stage3", "stage4", "head")
    assert not model.sequential
    units = dict(model.units())
    assert units["stage2"].layer2 is model.model.layer2
    assert {id(p) for p in units["head"].parameters()} == {
        id(p) for p in model.model.fc.parameters()
    }
    with pytest.raises(NotImplementedError):
        model.forward_units(torch.randn(1, 1, 32, 32), 0, 2)


def test_bad_weights_and_tags_are_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="not a timm weight tag"):
        create_model("resnet10t.no_such_tag", num_classes=3)
    with pytest.raises(ValueError, match="local weights file"):
        create_model("resnet10t.c3_in1k", num_classes=3, weights=str(tmp_path / "nothing.pth"))


def test_unit_output_and_classifier_are_real_timm_modules() -> None:
    model = create_model("resnet10t", num_classes=3)
    assert model.unit_output("stage2") is model.model.layer2
    assert model.unit_output("stem") is model.model.bn1  # the stem's last module with weights
    seen = []
    handle = model.unit_output("stage3").register_forward_hook(lambda m, a, out: seen.append(out))
    model(torch.randn(2, 1, 32, 32))
    handle.remove()
    assert len(seen) == 1 and seen[0].shape[:2] == (2, model.model.layer3[-1].conv2.out_channels)
    assert model.get_classifier() is model.model.fc
    head = torch.nn.Linear(model.feature_dim, 7)
    model.set_classifier(head)
    assert model.model.fc is head and model(torch.randn(2, 1, 32, 32)).shape == (2, 7)
    with pytest.raises(ValueError, match="valid"):
        model.unit_output("stage9")
