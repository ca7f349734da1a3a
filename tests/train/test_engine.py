"""The training engine: reproducibility, failures, frozen units, the cached fast path."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from survey_lib.train import (
    StepContext,
    TrainConfig,
    evaluate,
    fit,
    param_groups,
    predict_logits,
    seed_everything,
)
from survey_lib.train.engine import _progress_bar

from .tiny_model import TinyNet, tiny_data

torch.set_num_threads(1)
BASE = dict(epochs=2, lr=0.05, batch_size=16, mean=(0.5,), std=(0.25,))


def _model(seed: int = 0, dropout: float = 0.3) -> TinyNet:
    seed_everything(seed)
    return TinyNet(dropout=dropout)


def _equal_state(a: TinyNet, b: TinyNet) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_seed_gives_bitwise_identical_weights_and_history() -> None:
    train, val = tiny_data(), tiny_data(40, seed=1)
    config = TrainConfig(**BASE, augment="crop_flip", crop_padding=2, label_smoothing=0.1)

    def penalty(ctx: StepContext) -> torch.Tensor:
        return 1e-3 * ctx.features.pow(2).mean()

    runs = []
    for _ in range(2):
        torch.manual_seed(1234 + len(runs))  # global RNG state must not matter inside fit
        model = _model()
        result = fit(model, train, val, config, penalty=penalty, progress=False)
        runs.append((model, result))
    (m1, r1), (m2, r2) = runs
    assert _equal_state(m1, m2)
    assert r1.history.drop(columns="seconds").equals(r2.history.drop(columns="seconds"))
    model = _model()
    fit(model, train, val, config.replace(seed=1), penalty=penalty, progress=False)
    assert not _equal_state(model, m1)


def test_fit_learns_and_reports_history() -> None:
    train, val = tiny_data(192), tiny_data(96, seed=1)
    model = _model(dropout=0.0)
    config = TrainConfig(**{**BASE, "epochs": 8, "lr": 0.05}, augment="flip")
    result = fit(model, train, val, config, progress=False)
    h = result.history
    assert list(h.columns) == [
        "epoch", "train_loss", "train_penalty", "train_acc", "val_loss", "val_acc", "lr", "seconds"
    ]  # fmt: skip
    assert result.status == "ok" and result.failure is None
    assert list(h.epoch) == list(range(8)) and result.steps == 8 * 12
    assert h.train_loss.iloc[-1] < 0.2 * h.train_loss.iloc[0]
    assert result.final_val["accuracy"] > 0.9  # chance is 1/3
    assert h.lr.is_monotonic_decreasing and h.lr.iloc[-1] < 0.01
    assert result.images_per_second > 0 and result.train_seconds > 0
    again = evaluate(model, val, mean=(0.5,), std=(0.25,))
    assert again["accuracy"] == pytest.approx(result.final_val["accuracy"])
    assert again["loss"] == pytest.approx(result.final_val["loss"], rel=1e-5)
    logits = predict_logits(model, val, mean=(0.5,), std=(0.25,), batch_size=7)
    x = (val.images.float() / 255 - 0.5) / 0.25
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x), rtol=1e-5, atol=1e-5)


def test_nan_penalty_fails_the_run_at_that_step() -> None:
    def penalty(ctx: StepContext) -> torch.Tensor:
        return torch.tensor(float("nan")) if ctx.step == 9 else torch.zeros(())

    result = fit(_model(), tiny_data(), None, TrainConfig(**BASE), penalty=penalty, progress=False)
    assert result.status == "failed"
    assert result.failure["step"] == 9 and result.failure["epoch"] == 1  # 6 steps per epoch
    assert result.failure["value"] != result.failure["value"]  # NaN
    assert len(result.history) == 1 and result.steps == 9 and result.final_val is None


def test_huge_lr_diverges_and_fails() -> None:
    config = TrainConfig(**{**BASE, "lr": 1e6, "epochs": 3})
    result = fit(_model(), tiny_data(), None, config, progress=False)
    assert result.status == "failed"
    assert result.failure["step"] < 18


def test_frozen_units_do_not_change_and_stay_in_eval_mode() -> None:
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen_modes = []

    def hook(ctx: StepContext) -> None:
        seen_modes.append((ctx.model.block1.training, ctx.model.fc.training))

    config = TrainConfig(**BASE, frozen_units=2, augment="crop_flip")
    fit(model, tiny_data(), tiny_data(20, seed=2), config, feature_hook=hook, progress=False)
    after = model.state_dict()
    for k in before:  # block1 holds BN running stats: eval mode keeps them fixed
        frozen = k.startswith(("block1.", "block2."))
        assert torch.equal(before[k], after[k]) == frozen, k
    assert set(seen_modes) == {(False, True)}
    assert all(p.requires_grad for p in model.parameters())  # flags restored


def test_param_groups_skip_decay_on_biases_and_norms_and_apply_multipliers() -> None:
    model = _model()
    config = TrainConfig(**BASE, frozen_units=1, lr_multipliers=(0.0, 0.1, 0.5, 1.0))
    groups = param_groups(model, config)
    by_unit = {(g["unit"], g["weight_decay"] > 0): g for g in groups}
    assert {u for u, _ in by_unit} == {1, 2, 3}  # unit 0 frozen
    assert by_unit[(1, True)]["lr"] == pytest.approx(0.005)
    assert [p.ndim for p in by_unit[(3, False)]["params"]] == [1]  # head bias, no decay
    assert by_unit[(3, True)]["weight_decay"] == 5e-4
    with pytest.raises(ValueError, match="one value per unit \\(4"):
        fit(model, tiny_data(), None, config.replace(lr_multipliers=(1.0,)), progress=False)


def test_zero_lr_multiplier_keeps_a_unit_fixed() -> None:
    model = _model(dropout=0.0)
    before = model.block2[0].weight.clone()
    config = TrainConfig(**BASE, lr_multipliers=(1.0, 0.0, 1.0, 1.0))
    fit(model, tiny_data(), None, config, progress=False)
    assert torch.equal(model.block2[0].weight, before)
    assert not torch.equal(model.head.weight, _model(dropout=0.0).head.weight)


def test_cached_frozen_path_equals_the_slow_path() -> None:
    """Same seed, same weights: the cache only avoids recomputing fixed functions.

    The cached path runs the frozen units on ``eval_batch_size`` chunks instead of training
    batches; per-sample convolution results do not depend on the batch they are computed in
    for these kernels, so the weights come out bitwise equal here. The tolerance (1e-6) only
    allows for a BLAS that blocks its reductions by batch size on other hardware.
    """
    train, val = tiny_data(100), tiny_data(30, seed=1)
    results, inputs_seen = [], []
    for cache in (True, False):
        model = _model(dropout=0.3)
        config = TrainConfig(**BASE, frozen_units=2, augment="none", cache_frozen=cache)
        hook_inputs: list[bool] = []
        r = fit(model, train, val, config, progress=False,
                feature_hook=lambda ctx, seen=hook_inputs: seen.append(ctx.inputs is None))  # fmt: skip
        assert r.cached_frozen is cache
        results.append((model.state_dict(), r.history))
        inputs_seen.append(set(hook_inputs))
    (s1, h1), (s2, h2) = results
    assert inputs_seen == [{True}, {False}]
    for k in s1:
        torch.testing.assert_close(s1[k], s2[k], rtol=0, atol=1e-6, msg=k)
    torch.testing.assert_close(
        torch.tensor(h1.drop(columns="seconds").values),
        torch.tensor(h2.drop(columns="seconds").values),
        rtol=0,
        atol=1e-6,
    )
    assert not torch.equal(s1["head.weight"], _model().state_dict()["head.weight"])


def test_penalty_pulls_weights() -> None:
    plain, shrunk = _model(dropout=0.0), _model(dropout=0.0)
    config = TrainConfig(**BASE, weight_decay=0.0)
    fit(plain, tiny_data(), None, config, progress=False)
    result = fit(shrunk, tiny_data(), None, config, progress=False,
                 penalty=lambda ctx: 5.0 * ctx.model.head.weight.pow(2).sum())  # fmt: skip
    assert shrunk.head.weight.norm() < 0.7 * plain.head.weight.norm()
    assert (result.history.train_penalty > 0).all()


def test_feature_hook_sees_features_logits_and_steps() -> None:
    records = []
    fit(_model(), tiny_data(40), None, TrainConfig(**BASE), progress=False,
        feature_hook=lambda ctx: records.append((ctx.step, ctx.epoch, tuple(ctx.features.shape), tuple(ctx.logits.shape), ctx.inputs.shape[0])))  # fmt: skip
    assert [r[0] for r in records] == list(range(6))
    assert [r[1] for r in records] == [0, 0, 0, 1, 1, 1]
    assert records[0][2:] == ((16, 8), (16, 3), 16) and records[2][2:] == ((8, 8), (8, 3), 8)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="frozen_units must be < the number of units \\(4"):
        fit(_model(), tiny_data(), None, TrainConfig(**BASE, frozen_units=4), progress=False)
    with pytest.raises(ValueError, match="mean/std need 1 or 1 values"):
        fit(_model(), tiny_data(), None, TrainConfig(**{**BASE, "mean": (0.5,) * 3, "std": (1.0,) * 3}), progress=False)  # fmt: skip


def test_progress_bar_honours_tqdm_disable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert _progress_bar(5, True, "x").disable
    monkeypatch.delenv("TQDM_DISABLE")
    assert _progress_bar(5, False, "x").disable
    # tqdm itself reads TQDM_DISABLE at import (tqdm >= 4.66), so library bars we do not own obey
    code = "from tqdm.auto import tqdm; print(tqdm(total=1).disable)"
    env = {**os.environ, "TQDM_DISABLE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "True"


def test_deferred_non_finite_check_reports_the_first_bad_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CUDA strategy (flag on the device, read every few steps) run on the CPU."""
    from survey_lib.train import engine

    monkeypatch.setattr(engine, "_reads_are_free", lambda device: False)

    def penalty(ctx: StepContext) -> torch.Tensor:
        return torch.tensor(float("inf")) if ctx.step in (8, 9) else torch.zeros(())

    result = fit(_model(), tiny_data(), None, TrainConfig(**BASE), penalty=penalty, progress=False)
    assert result.status == "failed"
    assert result.failure == {"step": 8, "epoch": 1, "value": float("inf")}
    assert len(result.history) == 1


def test_with_the_registered_alexnet_small() -> None:
    models = pytest.importorskip("survey_lib.models")
    seed_everything(0)
    model = models.create_model("alexnet_small", num_classes=3, in_chans=1)
    data = tiny_data(64, size=28)
    config = TrainConfig(**{**BASE, "epochs": 1, "batch_size": 32}, frozen_units=2, augment="none")
    result = fit(model, data, data, config, progress=False)
    assert result.status == "ok" and result.cached_frozen and result.steps == 2
    assert 0.0 <= result.final_val["accuracy"] <= 1.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_channels_last_fit_learns_and_caches() -> None:
    train, val = tiny_data(192), tiny_data(96, seed=1)
    config = TrainConfig(**{**BASE, "epochs": 8}, augment="flip", device="cuda")
    result = fit(_model(dropout=0.0), train, val, config, progress=False)
    assert result.status == "ok" and result.final_val["accuracy"] > 0.9
    states = []
    for cache in (True, False):
        model = _model()
        c = config.replace(frozen_units=2, augment="none", cache_frozen=cache, epochs=1)
        assert fit(model, train, val, c, progress=False).cached_frozen is cache
        states.append(model.state_dict())
    for k in states[0]:  # bf16 autocast: equal up to bf16 rounding of batched kernels
        torch.testing.assert_close(states[0][k], states[1][k], rtol=1e-2, atol=1e-2, msg=k)
    bad = fit(_model(), train, None, config.replace(lr=1e6), progress=False)
    assert bad.status == "failed"


def test_fit_inside_a_grid_records_results_and_divergence(tmp_path) -> None:
    from survey_lib.runner import RunFailed, RunOutput, aggregate, run_grid

    data = tiny_data(48)

    def run(params: dict, seed: int) -> RunOutput:
        model = _model(seed)
        config = TrainConfig(**{**BASE, "lr": params["lr"], "seed": seed})
        result = fit(model, data, data, config, progress=False)
        if result.status != "ok":
            raise RunFailed(result.failure)
        return RunOutput(
            {"val_acc": result.final_val["accuracy"]},
            info={"history": result.history.to_dict("list")},
            dataset_checksum=data.checksum,
        )

    grid = [{"lr": 0.05}, {"lr": 1e6}]
    with pytest.warns(UserWarning, match="2 run\\(s\\) failed"):
        df = run_grid("fit", run, grid, [0, 1], tmp_path / "a", progress=False)
    assert set(df.lr) == {0.05} and len(df) == 2
    assert {f["failure"]["kind"] for f in df.attrs["failed"]} == {"RunFailed"}
    with pytest.warns(UserWarning):
        again = run_grid("fit", run, grid, [0, 1], tmp_path / "b", progress=False)
    assert again.value.tolist() == df.value.tolist()  # same seeds, same numbers
    summary = aggregate(df, "lr")
    assert summary.n.tolist() == [2]
