"""Device placement and checkpoints of the experiment helpers (issue 12 item 1, 3; issue 18
item 9).

No second device exists on a CPU machine, so placement is checked two ways: a recorder hooks
every submodule and records (and checks, as CUDA would) the device of each input against the
module's own parameters; and the helpers that build tensors are pointed at a model on the
``meta`` device (placement only, nothing runs there). ``pytest -m gpu`` repeats the cell on CUDA.
"""

from __future__ import annotations

import hashlib
import warnings

import pytest
import torch
from torch import nn

from survey_lib.experiments import common, l2sp_bss
from survey_lib.models import dataset_stats
from survey_lib.models.alexnet_small import AlexNetSmall

TRAIN = {"epochs": 1, "lr": 0.01, "batch_size": 32, "weight_decay": 0.0, "augment": "none"}
TARGETS = {"near": {"name": "digits", "dataset": "digits", "pool_per_class": 4, "test_per_class": 2}}
METHODS = {
    "L2": {"regularizer": "l2", "alpha": 0.0005},
    "L2-SP": {"regularizer": "l2_sp", "alpha": 0.1, "beta": 0.01},
    "BSS": {"regularizer": "l2+bss", "l2__alpha": 0.0005, "bss__eta": 0.001, "bss__k": 1},
    "DELTA": {"regularizer": "delta", "alpha": 0.01, "beta": 0.01, "head_steps": 2, "layers": ["conv5"]},
}


def record_input_devices(model: nn.Module) -> list[tuple[str, torch.device]]:
    """Hook every submodule holding parameters or buffers: record each tensor input's device and raise,
    as a CUDA kernel would, when it differs from the module's parameters."""
    seen: list[tuple[str, torch.device]] = []

    def hook(module: nn.Module, args: tuple) -> None:
        own = next(iter([*module.parameters(False), *module.buffers(False)])).device
        for arg in args:
            if isinstance(arg, torch.Tensor):
                seen.append((type(module).__name__, arg.device))
                if arg.device != own:
                    raise RuntimeError(f"input on {arg.device}, {type(module).__name__} on {own}")

    for module in model.modules():
        if [*module.parameters(False), *module.buffers(False)]:
            module.register_forward_pre_hook(hook)
    return seen


def _source(tmp_path, device: str = "cpu", channels_last: bool = True) -> nn.Module:
    train = common.load_split("digits", "train", per_class=5, size=32, channels=1)
    config = common.train_config(
        {**TRAIN, "device": device, "channels_last": channels_last}, 0, dataset_stats(train)
    )
    return common.cached_model(
        tmp_path,
        {"what": "test-source", "device": device},
        lambda: common.new_model("alexnet_small", train.num_classes, 1, 0),
        lambda m: common.fit_or_fail(m, train, None, config),
    )


def test_cached_model_returns_a_trained_model_as_it_returns_a_loaded_one(tmp_path) -> None:
    trained = _source(tmp_path)  # fit left it channels-last (on CUDA: on the GPU)
    loaded = _source(tmp_path)
    for model in (trained, loaded):
        assert common.model_device(model) == torch.device("cpu")
        assert not model.training
        assert all(p.is_contiguous() for p in model.parameters())
    for (name, a), (_, b) in zip(
        trained.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_checkpoint_sha256_is_recorded_for_the_runs(tmp_path) -> None:
    model = _source(tmp_path)
    (path,) = tmp_path.glob("*.pt")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert common.checkpoint_info(model) == {"checkpoints": {path.name: digest}}
    assert common.checkpoint_info(_source(tmp_path), None) == {"checkpoints": {path.name: digest}}
    assert common.checkpoint_info(AlexNetSmall(3)) == {"checkpoints": {}}


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other_model"])
def test_corrupt_checkpoint_is_moved_aside_named_and_retrained(tmp_path, damage: str) -> None:
    good = _source(tmp_path)
    (path,) = tmp_path.glob("*.pt")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint")
    else:
        torch.save(AlexNetSmall(3).state_dict(), path)
    with pytest.warns(common.CorruptCheckpointWarning, match=path.name):
        again = _source(tmp_path)
    (aside,) = (tmp_path / "corrupt").glob("*.pt")
    assert aside.read_bytes() != data and path.read_bytes() == data  # CPU: same weights again
    for a, b in zip(good.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _source(tmp_path)  # the retrained file loads without a warning


def _penalty_check(tmp_path, device: str) -> list[tuple[str, torch.device]]:
    model = _source(tmp_path, device)
    model.to(device)
    stats = dataset_stats(common.load_split("digits", "train", per_class=5, size=32, channels=1))
    seen = record_input_devices(model)
    table = l2sp_bss.penalty_magnitudes(model, stats, TARGETS, METHODS, size=32, batch_size=16)
    assert set(table.method) == {*METHODS, "BSS term alone"}
    assert table.penalty.notna().all()
    return seen


def test_penalty_magnitudes_feed_the_model_on_its_own_device(tmp_path) -> None:
    seen = _penalty_check(tmp_path, "cpu")
    assert seen and {d for _, d in seen} == {torch.device("cpu")}


def test_tensors_are_built_on_the_models_device_not_the_cpu() -> None:
    """A model elsewhere (here ``meta``, standing in for CUDA) gets its batch there."""
    model = AlexNetSmall(3).to("meta")
    x, y = l2sp_bss.on_model_device(model, torch.zeros(2, 1, 32, 32), torch.zeros(2).long())
    assert x.device.type == "meta" and y.device.type == "meta"
    assert common.model_device(model).type == "meta"
    assert common.model_device(nn.Module()) == torch.device("cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cells_on_cuda(tmp_path) -> None:
    """Issue 12 item 1 on a GPU: a freshly trained source (trained on CUDA) comes back on the
    CPU, and the penalty cell and a DELTA run feed CUDA models CUDA tensors only."""
    seen = _penalty_check(tmp_path, "cuda")
    assert {d.type for _, d in seen} == {"cuda"}
    source = {"dataset": "digits", "model": "alexnet_small", "size": 32, "epochs": 1, "seed": 0,
              "per_class": 5, "train": TRAIN}  # fmt: skip
    out = l2sp_bss.run_cell(
        {"source": source, "methods": METHODS, "method": "DELTA", "target": TARGETS["near"],
         "rate": 1.0, "checkpoint_dir": str(tmp_path / "ckpt"), "train": TRAIN}, 0,
    )  # fmt: skip
    assert 0.0 <= out.metrics["test_acc"] <= 1.0
    assert len(out.info["checkpoints"]) == 1
