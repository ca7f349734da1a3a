"""fit_many: K batched runs match K sequential fit calls (history, final accuracy, weights).

Tolerance: 1e-4 absolute on every history column (seconds excepted) and on every weight and
buffer. The batched runs use grouped convolutions and batched matrix products instead of the
per-run kernels and a hand-written SGD step instead of ``torch.optim.SGD``, so they agree to
float rounding, not bitwise; 1e-4 is about 100x the differences seen on this CPU after 12
steps, and far below any change a bug (a wrong lr, a shared batch, a skipped decay) makes.
"""

from __future__ import annotations

import pytest
import torch

from survey_lib.regularizers import BSS, L2, L2SP
from survey_lib.train import TrainConfig, fit, seed_everything
from survey_lib.train.batched import batch_key, fit_many
from survey_lib.train.precision import cpu_has_native_bf16, resolve_precision
from survey_lib.train.wide import check_widened, widen

from .tiny_model import TinyNet, tiny_data

torch.set_num_threads(1)
ATOL = 1e-4
BASE = dict(epochs=2, lr=0.05, batch_size=16, mean=(0.5,), std=(0.25,))


def _models(k: int, offset: int = 0, dropout: float = 0.0) -> list[TinyNet]:
    out = []
    for i in range(k):
        seed_everything(100 + offset + i)
        out.append(TinyNet(dropout=dropout))
    return out


def _configs(k: int, **common) -> list[TrainConfig]:
    per_run = [
        dict(seed=0, lr=0.05, momentum=0.9, weight_decay=5e-4),
        dict(seed=1, lr=0.02, momentum=0.5, nesterov=False, weight_decay=0.0),
        dict(seed=2, lr=0.08, momentum=0.8, weight_decay=1e-3, label_smoothing=0.1),
    ]
    return [TrainConfig(**{**BASE, **per_run[i % 3], **common}) for i in range(k)]


def _data(k: int) -> tuple[list, list]:
    return [tiny_data(48, seed=10 + i) for i in range(k)], [tiny_data(20, seed=50 + i) for i in range(k)]


def _compare(configs, penalties=None, trains=None, vals=None, check_weights=True, dropout=0.0):
    k = len(configs)
    if trains is None:
        trains, vals = _data(k)
    nesterov = {c.nesterov for c in configs}
    if len(nesterov) > 1:  # nesterov must agree within a batch
        configs = [c.replace(nesterov=False) for c in configs]
    seq_models, bat_models = _models(k, dropout=dropout), _models(k, dropout=dropout)
    pens = penalties or [None] * k
    seq = [fit(m, t, v, c, penalty=None if p is None else p.penalty, progress=False)
           for m, t, v, c, p in zip(seq_models, trains, vals, configs, pens)]  # fmt: skip
    bat = fit_many(bat_models, trains, vals, configs, penalties=penalties, progress=False)
    for r, (s, b) in enumerate(zip(seq, bat)):
        assert b.batched_runs == k and b.status == s.status, r
        assert b.steps == s.steps, r
        if s.failure is not None:  # the same step and epoch; the value may be inf or nan
            assert (b.failure["step"], b.failure["epoch"]) == (s.failure["step"], s.failure["epoch"])
        hs, hb = s.history.drop(columns="seconds"), b.history.drop(columns="seconds")
        assert list(hs.columns) == list(hb.columns) and len(hs) == len(hb), r
        torch.testing.assert_close(
            torch.tensor(hb.values.astype(float)), torch.tensor(hs.values.astype(float)), rtol=0, atol=ATOL, msg=f"run {r}"
        )
        if s.final_val is not None:
            assert b.final_val["accuracy"] == pytest.approx(s.final_val["accuracy"], abs=ATOL)
        if check_weights and s.status == "ok":
            sa, sb = seq_models[r].state_dict(), bat_models[r].state_dict()
            for key in sa:
                torch.testing.assert_close(sb[key].float(), sa[key].float(), rtol=0, atol=ATOL,
                                           msg=f"run {r} {key}")  # fmt: skip
    return seq, bat


def test_full_fine_tuning_with_augmentation_and_label_smoothing_matches_fit() -> None:
    configs = _configs(3, augment="crop_flip", crop_padding=2, nesterov=False)
    seq, bat = _compare(configs)
    assert all(b.status == "ok" for b in bat)
    # the runs really differ from each other (own data, seeds and hyperparameters)
    assert seq[0].history.train_loss.iloc[-1] != seq[1].history.train_loss.iloc[-1]


def test_dropout_draws_each_runs_own_sequential_masks() -> None:
    configs = _configs(3, augment="flip", nesterov=False)
    _compare(configs, dropout=0.4)


def test_nesterov_and_lr_multipliers_and_schedules_match_fit() -> None:
    configs = [
        TrainConfig(**BASE, seed=3, lr_multipliers=(0.1, 0.5, 1.0, 1.0), augment="flip"),
        TrainConfig(**BASE, seed=4, schedule="step", warmup_epochs=0.5, augment="crop"),
    ]
    _compare(configs)


@pytest.mark.parametrize("augment", ["none", "flip"])
def test_frozen_units_match_fit_with_and_without_the_cache(augment: str) -> None:
    configs = _configs(3, frozen_units=2, augment=augment, nesterov=False)
    seq, bat = _compare(configs)
    assert all(b.cached_frozen == (augment == "none") for b in bat)
    assert all(s.cached_frozen == b.cached_frozen for s, b in zip(seq, bat))


def test_l2_and_l2_sp_penalties_match_fit() -> None:
    sources = _models(3, offset=50)
    pens = [
        L2(alpha=0.05),
        L2SP(sources[1], alpha=0.2, beta=0.02),
        L2SP(sources[2], alpha=0.05, beta=0.1),
    ]
    configs = _configs(3, weight_decay=0.0, nesterov=False)
    seq, bat = _compare(configs, penalties=pens)
    assert all((b.history.train_penalty > 0).all() for b in bat)
    # L2 with weights_only=False and a run without penalty in the same batch
    _compare(_configs(2, nesterov=False), penalties=[L2(alpha=0.1, weights_only=False), None])


def test_a_diverging_run_fails_alone() -> None:
    configs = _configs(3, nesterov=False)
    configs[1] = configs[1].replace(lr=1e6)
    seq, bat = _compare(configs, check_weights=True)
    assert [b.status for b in bat] == ["ok", "failed", "ok"]
    assert bat[1].failure["step"] == seq[1].failure["step"]
    assert bat[1].final_val is None and bat[0].final_val is not None


def test_unsupported_penalties_fall_back_to_fit() -> None:
    trains, vals = _data(2)
    models = _models(2)
    configs = _configs(2, nesterov=False)
    bss = BSS(eta=1e-3, k=1)
    out = fit_many(models, trains, vals, configs, penalties=[bss, None], progress=False)
    assert [r.batched_runs for r in out] == [1, 1]  # one batched run of its own, one fit
    out = fit_many(_models(2), trains, vals, configs, penalties=[bss.penalty, L2()],
                   progress=False)  # fmt: skip
    assert [r.batched_runs for r in out] == [1, 1]
    assert all(r.status == "ok" for r in out)


def test_configs_that_cannot_share_a_batch_are_refused() -> None:
    trains, vals = _data(2)
    configs = [TrainConfig(**BASE), TrainConfig(**{**BASE, "batch_size": 8})]
    with pytest.raises(ValueError, match="configs differ in \\['batch_size'\\]"):
        fit_many(_models(2), trains, vals, configs, progress=False)
    assert batch_key(configs[0]) != batch_key(configs[1])
    assert batch_key(configs[0]) == batch_key(configs[0].replace(lr=0.3, seed=5))
    with pytest.raises(ValueError, match="training sets differ"):
        fit_many(_models(2), [trains[0], tiny_data(40)], None, [configs[0]] * 2, progress=False)


@pytest.mark.parametrize("name", ["alexnet_small", "resnet_small"])
def test_registered_models_widen_exactly(name: str) -> None:
    from survey_lib.models import create_model

    models = []
    for seed in range(3):
        seed_everything(seed)
        models.append(create_model(name, num_classes=4, in_chans=1))
    wide = widen(models)
    check_widened(wide, models, torch.rand(5, 1, 28, 28))  # raises on any mismatch


def test_widening_refuses_a_model_that_mixes_channels() -> None:
    class Mixer(TinyNet):
        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            h = self.block1(x)
            return self.fc(self.block2(h - h.mean(1, keepdim=True)))

    models = [Mixer(), Mixer()]
    with pytest.raises(ValueError, match="does not reproduce run"):
        check_widened(widen(models), models, torch.rand(3, 1, 8, 8))


def test_precision_is_resolved_and_recorded() -> None:
    assert resolve_precision("cpu", None) == "fp32"
    assert resolve_precision("cpu", False) == "fp32"
    assert resolve_precision("cuda", None) == "bf16"
    assert resolve_precision("cuda", False) == "fp32"
    assert resolve_precision("cpu", True) == ("bf16" if cpu_has_native_bf16() else "fp32")
    with pytest.raises(ValueError, match="amp_bf16 must be"):
        resolve_precision("cpu", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="amp_bf16 must be"):
        TrainConfig(**BASE, amp_bf16="yes")  # type: ignore[arg-type]
    result = fit(_models(1)[0], tiny_data(32), None, TrainConfig(**BASE), progress=False)
    assert result.precision == "fp32"
    info = result.record_info()
    assert info["precision"] == "fp32" and info["train_seconds"] > 0 and info["batched_runs"] == 1


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16")
def test_cpu_bf16_trains_with_fp32_statistics_and_loss() -> None:
    train, val = tiny_data(192), tiny_data(96, seed=1)
    model = _models(1)[0]
    dtypes = []
    config = TrainConfig(**{**BASE, "epochs": 8}, augment="flip", amp_bf16=True)
    result = fit(model, train, val, config, progress=False,
                 feature_hook=lambda ctx: dtypes.append(ctx.logits.dtype))  # fmt: skip
    assert result.precision == "bf16" and set(dtypes) == {torch.bfloat16}
    assert result.final_val["accuracy"] > 0.9
    assert model.block1[1].running_mean.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    many = fit_many(_models(2), [train, train], [val, val], [config, config.replace(seed=1)],
                    progress=False)  # fmt: skip
    assert [r.precision for r in many] == ["bf16", "bf16"]
    assert all(r.final_val["accuracy"] > 0.9 for r in many)
