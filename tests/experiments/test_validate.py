"""Parameter validation before any run (issue 18): every committed protocol passes; each bad
value gets one message naming the key, the value and what is valid; subsets a notebook cannot
handle are rejected up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from survey_lib import reproduce
from survey_lib.experiments.validate import ParameterError, check_parameters, parameter_problems

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _protocol(name: str, scale: str = "smoke", profile: str = "offline") -> dict:
    return reproduce.load_params(name, scale, profile, NOTEBOOKS)


def _committed_protocols() -> list[tuple[str, str, str]]:
    """Every (notebook, scale, profile) with a committed protocol file (the ``published`` scale
    exists for the paper profile only, and only where a paper-published.yaml is committed)."""
    out = []
    for name in reproduce.NOTEBOOKS:
        for profile in reproduce.PROFILES:
            for scale in reproduce.SCALES:
                file = f"{scale}.yaml" if profile == "offline" else f"paper-{scale}.yaml"
                if scale in reproduce.PAPER_ONLY_SCALES and profile == "offline":
                    continue
                if (NOTEBOOKS / "params" / name / file).exists():
                    out.append((name, scale, profile))
    return out


def test_the_three_reproductions_have_every_protocol() -> None:
    found = set(_committed_protocols())
    for name in ("yosinski_layer_transfer", "kornblith_gains_vs_size", "l2sp_vs_bss"):
        for scale in ("smoke", "cpu", "gpu"):
            assert {(name, scale, "offline"), (name, scale, "paper")} <= found
        assert (name, "published", "paper") in found


@pytest.mark.parametrize(("name", "scale", "profile"), _committed_protocols())
def test_every_committed_protocol_is_valid(name: str, scale: str, profile: str) -> None:
    assert parameter_problems(name, _protocol(name, scale, profile)) == []


def _problems(name: str, *pairs: str) -> list[str]:
    params = reproduce.apply_overrides(_protocol(name), reproduce.parse_overrides(list(pairs)))
    return parameter_problems(name, params)


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ("seeds=0", "seeds = 0: 0 is not of type 'array'; valid: a non-empty list"),
        ("seeds=[]", "seeds = []"),
        ("lr_sweep=[0.01, 0]", "lr_sweep[1] = 0"),
        ("train.lr=.nan", "train.lr = nan: not a finite number"),
        ("train.epochs=-1", "epochs must be a positive int, got -1"),
        ("rates=abc", "rates = 'abc'"),
        ("rates=[0.5, 1.5]", "rates[1] = 1.5"),
        ("methods.L2-SP.alpha=-1", "methods.L2-SP.alpha = -1: must be >= 0"),
        ("methods.L2-SP.alhpa=1", "methods.L2-SP.alhpa = 1: not a hyperparameter of 'l2_sp'; valid: alpha, beta"),
        ("methods.X={regularizer: l3}", "methods.X.regularizer = 'l3': unknown regularizer 'l3'; valid: bss"),
        ("source.model=resnet_tiny", "source.model = 'resnet_tiny': unknown model; valid: alexnet_small"),
        ("targets.far.dataset=mnist", "targets.far.dataset = 'mnist': unknown dataset; valid:"),
        ("workers=0", "workers = 0"),
    ],
)
def test_l2sp_bad_value_is_named(pair: str, expected: str) -> None:
    problems = _problems("l2sp_vs_bss", pair)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ("targets={}", "'near' is a required property"),
        ("targets.mid={name: x, dataset: digits, pool_per_class: 1, test_per_class: 1}",
         "exactly the keys near and far"),
        ("methods={L2-SP: {regularizer: l2_sp}}", "includes L2"),
    ],
)
def test_l2sp_subsets_the_cells_cannot_handle_are_rejected(pair: str, expected: str) -> None:
    assert any(expected in p for p in _problems("l2sp_vs_bss", pair))


def test_l2sp_subset_of_methods_is_accepted() -> None:
    assert _problems("l2sp_vs_bss", "methods={L2: {regularizer: l2, alpha: 5e-4}}") == []


@pytest.mark.parametrize(
    ("name", "pair", "expected"),
    [
        ("kornblith_gains_vs_size", "ks=[4]", "at least two distinct sizes"),
        ("kornblith_gains_vs_size", "val_fraction=1", "val_fraction = 1"),
        ("kornblith_gains_vs_size", "finetune.steps=0", "finetune.steps = 0"),
        ("kornblith_gains_vs_size", "scratch.train.lr=0", "lr must be a finite number > 0"),
        ("yosinski_layer_transfer", "splits=[dissimilar]", "includes random"),
        ("yosinski_layer_transfer", "splits=[random, other]", "splits[1] = 'other'"),
        ("yosinski_layer_transfer", "dataset=glyphs", "no dissimilar split is defined for 'glyphs'"),
        ("yosinski_layer_transfer", "n_values=[0]", "n_values[0] = 0"),
        ("yosinski_layer_transfer", "model=nope", "model = 'nope': unknown model"),
    ],
)
def test_other_notebooks_bad_values_are_named(name: str, pair: str, expected: str) -> None:
    assert any(expected in p for p in _problems(name, pair)), _problems(name, pair)


def test_check_parameters_raises_all_problems_at_once() -> None:
    params = reproduce.apply_overrides(
        _protocol("l2sp_vs_bss"), reproduce.parse_overrides(["seeds=0", "rates=abc"])
    )
    with pytest.raises(ParameterError) as info:
        check_parameters("l2sp_vs_bss", {**params, "unrelated": object()})
    assert len(info.value.problems) == 2 and "2 bad parameter value(s)" in str(info.value)
