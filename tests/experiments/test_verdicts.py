"""Verdict rules, power and split-half stability on constructed inputs with known answers.

Every input here is a constructed number (not a result), built so that the t-interval, and so
the outcome, is known in closed form: for values with mean m, sample sd s and n values the 95 %
interval is m ± t(0.975, n-1) s / sqrt(n); t(0.975, 2) = 4.302653, t(0.975, 9) = 2.262157.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from survey_lib.experiments.verdicts import (
    ABSENT,
    COLUMNS,
    INCONCLUSIVE,
    REPRODUCED,
    REVERSED,
    Verdict,
    all_of,
    effect,
    effect_from_interval,
    equivalent,
    mark_incomplete,
    migrate_status,
    minimum_detectable_effect,
    no_gain,
    not_run,
    read_verdicts,
    seed_halves,
    seeds_for_effect_size,
    values_and_halves,
    verdict_table,
)

T2 = 4.302652729911275  # t(0.975, 2)
RULE = "half the published 2.0-point gain"


def _eff(values, predicted="+", sesoi=1.0, **kw) -> Verdict:
    return effect("c", values, predicted=predicted, sesoi=sesoi, sesoi_rule=RULE,
                  what="the gain", **kw)


def test_zero_effect_with_tiny_spread_is_absent() -> None:
    v = _eff([-0.01, 0.0, 0.01])  # interval 0 ± 4.30 * 0.01 / sqrt(3) = ±0.0248, inside ±1
    assert v.verdict == ABSENT
    assert v.ci_high == pytest.approx(T2 * 0.01 / 3**0.5)
    assert "smaller than 0.02 points" in v.bound_text
    # the same zero effect with a spread the band cannot contain stays inconclusive
    assert _eff([-1.0, 0.0, 1.0]).verdict == INCONCLUSIVE


def test_large_effect_is_reproduced_and_opposite_sign_reversed() -> None:
    assert _eff([4.0, 5.0, 6.0]).verdict == REPRODUCED  # [2.52, 7.48]
    assert _eff([-4.0, -5.0, -6.0]).verdict == REVERSED
    assert _eff([-4.0, -5.0, -6.0], predicted="-").verdict == REPRODUCED
    assert _eff([4.0, 5.0, 6.0], predicted="-").verdict == REVERSED
    v = _eff([4.0, 5.0, 6.0])
    assert v.ci_low == pytest.approx(5.0 - T2 / 3**0.5)
    assert v.sd == pytest.approx(1.0)
    assert v.bound_text.startswith("the gain is positive: at least 2.52 points")


def test_significant_but_trivial_effect_is_reproduced_and_says_so() -> None:
    v = _eff([0.2, 0.3, 0.4])  # [0.05, 0.55]: above 0, inside ±1
    assert v.verdict == REPRODUCED
    assert "smaller than the smallest effect of interest" in v.bound_text


def test_zero_width_interval_is_never_evidence() -> None:
    v = _eff([0.8, 0.8, 0.8])
    assert v.verdict == INCONCLUSIVE
    assert "zero-width" in v.bound_text
    assert math.isnan(v.seeds_needed) and math.isnan(v.mde)


def test_single_seed_and_bad_input() -> None:
    assert _eff([0.5]).verdict == INCONCLUSIVE
    with pytest.raises(ValueError, match="sesoi"):
        _eff([1.0, 2.0], sesoi=0.0)
    with pytest.raises(ValueError, match="predicted"):
        _eff([1.0, 2.0], predicted="up")
    with pytest.raises(ValueError, match="sesoi_rule"):
        effect("c", [1.0, 2.0], predicted="+", sesoi=1.0, sesoi_rule=" ", what="x")
    with pytest.raises(ValueError, match="NaN"):
        _eff([1.0, float("nan")])


def test_equivalence_claims_use_the_same_words() -> None:
    def eq(values):
        return equivalent("c", values, sesoi=1.0, sesoi_rule="1 point", what="BnB+ − baseB")

    assert eq([-0.01, 0.0, 0.01]).verdict == REPRODUCED
    assert eq([5.0, 5.5, 6.0]).verdict == REVERSED  # [4.26, 6.74], wholly above +1
    assert eq([0.0, 1.0, 2.0]).verdict == INCONCLUSIVE
    assert eq([1.0, 1.0, 1.0]).verdict == INCONCLUSIVE


def test_mde_matches_the_power_table() -> None:
    # Cohen (1988) / G*Power: one-sample two-sided t-test, d = 0.5, alpha .05, power .80 needs
    # n = 34 (the exact solution is 33.37); at n = 34 the power is 0.808.
    assert seeds_for_effect_size(0.5) == 34.0
    assert seeds_for_effect_size(-0.5) == 34.0
    # independent check of the power at the MDE via the noncentral t distribution
    n, sd = 10, 2.0
    d = minimum_detectable_effect(sd, n) / sd
    crit = stats.t.ppf(0.975, n - 1)
    nc = d * math.sqrt(n)
    power = stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)
    assert power == pytest.approx(0.80, abs=1e-4)
    assert d == pytest.approx(0.996, abs=1e-3)
    assert math.isnan(minimum_detectable_effect(1.0, 1))
    assert seeds_for_effect_size(0.0) == math.inf
    assert seeds_for_effect_size(50.0) == 2.0


def test_seeds_needed_takes_the_nearer_route() -> None:
    # mean 2, sd 1, sesoi 1: only the sign route (d = 2) -> n for d = 2
    v = _eff([1.0, 2.0, 3.0])
    assert v.seeds_needed == seeds_for_effect_size(2.0)
    # mean 0, sd 1, sesoi 0.5: only the equivalence route, d = 0.5 -> 34
    v = _eff([-1.0, 0.0, 1.0], sesoi=0.5)
    assert v.seeds_needed == 34.0
    # mean 0.25, sd 1, sesoi 1: sign route d = .25, band route d = .75 -> the band route
    v = _eff([-0.75, 0.25, 1.25], sesoi=1.0)
    assert v.seeds_needed == seeds_for_effect_size(0.75)
    assert v.mde == pytest.approx(minimum_detectable_effect(1.0, 3))


def test_split_half_fragile_flag() -> None:
    stable = _eff([4.9, 5.0, 5.1, 5.2], halves=([4.9, 5.1], [5.0, 5.2]))  # both reproduced
    assert stable.fragile is False
    # halves reproduced ([4.8, 5.2]) vs reversed ([-5.2, -4.8]): fragile
    flip = _eff([4.9, 5.1, -4.9, -5.1], halves=([4.9, 5.1], [-4.9, -5.1]))
    assert flip.fragile is True
    assert _eff([1.0, 2.0, 3.0], halves=([1.0, 3.0], [2.0])).fragile is None
    assert _eff([1.0, 2.0, 3.0]).fragile is None


def test_seed_halves_are_disjoint_and_interleaved() -> None:
    assert seed_halves([103, 100, 101, 102, 104]) == ([100, 102, 104], [101, 103])
    values, (a, b) = values_and_halves(pd.Series({2: 0.2, 0: 0.0, 1: 0.1, 3: 0.3}))
    assert values == [0.0, 0.1, 0.2, 0.3] and a == [0.0, 0.2] and b == [0.1, 0.3]


def test_effect_from_interval_judges_a_given_interval() -> None:
    v = effect_from_interval("c", -0.8, -1.0, -0.2, 4, predicted="-", sesoi=0.3,
                             sesoi_rule="fixed 0.3", what="rho", unit="rho",
                             method="bootstrap", rule="r",
                             half_intervals=((-1.0, -0.1, 2), (-0.5, 0.4, 2)))
    assert v.verdict == REPRODUCED and v.method == "bootstrap" and v.fragile is True
    zero = effect_from_interval("c", 1.0, 1.0, 1.0, 3, predicted="+", sesoi=0.3,
                                sesoi_rule="fixed", what="rho", unit="rho", method="b", rule="r")
    assert zero.verdict == INCONCLUSIVE


def test_all_of_combines_parts() -> None:
    yes, no, maybe = _eff([4.0, 5.0, 6.0]), _eff([-4.0, -5.0, -6.0]), _eff([0.0, 1.0, 2.0])
    absent = _eff([-0.01, 0.0, 0.01])
    assert all_of("c", [yes, yes]).verdict == REPRODUCED
    assert all_of("c", [yes, no, absent]).verdict == REVERSED
    assert all_of("c", [yes, absent, maybe]).verdict == ABSENT
    assert all_of("c", [yes, maybe]).verdict == INCONCLUSIVE
    combined = all_of("c", [yes, maybe])
    assert combined.seeds_needed == max(yes.seeds_needed, maybe.seeds_needed)
    with pytest.raises(ValueError):
        all_of("c", [])


def test_no_gain_is_one_sided_and_words_a_loss_as_a_loss() -> None:
    kw = {"sesoi": 1.0, "sesoi_rule": "r", "what": "X − L2"}
    loss = no_gain("c", [-0.6, -0.5, -0.4, -0.5], **kw)
    t = stats.t.ppf(0.975, 3) * np.std([-0.6, -0.5, -0.4, -0.5], ddof=1) / 2
    assert loss.verdict == REPRODUCED and loss.ci_high == pytest.approx(-0.5 + t)
    assert f"a loss of at least {0.5 - t:.2f} points" in loss.bound_text  # 0.37
    tie = no_gain("c", [-0.2, 0.1, 0.3, 0.0], **kw)
    assert tie.verdict == REPRODUCED and "any gain is smaller than" in tie.bound_text
    assert no_gain("c", [2.0, 2.2, 2.1, 1.9], **kw).verdict == REVERSED  # wholly above +SESOI
    assert no_gain("c", [0.0, 2.0, 1.0, 3.0], **kw).verdict == INCONCLUSIVE


def test_mark_incomplete_and_not_run() -> None:
    marked = mark_incomplete([_eff([4.0, 5.0, 6.0])], 2)
    assert marked[0].complete is False and "2 failed or missing runs" in marked[0].bound_text
    assert mark_incomplete([_eff([4.0, 5.0, 6.0])], 0)[0].complete is True
    nr = not_run("c", "no dissimilar split")
    assert nr.verdict == INCONCLUSIVE and nr.n == 0 and "dissimilar" in nr.bound_text


def test_migrate_status_and_read_old_tables(tmp_path) -> None:
    assert migrate_status("not reproduced") == REVERSED
    assert migrate_status("reproduced") == REPRODUCED
    assert migrate_status(ABSENT) == ABSENT
    with pytest.raises(ValueError, match="valid"):
        migrate_status("maybe")
    # with the rule and interval, an old "not reproduced" is reversed only when the interval
    # lies wholly on the wrong side of 0 for the predicted direction
    rule = "gain > 0.02 with its 95 % t-interval above"
    assert migrate_status("not reproduced", rule, -0.3, -0.1) == REVERSED
    assert migrate_status("not reproduced", rule, -0.1, 0.01) == INCONCLUSIVE
    assert migrate_status("not reproduced", "within ±0.01: inside [-0.01, 0.01]") == REVERSED
    old = pd.DataFrame({"claim": ["1. a", "2. b", "3. c"], "rule": [rule] * 3,
                        "mean": [0.1, -0.2, 0.0], "ci_low": [0.0, -0.3, -0.1],
                        "ci_high": [0.2, -0.1, 0.1], "n": [3, 3, 3],
                        "verdict": ["inconclusive", "not reproduced", "not reproduced"]})
    old.to_csv(tmp_path / "old.csv", index=False)
    table = read_verdicts(tmp_path / "old.csv")
    assert list(table.columns) == COLUMNS
    assert list(table.verdict) == [INCONCLUSIVE, REVERSED, INCONCLUSIVE]
    new = verdict_table([_eff([4.9, 5.0, 5.1, 5.2], halves=([4.9, 5.1], [5.0, 5.2])),
                         _eff([1.0, 2.0, 3.0])])
    assert list(new.columns) == COLUMNS
    new.to_csv(tmp_path / "new.csv", index=False)
    back = read_verdicts(tmp_path / "new.csv")
    assert list(back.fragile) == [False, None]
    assert np.allclose(back["mean"], new["mean"])


def test_compare_verdicts_claim_by_claim() -> None:
    from survey_lib.experiments.verdicts import compare_verdicts

    fp32 = verdict_table([_eff([4.9, 5.0, 5.1, 5.2]), _eff([1.0, 2.0, 3.0])])
    fp32["claim"] = ["1. first", "2. second"]
    bf16 = fp32.copy()
    bf16.loc[0, ["mean", "ci_low", "ci_high"]] = [5.1, 4.8, 5.3]  # inside, same verdict
    bf16.loc[1, ["mean", "ci_low", "ci_high", "verdict"]] = [9.0, 8.0, 10.0, "reversed"]
    out = compare_verdicts(fp32, bf16, ("fp32", "bf16"))
    assert list(out["claim"]) == ["1. first", "2. second"]
    assert list(out["inside_both"]) == [True, False]
    assert list(out["inside_first"]) == [True, False]
    assert list(out["same_verdict"]) == [True, False]
    point = bf16.copy()  # a degenerate interval: inside the other's, but not the reverse
    point.loc[0, ["mean", "ci_low", "ci_high"]] = [5.2, 5.2, 5.2]
    one_way = compare_verdicts(fp32, point, ("fp32", "bf16")).loc[0]
    assert one_way["inside_first"] and not one_way["inside_both"]
    assert out.loc[0, "difference"] == pytest.approx(5.1 - 5.05)
    assert out.loc[1, "verdict_bf16"] == "reversed"
    with pytest.raises(ValueError, match="labels must differ"):
        compare_verdicts(fp32, bf16, ("x", "x"))
    with pytest.raises(ValueError, match="claims must be unique"):
        compare_verdicts(pd.concat([fp32, fp32]), bf16)


def test_has_estimate_marks_claims_not_run_on_either_side() -> None:
    import numpy as np
    import pandas as pd

    from survey_lib.experiments.verdicts import has_estimate

    table = pd.DataFrame({"mean_a": [1.0, np.nan, np.nan], "mean_b": [np.nan, 2.0, np.nan]})
    assert has_estimate(table, ("a", "b")).tolist() == [True, True, False]
