"""The experiment cells' table helpers and claim rules on hand-built tables.

The tables here are constructed numbers (not results): each is built so that the answer of a
rule is known in advance, so that the rule can be seen to pass and to fail.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from survey_lib.experiments import kornblith, l2sp_bss, yosinski
from survey_lib.experiments.verdicts import INCONCLUSIVE, REPRODUCED, REVERSED

PARAMS = Path(__file__).resolve().parents[2] / "notebooks" / "params"


def _sesoi(notebook: str) -> dict:
    """The committed cpu protocol's SESOI rules (what the notebooks pass)."""
    return yaml.safe_load((PARAMS / notebook / "cpu.yaml").read_text())["sesoi"]


SEEDS = range(5)


def _yosinski_runs(anb_slope: float) -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(0)
    for split in ("random", "dissimilar"):
        for seed in SEEDS:
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
                                 "n": n, "freeze": fr, "seed": seed,
                                 "test_acc": acc + noise + rng.normal(0, 0.001)})
                if split == "dissimilar":
                    rows.append({"kind": "random_frozen", "split": split, "half": None,
                                 "source": "B", "n": n, "freeze": True, "seed": seed,
                                 "test_acc": 0.3 + rng.normal(0, 0.001)})
    return pd.DataFrame(rows)


def test_yosinski_per_seed_table_pairs_with_base_b() -> None:
    table = yosinski.per_seed_table(_yosinski_runs(-0.01))
    assert set(table.condition) == {"AnB", "BnB", "AnB+", "BnB+", "random"}
    row = table[(table.split == "random") & (table.condition == "AnB+") & (table.seed == 2)].iloc[0]
    assert row.delta == pytest.approx(0.02, abs=0.004)  # 0.02 plus N(0, 0.001) run noise


def test_yosinski_claims_follow_the_data() -> None:
    sesoi = _sesoi("yosinski_layer_transfer")
    verdicts = {v.claim[0]: v for v in yosinski.claim_verdicts(
        yosinski.per_seed_table(_yosinski_runs(-0.01)), sesoi=sesoi)}
    assert {k: v.verdict for k, v in verdicts.items()} == {k: REPRODUCED for k in "123456"}
    assert verdicts["1"].mean == pytest.approx(-3.0, abs=0.2)  # points
    assert all(v.fragile is False for v in verdicts.values())
    rising = {v.claim[0]: v.verdict for v in yosinski.claim_verdicts(
        yosinski.per_seed_table(_yosinski_runs(+0.01)), sesoi=sesoi)}
    assert rising["3"] == REVERSED
    with pytest.raises(ValueError, match="sesoi"):
        yosinski.claim_verdicts(yosinski.per_seed_table(_yosinski_runs(-0.01)), sesoi={})


def test_yosinski_halves() -> None:
    assert yosinski.halves("fashion_mnist", "dissimilar", 0, 10) == {
        "A": [0, 1, 2, 3, 4, 6], "B": [5, 7, 8, 9]}
    h = yosinski.halves("fashion_mnist", "random", 3, 10)
    assert sorted(h["A"] + h["B"]) == list(range(10)) and len(h["A"]) == 5
    with pytest.raises(ValueError, match="valid"):
        yosinski.halves("fashion_mnist", "diagonal", 0, 10)


def _kornblith_runs(shrinking: bool, targets=(("near", 1), ("mid", 2), ("far", 3))) -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(1)
    for seed in SEEDS:
        for t, rank in targets:
            for k in (5, 10, 20, 40):
                scratch = 0.3 + 0.1 * np.log2(k / 5)
                gain = (0.3 / rank) * (5 / k if shrinking else k / 40)
                linear = 0.9 - 0.1 * rank
                rows += [
                    {"target": t, "k": k, "method": "scratch", "seed": seed, "test_acc": scratch},
                    {"target": t, "k": k, "method": "finetune", "seed": seed,
                     "test_acc": scratch + gain + rng.normal(0, 0.001)},
                    {"target": t, "k": k, "method": "linear", "seed": seed, "test_acc": linear},
                ]
    return pd.DataFrame(rows)


def test_kornblith_gains_and_claims() -> None:
    sesoi = _sesoi("kornblith_gains_vs_size")
    gains = kornblith.gains_table(_kornblith_runs(shrinking=True))
    row = gains[(gains.target == "near") & (gains.k == 5) & (gains.seed == 0)].iloc[0]
    assert row.gain == pytest.approx(0.3, abs=0.005)
    rank = {"near": 1, "mid": 2, "far": 3}
    verdicts = kornblith.claim_verdicts(gains, rank, None, sesoi=sesoi)
    assert verdicts[0].verdict == REPRODUCED
    # three targets: even a perfect ordering has permutation p = 1/3, so no sign decision,
    # and more targets (not seeds) would decide it
    assert verdicts[1].verdict == INCONCLUSIVE and verdicts[1].seeds_needed == float("inf")
    assert -1.0 <= verdicts[1].ci_low <= verdicts[1].ci_high <= 1.0
    assert verdicts[3].rule.startswith("not run")
    growing = kornblith.gains_table(_kornblith_runs(shrinking=False))
    assert kornblith.claim_verdicts(growing, rank, None, sesoi=sesoi)[0].verdict == REVERSED


def test_kornblith_rank_claims_with_enough_units() -> None:
    targets = tuple((f"t{r}", r) for r in range(1, 6))  # 5 targets: smallest p = 2/120
    gains = kornblith.gains_table(_kornblith_runs(shrinking=True, targets=targets))
    quality = pd.DataFrame([
        {"target": t, "seed": s, "source_epochs": e, "source_acc": a,
         "test_acc": a / 2 + 0.01 * i}
        for s in SEEDS for i, t in enumerate(("t1", "t2", "t3"))
        for e, a in ((1, 0.5), (3, 0.7), (15, 0.9))
    ])
    verdicts = kornblith.claim_verdicts(gains, dict(targets), quality,
                                        sesoi=_sesoi("kornblith_gains_vs_size"))
    assert verdicts[1].verdict == REPRODUCED  # gain falls with distance rank, rho = -1
    assert verdicts[1].method.startswith("bootstrap")
    # rho = 1 for each of 3 targets over 3 sources: stratified permutation p = 2/216, so the
    # sign is decided although the bootstrap interval has zero width
    assert verdicts[3].verdict == REPRODUCED and verdicts[3].mean == pytest.approx(1.0)


def test_l2sp_gains_are_paired_with_l2() -> None:
    rows = []
    rng = np.random.default_rng(2)
    for seed in SEEDS:
        for target in ("near", "far"):
            for rate in (0.15, 1.0):
                base = 0.6 + rate / 10 + 0.01 * seed
                for method, delta in (("L2", 0.0), ("BSS", 0.05 if rate < 1 else 0.01),
                                      ("L2-SP", 0.03 if target == "near" else -0.02)):
                    noise = 0.0 if method == "L2" else rng.normal(0, 0.001)
                    rows.append({"target": target, "rate": rate, "method": method, "seed": seed,
                                 "test_acc": base + delta + noise})
    gains = l2sp_bss.gains_table(pd.DataFrame(rows))
    assert gains[gains.method == "L2"].gain.abs().max() == 0
    verdicts = l2sp_bss.claim_verdicts(gains, None, near="near", far="far",
                                       sesoi=_sesoi("l2sp_vs_bss"))
    assert verdicts[0].verdict == REPRODUCED  # BSS helps at 15 % and less at 100 %
    assert verdicts[1].verdict == REPRODUCED  # L2-SP helps near, hurts far
    assert verdicts[2].verdict == REVERSED  # BSS gains 3 points on the far target: not "no gain"
    assert verdicts[3].rule.startswith("not run")


def test_yosinski_claims_without_a_dissimilar_split_are_not_run() -> None:
    runs = _yosinski_runs(-0.01)
    verdicts = yosinski.claim_verdicts(yosinski.per_seed_table(runs[runs.split == "random"]),
                                       sesoi=_sesoi("yosinski_layer_transfer"))
    assert [v.verdict for v in verdicts[:4]] == [REPRODUCED] * 4
    assert [v.rule for v in verdicts[4:]] == ["not run (no dissimilar split)"] * 2
