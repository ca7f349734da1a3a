"""create_regularizer: names, hyperparameter checks and combinations."""

from __future__ import annotations

import pytest

from survey_lib.regularizers import CombinedRegularizer, create_regularizer, hyperparameters

from .regularizer_helpers import step_context


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown regularizer 'l3'; valid: bss, delta, "):
        create_regularizer("l3")


def test_unknown_hyperparameter_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"\['lambda'\] for regularizer 'bss'; valid: eta, fp32_features, k"):
        create_regularizer("bss", **{"lambda": 1.0})
    with pytest.raises(ValueError, match="'attention'"):
        create_regularizer("delta_unweighted", attention=True)


def test_missing_models_and_required_values_are_reported(pair) -> None:
    source, _ = pair
    with pytest.raises(ValueError, match="'l2_sp' needs source_model"):
        create_regularizer("l2_sp")
    with pytest.raises(ValueError, match="'delta' needs target_model"):
        create_regularizer("delta", source_model=source)
    with pytest.raises(ValueError, match=r"needs hyperparameter\(s\) \['num_sp_units'\]"):
        create_regularizer("l2_sp_lower", source_model=source)


def test_resolved_hyperparameters_are_recorded(pair) -> None:
    source, target = pair
    reg = create_regularizer("l2_sp", source_model=source, target_model=target, beta=0.5)
    assert reg.hparams == {"name": "l2_sp", "alpha": 0.1, "beta": 0.5}
    assert hyperparameters("bss") == {
        "k": 1, "eta": 0.001, "method": "auto", "fp32_features": True
    }


def test_combination_sums_its_parts(pair, batch) -> None:
    source, target = pair
    combined = create_regularizer(
        "l2_sp+bss", source_model=source, target_model=target, l2_sp__alpha=0.2, bss__eta=0.5
    )
    assert isinstance(combined, CombinedRegularizer)
    assert combined.hparams["l2_sp__alpha"] == 0.2 and combined.hparams["bss__eta"] == 0.5
    as_list = create_regularizer(
        ["l2_sp", "bss"], source_model=source, l2_sp__alpha=0.2, bss__eta=0.5
    )
    l2_sp = create_regularizer("l2_sp", source_model=source, alpha=0.2)
    bss = create_regularizer("bss", eta=0.5)
    ctx = step_context(target, *batch)
    expected = l2_sp.penalty(ctx).item() + bss.penalty(ctx).item()
    assert combined.penalty(ctx).item() == pytest.approx(expected, rel=1e-6)
    assert as_list.penalty(ctx).item() == pytest.approx(expected, rel=1e-6)


def test_combination_needs_prefixed_hyperparameters(pair) -> None:
    source, _ = pair
    with pytest.raises(ValueError, match="must be prefixed"):
        create_regularizer("l2_sp+bss", source_model=source, alpha=0.2)
    with pytest.raises(ValueError, match="must be prefixed"):
        create_regularizer("l2_sp+bss", source_model=source, delta__alpha=0.2)
    with pytest.raises(ValueError, match="unknown regularizer 'bsss'"):
        create_regularizer("l2_sp+bsss", source_model=source)
