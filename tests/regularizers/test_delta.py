"""DELTA: feature-map distance and channel attention against hand computations."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from survey_lib.regularizers import channel_attention, create_regularizer
from survey_lib.train.context import StepContext

from .regularizer_helpers import TinyNet, make_batch, step_context


def perturbed(model: TinyNet) -> TinyNet:
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model


def hand_maps(source: TinyNet, target: TinyNet, inputs: torch.Tensor):
    """(target, source) outputs of conv1 and conv2: target in train mode, source in eval."""
    source = copy.deepcopy(source).eval()
    target = copy.deepcopy(target).train()
    with torch.no_grad():
        s1 = source.conv1(inputs)
        s2 = source.conv2(s1)
        t1 = target.conv1(inputs)
        t2 = target.conv2(t1)
    return {"conv1": t1, "conv2": t2}, {"conv1": s1, "conv2": s2}


def head_sq(model: TinyNet) -> float:
    head = model.classifier
    return float(head.weight.detach().pow(2).sum() + head.bias.detach().pow(2).sum())


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_unweighted_delta_equals_mean_squared_map_distances(pair, batch, reduction) -> None:
    source, target = pair
    torch.manual_seed(0)
    perturbed(target)
    inputs, labels = batch
    reg = create_regularizer(
        "delta_unweighted",
        source_model=source,
        target_model=target,
        alpha=0.5,
        beta=0.2,
        reduction=reduction,
    )
    assert reg.layers == ("conv1", "conv2")
    target_maps, source_maps = hand_maps(source, target, inputs)
    # per sample: 1/2 sum over layers and channels of the spatial mean of squared differences
    per_sample = sum(
        0.5 * (target_maps[j] - source_maps[j]).pow(2).mean(dim=(2, 3)).sum(dim=1)
        for j in ("conv1", "conv2")
    )
    distance = per_sample.sum() if reduction == "sum" else per_sample.mean()
    expected = 0.5 * float(distance) + 0.5 * 0.2 * head_sq(target)
    value = reg.penalty(step_context(target, inputs, labels))
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_attention_delta_equals_hand_computation_with_given_weights(pair, batch) -> None:
    source, target = pair
    torch.manual_seed(1)
    perturbed(target)
    inputs, labels = batch
    weights = {"conv1": torch.softmax(torch.randn(4), 0), "conv2": torch.softmax(torch.randn(6), 0)}
    reg = create_regularizer(
        "delta", source_model=source, target_model=target, channel_weights=weights
    )
    target_maps, source_maps = hand_maps(source, target, inputs)
    distance = 0.0
    for j, weight in weights.items():
        per_channel = (target_maps[j] - source_maps[j]).pow(2).mean(dim=(2, 3))  # (B, C)
        distance += 0.5 * float((len(weight) * weight * per_channel).sum())
    expected = 0.01 * distance / len(inputs) + 0.5 * 0.01 * head_sq(target)  # mean over batch
    value = reg.penalty(step_context(target, inputs, labels))
    assert value.item() == pytest.approx(expected, rel=1e-5)


def brute_force_attention(model, layers, batches, temperature):
    """One forward per channel, zeroing it with a hook: the definition, no chunking."""
    model = copy.deepcopy(model).eval()
    units = dict(model.units())
    result = {}
    with torch.no_grad():
        for name in layers:
            increases = []
            channels = 4 if name == "conv1" else 6
            for c in range(channels):
                total = 0.0
                for inputs, labels in batches:
                    base = F.cross_entropy(model(inputs), labels)

                    def hook(module, args, output, c=c):
                        output = output.clone()
                        output[:, c] = 0
                        return output

                    handle = units[name].register_forward_hook(hook)
                    total += float(F.cross_entropy(model(inputs), labels) - base)
                    handle.remove()
                increases.append(total / len(batches))
            increase = torch.tensor(increases)
            z = (increase - increase.mean()) / increase.std(unbiased=False)
            result[name] = torch.softmax(z / temperature, 0)
    return result


def test_channel_attention_matches_brute_force_and_sums_to_one() -> None:
    torch.manual_seed(0)
    model = TinyNet(num_classes=5)
    batches = [make_batch(seed=1), make_batch(seed=2)]
    # max_chunk=16 with batches of 8 puts 2 channels per forward: exercises the chunking
    fast = channel_attention(model, ["conv1", "conv2"], batches, temperature=2.0, max_chunk=16)
    slow = brute_force_attention(model, ["conv1", "conv2"], batches, temperature=2.0)
    for name in ("conv1", "conv2"):
        torch.testing.assert_close(fast[name], slow[name], rtol=1e-4, atol=1e-6)
        assert fast[name].sum().item() == pytest.approx(1.0, abs=1e-6)
        assert (fast[name] > 0).all()
    assert fast["conv1"].shape == (4,) and fast["conv2"].shape == (6,)


def test_a_channel_the_head_ignores_gets_the_least_attention(pair, batch) -> None:
    source, target = pair
    with torch.no_grad():
        target.classifier.weight[:, 2] = 0.0  # conv2's channel 2 cannot change the loss
    reg = create_regularizer(
        "delta", source_model=source, target_model=target, attention_data=batch, head_steps=0
    )
    weights = reg.channel_weights()
    assert weights["conv2"].argmin().item() == 2
    for name in ("conv1", "conv2"):
        assert weights[name].sum().item() == pytest.approx(1.0, abs=1e-6)


def test_delta_refuses_cached_steps_and_stale_maps(pair, batch) -> None:
    source, target = pair
    inputs, labels = batch
    reg = create_regularizer("delta_unweighted", source_model=source, target_model=target)
    ctx = step_context(target, inputs, labels)
    cached = StepContext(target, None, ctx.features, ctx.logits, labels, step=0, epoch=0)
    with pytest.raises(ValueError, match="ctx.inputs is None"):
        reg.penalty(cached)
    reg.penalty(ctx)
    with pytest.raises(RuntimeError, match="no target feature maps"):
        reg.penalty(ctx)  # maps are consumed once; a second call without a forward is an error


def test_delta_needs_attention_data_or_weights(pair) -> None:
    source, target = pair
    with pytest.raises(ValueError, match="delta_unweighted"):
        create_regularizer("delta", source_model=source, target_model=target)
    with pytest.raises(ValueError, match="valid: \\['conv1', 'conv2', 'pool'\\]"):
        create_regularizer(
            "delta_unweighted", source_model=source, target_model=target, layers=["classifier"]
        )


def test_delta_source_stays_in_eval_mode(pair) -> None:
    source, target = pair
    reg = create_regularizer("delta_unweighted", source_model=source, target_model=target)
    reg.train()
    assert not reg.source.training
    assert list(reg.parameters()) == []


def test_delta_on_a_timm_backbone_hooks_real_modules() -> None:
    """timm units do not compose (sequential=False): DELTA must hook the modules that run."""
    from survey_lib.models import create_model

    torch.manual_seed(0)
    source = create_model("resnet10t", num_classes=4, in_chans=3)
    target = copy.deepcopy(source)
    target.reset_classifier(4)
    inputs, labels = torch.randn(6, 3, 32, 32), torch.randint(0, 4, (6,))
    reg = create_regularizer(
        "delta", source_model=source, target_model=target, alpha=1.0, beta=0.0,
        attention_data=(inputs, labels), head_steps=2,
    )
    assert reg.layers == ("stem", "stage1", "stage2", "stage3", "stage4")
    weights = reg.channel_weights()
    assert weights["stage4"].shape == (source.model.layer4[-1].conv2.out_channels,)
    assert all(float(w.sum()) == pytest.approx(1.0, abs=1e-5) for w in weights.values())

    def eval_step(model):  # eval mode: the same BN behaviour as the frozen source
        model.eval()
        logits = model(inputs)  # the hooks on the target's real modules fire here
        return StepContext(model, inputs, None, logits, labels, step=0, epoch=0)

    assert reg.penalty(eval_step(target)).item() == pytest.approx(0.0, abs=1e-6)
    perturbed(target)
    assert reg.penalty(eval_step(target)).item() > 1e-4
    target.train()
    logits = target(inputs[:3])  # a forward on another batch leaves maps that do not match
    with pytest.raises(RuntimeError, match="no target feature maps"):
        reg.penalty(StepContext(target, inputs, None, logits, labels, step=0, epoch=0))


def test_delta_sum_is_the_authors_batch_sum(pair, batch) -> None:
    """``delta_sum`` (authors' code, TLlib) = B x the averaged ``delta`` feature-map term."""
    source, target = pair
    torch.manual_seed(2)
    perturbed(target)
    inputs, labels = batch
    weights = {"conv2": torch.softmax(torch.randn(6), 0)}
    values = {}
    for name in ("delta", "delta_sum"):
        reg = create_regularizer(name, source_model=source, target_model=target, beta=0.0,
                                 channel_weights=weights, layers=["conv2"])
        assert reg.layers == ("conv2",)
        values[name] = reg.penalty(step_context(target, inputs, labels)).item()
    assert values["delta"] > 0
    assert values["delta_sum"] == pytest.approx(len(inputs) * values["delta"], rel=1e-5)
