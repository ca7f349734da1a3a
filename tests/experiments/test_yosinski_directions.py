"""Both directions of a Yosinski split (A→B and B→A): tables name conditions relative to the
target half, pair each run with its target half's base, and the dissimilar claims average the
directions (the paper's dissimilar numbers are that mean)."""

from __future__ import annotations

import pandas as pd
import pytest

from survey_lib.experiments import yosinski

SEEDS = (0, 1, 2, 3)
NS = range(1, 8)


def _runs(drop_ab: float, drop_ba: float, *, with_target: bool = True) -> pd.DataFrame:
    """Random split one way; the dissimilar split both ways, AnB falling by ``drop_*`` per n
    (in accuracy) against each half's base (baseB 0.8, baseA 0.6)."""
    rows = []
    for seed in SEEDS:
        for split in ("random", "dissimilar"):
            for half, acc in (("A", 0.6), ("B", 0.8)):
                rows.append({"kind": "base", "split": split, "half": half, "source": None,
                             "n": 0, "freeze": None, "seed": seed, "test_acc": acc})
            targets = ("B", "A") if split == "dissimilar" else ("B",)
            for target in targets:
                base = 0.8 if target == "B" else 0.6
                other = "A" if target == "B" else "B"
                drop = drop_ab if target == "B" else drop_ba
                if split == "random":
                    drop = 0.005
                for n in NS:
                    cells = {(other, True): base - drop * n, (target, True): base,
                             (other, False): base + 0.01, (target, False): base}
                    for (src, fr), acc in cells.items():
                        rows.append({"kind": "transfer", "split": split, "half": None,
                                     "source": src, "target": target, "n": n, "freeze": fr,
                                     "seed": seed, "test_acc": acc + 0.001 * seed})
                    if split == "dissimilar":
                        rows.append({"kind": "random_frozen", "split": split, "half": None,
                                     "source": target, "target": target, "n": n,
                                     "freeze": True, "seed": seed, "test_acc": 0.1})
    runs = pd.DataFrame(rows)
    if not with_target:
        runs = runs[runs.target.isna() | (runs.target == "B")].drop(columns="target")
    else:  # the A→B runs of a real grid carry no target key: NaN after concatenation
        runs.loc[runs.target == "B", "target"] = None
    return runs


def test_table_names_conditions_relative_to_the_target_half() -> None:
    table = yosinski.per_seed_table(_runs(0.01, 0.03))
    assert list(table.columns) == ["split", "direction", "condition", "n", "seed", "acc",
                                   "baseB", "delta"]
    ba = table[(table.direction == "B→A") & (table.seed == 0)]
    assert set(ba.split) == {"dissimilar"} and set(ba.baseB) == {0.6}  # paired with baseA
    # BnA (copied from the other half) is AnB here; AnA (own half) is BnB
    anb = ba[(ba.condition == "AnB") & (ba.n == 7)]
    assert anb.delta.iloc[0] == pytest.approx(-0.21)
    assert ba[ba.condition == "BnB"].delta.abs().max() == pytest.approx(0.0)
    assert set(table[table.split == "random"].direction) == {"A→B"}


def test_without_targets_the_table_is_the_one_direction_table() -> None:
    table = yosinski.per_seed_table(_runs(0.01, 0.03, with_target=False))
    assert list(table.columns) == ["split", "condition", "n", "seed", "acc", "baseB", "delta"]
    assert set(table.baseB) == {0.8}


def test_dissimilar_claims_average_the_two_directions() -> None:
    both = yosinski.claim_values(yosinski.per_seed_table(_runs(0.01, 0.03)))
    one = yosinski.claim_values(yosinski.per_seed_table(_runs(0.01, 0.03, with_target=False)))
    random_top = -0.5 * 6.5  # points: AnB − baseB at n = 6, 7 on the random split
    assert one["5"].iloc[0] == pytest.approx(random_top + 100 * 0.01 * 6.5)
    assert both["5"].iloc[0] == pytest.approx(random_top + 100 * 0.02 * 6.5)  # mean of 1 and 3
    # claim 6: per depth the mean over directions of AnB − random, then the median over n
    mean_anb_4 = ((0.8 - 0.04) + (0.6 - 0.12)) / 2
    assert both["6"].iloc[0] == pytest.approx(100 * (mean_anb_4 - 0.1), abs=1e-6)


def test_noise_budgets_weigh_each_direction_with_its_test_size() -> None:
    table = yosinski.per_seed_table(_runs(0.01, 0.03))
    budgets = yosinski.noise_budgets(
        table, {"random": 500, "dissimilar": {"A→B": 700, "B→A": 300}})
    names = [b.quantity for b in budgets]
    assert any(n.startswith("5.") for n in names) and any(n.startswith("6.") for n in names)
    small = yosinski.noise_budgets(
        table, {"random": 500, "dissimilar": {"A→B": 70, "B→A": 30}})
    [b6] = [b for b in budgets if b.quantity.startswith("6.")]
    [s6] = [b for b in small if b.quantity.startswith("6.")]
    assert s6.test_sd > b6.test_sd * 2  # ten times fewer test images: about 3x the sd


def test_target_half_is_checked() -> None:
    assert yosinski.target_half({}) == "B"
    with pytest.raises(ValueError, match="valid: 'A', 'B'"):
        yosinski.target_half({"target": "C"})
