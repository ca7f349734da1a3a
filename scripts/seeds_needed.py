"""Seeds needed per claim, from the committed CPU pilot, and the seed counts that fit the budget.

Reads the pilot's per-seed tables (``results/cpu-pilot/<notebook>/``, seeds 0-2) and the NEW cpu
protocols (``notebooks/params/<notebook>/cpu.yaml``: SESOI rules, test sizes), and prints, per
claim (part):

* the pilot mean and per-seed sd of the claim's quantity;
* the sd predicted at the new test sizes (noise budget: training part kept, test-sampling part
  scaled by the binomial variance ratio, :func:`survey_lib.experiments.noise.predicted_sd`);
* the seeds that give 80 % power to decide the claim if the true effect is the pilot mean at
  the predicted spread (:func:`survey_lib.experiments.verdicts.seeds_for_effect_size`, i.e.
  statsmodels' TTestPower): the sign route |mean| / sd and, when |mean| < SESOI, the
  equivalence route (SESOI − |mean|) / sd, whichever needs fewer;

then a time budget: seconds per seed of every grid (pilot ``wall_seconds`` / 3, scaled for
the larger test sets by a cost model: one forward pass per test image, three per training
image, i.e. forward + backward), the fixed cost of each notebook (driver seconds minus its grids)
and a greedy allocation of seeds (at least 4 per notebook so that both split halves have two)
under the budget, adding seeds where the next claim decided costs least.

Three pilot seeds give a rough sd (its own 95 % interval spans about 0.5x to 6x), so the seeds
needed are a plan, not a promise; the new verdicts report the seeds needed again at their n.

Usage: ``python scripts/seeds_needed.py [--budget-seconds 2280] [--csv results/cpu-pilot/seeds_plan.csv]``
(the committed plan file is what the book compares the pre-registered runs with).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd
import yaml

from survey_lib.experiments import kornblith, l2sp_bss, yosinski
from survey_lib.experiments.noise import mean_difference_terms, noise_budget, predicted_sd
from survey_lib.experiments.verdicts import seeds_for_effect_size, sesoi_from_spec
from survey_lib.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
PILOT = ROOT / "results" / "cpu-pilot"
NOTEBOOKS = ("yosinski_layer_transfer", "kornblith_gains_vs_size", "l2sp_vs_bss")


def _params(nb: str) -> tuple[dict, dict]:
    old = json.loads((PILOT / nb / "driver.json").read_text())["parameters"]
    new = yaml.safe_load((ROOT / "notebooks" / "params" / nb / "cpu.yaml").read_text())
    return old, new


def _needed(mean: float, sd: float, sesoi: float, kind: str) -> float:
    if not (math.isfinite(sd) and sd > 0):
        return math.nan
    m = abs(mean)
    if kind == "equal":
        routes = [abs(sesoi - m)]
    elif kind == "no_gain":
        routes = [abs(sesoi - mean)]
    else:
        routes = [m] + ([sesoi - m] if m < sesoi else [])
    return min(seeds_for_effect_size(r / sd) for r in routes)


def _row(nb: str, claim: str, kind: str, values: pd.Series, spec: dict, old_terms, new_terms,
         unit: str = "points") -> dict:
    sesoi, _ = sesoi_from_spec(spec, unit=unit)
    budget = noise_budget(claim, values.tolist(), old_terms) if old_terms else None
    sd_new = predicted_sd(budget, new_terms) if budget else float(values.std(ddof=1))
    return {"notebook": nb, "claim": claim, "kind": kind, "mean": values.mean(),
            "sd": values.std(ddof=1), "test_share": budget.test_share if budget else math.nan,
            "sd_new": sd_new, "sesoi": sesoi, "seeds": _needed(values.mean(), sd_new, sesoi, kind)}


def _scaled_terms(terms, sizes_old: dict, sizes_new: dict):
    """The same terms with every old test size replaced by the new one of the same group."""
    lookup = {sizes_old[g]: sizes_new[g] for g in sizes_old}
    return [(w, p, lookup[m]) for w, p, m in terms]


def yosinski_rows(old: dict, new: dict) -> list[dict]:
    nb = "yosinski_layer_transfer"
    rows = []
    for name, table_file, base in (("fashion", "per_seed.csv", old),
                                   ("glyphs", "per_seed_glyphs.csv", {**old, **old["many_class"]})):
        table = pd.read_csv(PILOT / nb / table_file)
        new_base = new if name == "fashion" else {**new, **new["many_class"]}
        splits = sorted(table.split.unique())
        m_old = {s: round(sum(yosinski.n_test_images(base, s, sd) for sd in (0, 1, 2)) / 3)
                 for s in splits}
        m_new = {s: round(sum(yosinski.n_test_images(new_base, s, sd) for sd in (0, 1, 2)) / 3)
                 for s in splits}
        if len(set(m_old.values())) < len(m_old):  # keep the lookup one-to-one
            m_old = {s: v + i for i, (s, v) in enumerate(m_old.items())}
        budgets = {b.quantity[:1]: b for b in yosinski.noise_budgets(table, m_old)}
        values = yosinski.claim_values(table)
        terms_old = _terms_yosinski(table, m_old)
        for key, vals in values.items():
            kind = "equal" if key == "2" else "effect"
            new_terms = _scaled_terms(terms_old[key], m_old, m_new)
            row = _row(nb, f"{name} {key}", kind, vals, new["sesoi"][key], terms_old[key],
                       new_terms)
            row["test_share"] = budgets[key].test_share
            rows.append(row)
    return rows


def _terms_yosinski(table: pd.DataFrame, m: dict) -> dict:
    # the same construction as yosinski.noise_budgets, returning the terms
    ns = sorted(int(n) for n in table.n.unique())
    low, mid, top = yosinski.layer_groups(ns)
    acc = table.groupby(["split", "condition", "n"]).acc.mean()
    base = table.groupby("split").baseB.mean()

    def accs(split, cond, depths):
        return [float(acc.loc[(split, cond, n)]) for n in depths]

    out = {
        "1": mean_difference_terms(accs("random", "BnB", mid), [base["random"]], m["random"]),
        "2": mean_difference_terms(accs("random", "BnB+", ns), [base["random"]], m["random"]),
        "3": mean_difference_terms(accs("random", "AnB", top), accs("random", "AnB", low),
                                   m["random"]),
        "4": mean_difference_terms(accs("random", "AnB+", ns), [base["random"]], m["random"]),
    }
    if "dissimilar" in m:
        out["5"] = (mean_difference_terms(accs("random", "AnB", top), [base["random"]],
                                          m["random"])
                    + [(-w, p, k) for w, p, k in mean_difference_terms(
                        accs("dissimilar", "AnB", top), [base["dissimilar"]], m["dissimilar"])])
        out["6"] = mean_difference_terms(accs("dissimilar", "AnB", ns),
                                         accs("dissimilar", "random", ns), m["dissimilar"])
    return out


def kornblith_rows(old: dict, new: dict) -> list[dict]:
    nb = "kornblith_gains_vs_size"
    gains = pd.read_csv(PILOT / nb / "gains_per_seed.csv")
    size = old["source"]["size"]
    kmax = max(old["ks"])
    m_old = kornblith.n_test_images(old["targets"], kmax, 0, size)
    m_new = kornblith.n_test_images(new["targets"], kmax, 0, size)
    b_old = kornblith.noise_budgets(gains, m_old)[0]
    b_new = kornblith.noise_budgets(gains, m_new)[0]
    slope = kornblith.slope_per_seed(gains)
    sesoi, _ = sesoi_from_spec(new["sesoi"]["1"])
    sd_new = math.sqrt(b_old.observed_sd**2 * (1 - b_old.test_share)
                       + b_old.observed_sd**2 * b_old.test_share * b_new.test_sd**2
                       / b_old.test_sd**2)
    rows = [{"notebook": nb, "claim": "1", "kind": "effect", "mean": slope.mean(),
             "sd": slope.std(ddof=1), "test_share": b_old.test_share, "sd_new": sd_new,
             "sesoi": sesoi, "seeds": _needed(slope.mean(), sd_new, sesoi, "effect")}]
    for key in ("2", "3", "4"):
        rows.append({"notebook": nb, "claim": key, "kind": "rank", "mean": math.nan,
                     "sd": math.nan, "test_share": math.nan, "sd_new": math.nan,
                     "sesoi": sesoi_from_spec(new["sesoi"][key], unit="rho")[0],
                     "seeds": math.inf if key != "4" else math.nan})
    return rows


def l2sp_rows(old: dict, new: dict) -> list[dict]:
    nb = "l2sp_vs_bss"
    gains = pd.read_csv(PILOT / nb / "per_seed.csv")
    near, far = old["targets"]["near"]["name"], old["targets"]["far"]["name"]
    size = old["source"]["size"]
    m_old = l2sp_bss.n_test_images(old["targets"], size)
    m_new = l2sp_bss.n_test_images(new["targets"], size)
    budgets_old = {b.quantity.split(".")[0]: b
                   for b in l2sp_bss.noise_budgets(gains, near=near, far=far, n_test=m_old)}
    budgets_new = {b.quantity.split(".")[0]: b
                   for b in l2sp_bss.noise_budgets(gains, near=near, far=far, n_test=m_new)}
    values = l2sp_bss.claim_values(gains, near=near, far=far)
    rows = []
    kinds = {"1a": "effect", "1b": "effect", "2a": "effect", "2b": "no_gain", "3": "no_gain"}
    for key, kind in kinds.items():
        b_old, b_new = budgets_old[key], budgets_new[key]
        v_obs = b_old.observed_sd**2
        sd_new = math.sqrt(v_obs * (1 - b_old.test_share)
                           + v_obs * b_old.test_share * b_new.test_sd**2 / b_old.test_sd**2)
        sesoi, _ = sesoi_from_spec(new["sesoi"][key])
        vals = values[key]
        rows.append({"notebook": nb, "claim": key, "kind": kind, "mean": vals.mean(),
                     "sd": vals.std(ddof=1), "test_share": b_old.test_share, "sd_new": sd_new,
                     "sesoi": sesoi, "seeds": _needed(vals.mean(), sd_new, sesoi, kind)})
    lr = pd.read_csv(PILOT / nb / "lr_sweep.csv")
    ratio = l2sp_bss.best_lr_ratio(lr, near, far)
    rows.append(_row(nb, "4", "effect", ratio, new["sesoi"]["4"], None, None, unit="log10 lr"))
    return rows


# ----------------------------------------------------------------------------- time


def _wall(nb: str) -> dict[str, float]:
    return {p.parent.name: json.loads(p.read_text())["wall_seconds"]
            for p in sorted((PILOT / nb).glob("*/provenance.json"))}


def per_seed_seconds(old: dict[str, dict], new: dict[str, dict]) -> tuple[dict, dict]:
    """Seconds per seed of each notebook at the new test sizes, and its fixed seconds."""
    per_seed, fixed = {}, {}
    for nb in NOTEBOOKS:
        walls = _wall(nb)
        driver = json.loads((PILOT / nb / "driver.json").read_text())["seconds"]
        fixed[nb] = driver - sum(walls.values())
        factors = _eval_factors(nb, old[nb], new[nb])
        per_seed[nb] = sum(w / 3 * factors.get(g, 1.0) for g, w in walls.items())
    return per_seed, fixed


def _factor(train_units: float, test_old: float, test_new: float) -> float:
    return (3 * train_units + test_new) / (3 * train_units + test_old)


def _eval_factors(nb: str, old: dict, new: dict) -> dict[str, float]:
    if nb == "yosinski_layer_transfer":
        f_old = yosinski.n_test_images(old, "random", 0)
        f_new = yosinski.n_test_images(new, "random", 0)
        train_f = 5 * old["train_per_class"] * old["train"]["epochs"]
        g_old = yosinski.n_test_images({**old, **old["many_class"]}, "random", 0)
        g_new = yosinski.n_test_images({**new, **new["many_class"]}, "random", 0)
        train_g = 23.5 * old["many_class"]["train_per_class"] * old["train"]["epochs"]
        fash = _factor(train_f, f_old, f_new)
        glyph = _factor(train_g, g_old, g_new)
        return {"base": fash, "transfer": fash, "glyphs_base": glyph, "glyphs_transfer": glyph}
    if nb == "kornblith_gains_vs_size":
        size, kmax = old["source"]["size"], max(old["ks"])
        m_old = kornblith.n_test_images(old["targets"], kmax, 0, size)
        m_new = kornblith.n_test_images(new["targets"], kmax, 0, size)
        train = (old["finetune"]["steps"] * old["finetune"]["train"]["batch_size"]
                 + old["scratch"]["steps"] * old["scratch"]["train"]["batch_size"])
        # per target and k: finetune + scratch training, three test passes (one per method)
        cost_old = sum(3 * train + 3 * m for m in m_old.values())
        cost_new = sum(3 * train + 3 * m for m in m_new.values())
        # the quality grid is linear probes only: its cost is the test feature extraction
        return {"gains": cost_new / cost_old,
                "quality": sum(m_new.values()) / sum(m_old.values())}
    size = old["source"]["size"]
    m_old = l2sp_bss.n_test_images(old["targets"], size)
    m_new = l2sp_bss.n_test_images(new["targets"], size)
    epochs, rates = old["train"]["epochs"], old["rates"]
    cost_old = cost_new = 0.0
    for t in old["targets"].values():
        classes = 47 if t["dataset"] == "glyphs" else 10
        train = classes * t["pool_per_class"] * epochs * sum(rates) / len(rates)
        cost_old += 3 * train + m_old[t["name"]]
        cost_new += 3 * train + m_new[t["name"]]
    sweep_old = sweep_new = 0.0
    for t in old["targets"].values():
        classes = 47 if t["dataset"] == "glyphs" else 10
        train = classes * t["pool_per_class"] * epochs
        sweep_old += 3 * train + m_old[t["name"]]
        sweep_new += 3 * train + m_new[t["name"]]
    return {"regularizers": cost_new / cost_old, "lr_sweep": sweep_new / sweep_old}


def allocate(rows: pd.DataFrame, per_seed: dict, fixed: dict, budget: float,
             minimum: int = 4) -> dict[str, int]:
    """Greedy: start every notebook at ``minimum`` seeds; repeatedly raise the notebook whose
    next finite seeds-needed threshold decides one more claim for the fewest extra seconds,
    while the total stays within ``budget``."""
    seeds = {nb: minimum for nb in NOTEBOOKS}

    def total() -> float:
        return sum(fixed[nb] + seeds[nb] * per_seed[nb] for nb in NOTEBOOKS)

    while True:
        best = None
        for nb in NOTEBOOKS:
            need = sorted(s for s in rows[rows.notebook == nb].seeds
                          if math.isfinite(s) and s > seeds[nb])
            if not need:
                continue
            extra = (need[0] - seeds[nb]) * per_seed[nb]
            if total() + extra <= budget and (best is None or extra < best[1]):
                best = (nb, extra, int(need[0]))
        if best is None:
            return seeds
        seeds[best[0]] = best[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget-seconds", type=float, default=38 * 60)
    parser.add_argument("--csv", type=Path, default=None,
                        help="also write the per-claim plan (with the seeds allocated) here")
    args = parser.parse_args()
    old, new = {}, {}
    for nb in NOTEBOOKS:
        old[nb], new[nb] = _params(nb)
    rows = pd.DataFrame(yosinski_rows(old[NOTEBOOKS[0]], new[NOTEBOOKS[0]])
                        + kornblith_rows(old[NOTEBOOKS[1]], new[NOTEBOOKS[1]])
                        + l2sp_rows(old[NOTEBOOKS[2]], new[NOTEBOOKS[2]]))
    per_seed, fixed = per_seed_seconds(old, new)
    seeds = allocate(rows, per_seed, fixed, args.budget_seconds)
    rows["decided_at_plan"] = [s <= seeds[nb] for s, nb in zip(rows.seeds, rows.notebook)]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(rows.round(3).to_string(index=False))
    print()
    total = 0.0
    for nb in NOTEBOOKS:
        t = fixed[nb] + seeds[nb] * per_seed[nb]
        total += t
        print(f"{nb}: fixed {fixed[nb]:.0f} s + {seeds[nb]} seeds x {per_seed[nb]:.1f} s "
              f"= {t:.0f} s")
    print(f"predicted total {total:.0f} s = {total / 60:.1f} min "
          f"(budget {args.budget_seconds / 60:.0f} min)")
    if args.csv is not None:
        plan = rows.assign(seeds_allocated=[seeds[nb] for nb in rows.notebook])
        atomic_write_text(args.csv, plan.to_csv(index=False))
        print(f"plan written to {args.csv}")
    decided = int(rows.decided_at_plan.sum())
    print(f"claims (parts) expected decided at the plan: {decided} of {len(rows)}; "
          "rank claims need more targets (inf), claim 4 of Kornblith is judged by permutation")


if __name__ == "__main__":
    main()
