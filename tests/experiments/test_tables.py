"""The experiment cells' table helpers and claim rules on hand-built tables.

The tables here are constructed numbers (not results): each is built so that the answer of a
rule is known in advance, so that the rule can be seen to pass and to fail.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from survey_lib.experiments import kornblith, l2sp_bss, yosinski
from survey_lib.experiments.verdicts import NOT_REPRODUCED, REPRODUCED


def _yosinski_runs(anb_slope: float) -> pd.DataFrame:
    rows = []
    for split in ("random", "dissimilar"):
        for seed in range(3):
            noise = 0.001 * seed
            rows.append({"kind": "base", "split": split, "half": "B", "source": None, "n": 0,
                         "freeze": None, "seed": seed, "test_acc": 0.80 + noise})
            rows.append({"kind": "base", "split": split, "half": "A", "source": None, "n": 0,
                         "freeze": None, "seed": seed, "test_acc": 0.85})
            steep = 2.0 if split == "dissimilar" else 1.0
            for n in range(1, 8):
                dip = -0.03 if n in (3, 4, 5) else 0.0
                runs = {
                    ("B", True): 0.80 + dip,
                    ("B", False): 0.80,
                    ("A", True): 0.80 + anb_slope * steep * n,
                    ("A", False): 0.82 + 0.002 * n * (seed % 2),
                }
                for (src, fr), acc in runs.items():
                    rows.append({"kind": "transfer", "split": split, "half": None, "source": src,
                                 "n": n, "freeze": fr, "seed": seed, "test_acc": acc + noise})
                if split == "dissimilar":
                    rows.append({"kind": "random_frozen", "split": split, "half": None,
                                 "source": "B", "n": n, "freeze": True, "seed": seed,
                                 "test_acc": 0.3})
    return pd.DataFrame(rows)


def test_yosinski_per_seed_table_pairs_with_base_b() -> None:
    table = yosinski.per_seed_table(_yosinski_runs(-0.01))
    assert set(table.condition) == {"AnB", "BnB", "AnB+", "BnB+", "random"}
    row = table[(table.split == "random") & (table.condition == "AnB+") & (table.seed == 2)].iloc[0]
    assert row.delta == pytest.approx(0.02)


def test_yosinski_claims_follow_the_data() -> None:
    verdicts = {v.claim[0]: v.verdict for v in yosinski.claim_verdicts(
        yosinski.per_seed_table(_yosinski_runs(-0.01)))}
    assert verdicts == {k: REPRODUCED for k in "123456"}
    rising = {v.claim[0]: v.verdict for v in yosinski.claim_verdicts(
        yosinski.per_seed_table(_yosinski_runs(+0.01)))}
    assert rising["3"] == NOT_REPRODUCED


def test_yosinski_halves() -> None:
    assert yosinski.halves("fashion_mnist", "dissimilar", 0, 10) == {
        "A": [0, 1, 2, 3, 4, 6], "B": [5, 7, 8, 9]}
    h = yosinski.halves("fashion_mnist", "random", 3, 10)
    assert sorted(h["A"] + h["B"]) == list(range(10)) and len(h["A"]) == 5
    with pytest.raises(ValueError, match="valid"):
        yosinski.halves("fashion_mnist", "diagonal", 0, 10)


def _kornblith_runs(shrinking: bool) -> pd.DataFrame:
    rows = []
    for seed in range(3):
        for t, rank in (("near", 1), ("mid", 2), ("far", 3)):
            for k in (5, 10, 20, 40):
                scratch = 0.3 + 0.1 * np.log2(k / 5)
                gain = (0.3 / rank) * (5 / k if shrinking else k / 40)
                linear = 0.9 - 0.2 * rank
                rows += [
                    {"target": t, "k": k, "method": "scratch", "seed": seed, "test_acc": scratch},
                    {"target": t, "k": k, "method": "finetune", "seed": seed,
                     "test_acc": scratch + gain + 0.001 * seed},
                    {"target": t, "k": k, "method": "linear", "seed": seed, "test_acc": linear},
                ]
    return pd.DataFrame(rows)


def test_kornblith_gains_and_claims() -> None:
    gains = kornblith.gains_table(_kornblith_runs(shrinking=True))
    row = gains[(gains.target == "near") & (gains.k == 5) & (gains.seed == 0)].iloc[0]
    assert row.gain == pytest.approx(0.3)
    quality = pd.DataFrame([
        {"target": t, "seed": s, "source_acc": a, "test_acc": a / 2 + 0.01 * i}
        for s in range(3) for i, t in enumerate(("near", "far")) for a in (0.5, 0.7, 0.9)
    ])
    rank = {"near": 1, "mid": 2, "far": 3}
    verdicts = [v.verdict for v in kornblith.claim_verdicts(gains, rank, quality)]
    assert verdicts[0] == REPRODUCED and verdicts[1] == REPRODUCED and verdicts[3] == REPRODUCED
    growing = kornblith.gains_table(_kornblith_runs(shrinking=False))
    assert kornblith.claim_verdicts(growing, rank, None)[0].verdict == NOT_REPRODUCED


def test_l2sp_gains_are_paired_with_l2() -> None:
    rows = []
    for seed in range(3):
        for target in ("near", "far"):
            for rate in (0.15, 1.0):
                base = 0.6 + rate / 10 + 0.01 * seed
                for method, delta in (("L2", 0.0), ("BSS", 0.05 if rate < 1 else 0.01),
                                      ("L2-SP", 0.03 if target == "near" else -0.02)):
                    rows.append({"target": target, "rate": rate, "method": method, "seed": seed,
                                 "test_acc": base + delta})
    gains = l2sp_bss.gains_table(pd.DataFrame(rows))
    assert gains[gains.method == "L2"].gain.abs().max() == 0
    verdicts = l2sp_bss.claim_verdicts(gains, None, near="near", far="far")
    assert verdicts[0].verdict == REPRODUCED  # BSS helps at 15 % and less at 100 %
    assert verdicts[1].verdict == REPRODUCED  # L2-SP helps near, hurts far


def test_yosinski_claims_without_a_dissimilar_split_are_not_run() -> None:
    runs = _yosinski_runs(-0.01)
    verdicts = yosinski.claim_verdicts(yosinski.per_seed_table(runs[runs.split == "random"]))
    assert [v.verdict for v in verdicts[:4]] == [REPRODUCED] * 4
    assert [v.rule for v in verdicts[4:]] == ["not run (no dissimilar split)"] * 2
