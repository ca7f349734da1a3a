"""Verdicts on published claims with effect bounds, power and split-half stability.

Every claim is judged from a 95 % interval for one quantity measured in the claim's unit
(``"points"``: accuracy differences in percentage points, 0.01 accuracy = 1.0 point; ``"rho"``:
a rank correlation; ...), against a **smallest effect size of interest** (SESOI) that the
protocol fixes in advance by a stated rule (Lakens 2017, "Equivalence tests", *Social
Psychological and Personality Science* 8(4); Simonsohn 2015, "Small telescopes",
*Psychological Science* 26(5)).

Directional claims (:func:`effect`, the claim predicts a sign ``"+"`` or ``"-"``):

* ``reproduced`` — the whole interval lies on the predicted side of 0;
* ``reversed`` — the whole interval lies on the other side of 0;
* ``absent at this scale`` — the interval lies wholly inside ``(-sesoi, +sesoi)``: the effect,
  if present, is smaller than ``max(|low|, |high|)``;
* ``inconclusive`` — otherwise (also fewer than two seeds, or a zero-width interval, which is
  never taken as evidence).

The sign decisions come first: an interval wholly above 0 but inside the band is *reproduced*
(the bound text then says the effect is smaller than the SESOI).

Equality claims (:func:`equivalent`, "BnB+ ≈ baseB") use the same words: ``reproduced`` when the
interval lies inside ``(-sesoi, +sesoi)``, ``reversed`` when it lies wholly outside the band (a
real difference), ``inconclusive`` otherwise.

The interval of :func:`effect` and :func:`equivalent` is the Student-t interval over seeds,
:math:`\\bar x \\pm t_{0.975,\\,n-1}\\, s/\\sqrt n` (:func:`survey_lib.stats.t_interval`); the
same 95 % interval serves the sign test and the equivalence test (two one-sided tests at 2.5 %
each, slightly conservative against the usual 90 % TOST interval). Quantities for which a
t-interval does not fit (a rank correlation over a handful of targets) are judged from an
interval the caller computes (permutation, bootstrap) with :func:`effect_from_interval`.

Every verdict also records:

* ``sd`` — the per-seed sample standard deviation :math:`s` (``ddof = 1``);
* ``mde`` — the minimum detectable effect at this ``n``: :math:`d^* s` where :math:`d^*` solves
  80 % power of the two-sided 5 % one-sample (paired) t-test
  (``statsmodels.stats.power.TTestPower``; noncentrality :math:`d\\sqrt n`);
* ``seeds_needed`` — the seeds that give 80 % power to decide the claim if the true effect equals
  the observed mean at the observed spread: the smaller of the ``n`` that detects
  :math:`d = |\\bar x|/s` (sign decision) and, when :math:`|\\bar x| <` sesoi, the ``n`` that
  detects :math:`d = (\\text{sesoi} - |\\bar x|)/s` (the nearer equivalence bound); for an
  equality claim outside the band, :math:`d = (|\\bar x| - \\text{sesoi})/s`. ``inf`` when no
  ``n`` would (zero distance), NaN when it cannot be computed (n < 2, zero spread);
* ``fragile`` — the verdict recomputed, by the same rule, on two disjoint halves of the seeds
  differs between the halves (``None`` when a half has fewer than two seeds or no halves are
  given); :func:`seed_halves` makes the halves;
* ``complete`` — ``False`` when the grid had failed or missing runs (:func:`mark_incomplete`);
* ``method`` and ``bound_text`` — the interval's method and the verdict in words with its bound.

"Ties or hurts" / "no gain" claims (:func:`no_gain`) are one-sided equivalence tests in the
same words: ``reproduced`` when the interval lies wholly below ``+sesoi``, ``reversed`` when it
lies wholly above it. :func:`sesoi_from_spec` turns a protocol entry (``{published, fraction,
source}`` or ``{fixed, why}``) into the SESOI and its rule in words; :func:`effect_from_interval`
judges an interval computed elsewhere, optionally with a test's p-value deciding the sign;
:func:`verdict_view` and :func:`verdict_sentences` present a table on a page.

Tables committed before this scheme used ``not reproduced`` for "interval wholly on the wrong
side" (or wholly outside an equality band): :func:`migrate_status` maps it to ``reversed``, and
:func:`read_verdicts` reads both formats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from os import PathLike
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as _sps
from statsmodels.stats.power import TTestPower

from survey_lib.stats import t_interval

REPRODUCED = "reproduced"
ABSENT = "absent at this scale"
REVERSED = "reversed"
INCONCLUSIVE = "inconclusive"
OUTCOMES = (REPRODUCED, ABSENT, REVERSED, INCONCLUSIVE)
"""Every verdict string a table may hold."""

ALPHA = 0.05
"""Two-sided level of every interval and power computation."""
POWER = 0.80
"""Power used for the minimum detectable effect and the seeds needed."""
MAX_SEEDS = 100_000
"""Seeds-needed searches stop here (reported as ``inf`` beyond)."""

_LEGACY = {"not reproduced": REVERSED}


@dataclass(frozen=True)
class Verdict:
    """One claim, the rule that tests it, what was measured, the outcome and its bounds."""

    claim: str
    rule: str
    mean: float
    ci_low: float
    ci_high: float
    n: int
    verdict: str
    unit: str = "points"
    sesoi: float = math.nan
    sesoi_rule: str = ""
    sd: float = math.nan
    mde: float = math.nan
    seeds_needed: float = math.nan
    fragile: bool | None = None
    complete: bool = True
    method: str = "t"
    bound_text: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


COLUMNS = [f.name for f in fields(Verdict)]
"""The columns of ``verdicts.csv``, in order."""


# --------------------------------------------------------------------------- power


def _power(d: float, n: int) -> float:
    """Power of the two-sided one-sample t-test (``TTestPower.power``). statsmodels returns NaN
    for very large noncentralities at tiny ``n`` (its noncentral-t tail underflows); there the
    same quantity is read from scipy's noncentral t directly."""
    power = float(TTestPower().power(effect_size=d, nobs=n, alpha=ALPHA, alternative="two-sided"))
    if math.isnan(power):
        crit = float(_sps.t.ppf(1 - ALPHA / 2, n - 1))
        nc = d * math.sqrt(n)
        upper, lower = _sps.nct.sf(crit, n - 1, nc), _sps.nct.cdf(-crit, n - 1, nc)
        power = float(np.nansum([upper, lower]))  # the far tail underflows to NaN, i.e. 0
    return power


def minimum_detectable_effect(sd: float, n: int) -> float:
    """Smallest true effect (in the unit of ``sd``) that a two-sided 5 % one-sample t-test on
    ``n`` values detects with 80 % power: :math:`d^* s`, :math:`d^*` from
    ``TTestPower.solve_power``. NaN when ``n < 2`` or ``sd`` is not positive."""
    if n < 2 or not math.isfinite(sd) or sd <= 1e-12:
        return math.nan
    d = TTestPower().solve_power(
        effect_size=None, nobs=n, alpha=ALPHA, power=POWER, alternative="two-sided"
    )
    return float(d) * sd


def seeds_for_effect_size(d: float) -> float:
    """Smallest integer ``n >= 2`` at which the two-sided 5 % one-sample t-test has 80 % power
    against standardised effect ``d`` (``TTestPower.power``, monotone in ``n``, searched by
    doubling then bisection). ``inf`` for ``d == 0`` or beyond :data:`MAX_SEEDS`."""
    d = abs(float(d))
    if not math.isfinite(d):
        return 2.0 if d > 0 else math.nan
    if d == 0:
        return math.inf
    if _power(d, 2) >= POWER:
        return 2.0
    hi = 4
    while _power(d, hi) < POWER:
        if hi >= MAX_SEEDS:
            return math.inf
        hi = min(hi * 2, MAX_SEEDS)
    lo = hi // 2  # power(lo) < POWER <= power(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _power(d, mid) >= POWER:
            hi = mid
        else:
            lo = mid
    return float(hi)


def _seeds_needed(mean: float, sd: float, sesoi: float, *, equality: bool) -> float:
    if not (math.isfinite(mean) and math.isfinite(sd)) or sd <= 1e-12 * max(1.0, abs(mean)):
        return math.nan
    m = abs(mean)
    routes: list[float] = []
    if equality:
        routes.append(sesoi - m if m < sesoi else m - sesoi)
    else:
        routes.append(m)
        if m < sesoi:
            routes.append(sesoi - m)
    return min(seeds_for_effect_size(r / sd) for r in routes)


# --------------------------------------------------------------------------- rules


def _check_sesoi(sesoi: float, sesoi_rule: str) -> None:
    if not (isinstance(sesoi, int | float) and math.isfinite(sesoi) and sesoi > 0):
        raise ValueError(f"sesoi must be a positive finite number, got {sesoi!r}")
    if not str(sesoi_rule).strip():
        raise ValueError("sesoi_rule must state the rule the SESOI came from, got an empty string")


def _check_predicted(predicted: str) -> None:
    if predicted not in ("+", "-"):
        raise ValueError(f"predicted must be '+' or '-', got {predicted!r}")


def _zero_width(low: float, high: float) -> bool:
    """True when an interval has (numerically) no width: identical values over seeds."""
    return high - low <= 1e-9 * max(1.0, abs(low), abs(high))


def _degenerate(low: float, high: float, n: int) -> bool:
    return n < 2 or not (math.isfinite(low) and math.isfinite(high)) or _zero_width(low, high)


def judge_effect(low: float, high: float, n: int, *, predicted: str, sesoi: float) -> str:
    """The outcome of a directional claim from its interval ``[low, high]`` (see module doc)."""
    _check_predicted(predicted)
    if _degenerate(low, high, n):
        return INCONCLUSIVE
    above, below = low > 0, high < 0
    if above or below:
        return REPRODUCED if above == (predicted == "+") else REVERSED
    if -sesoi < low and high < sesoi:
        return ABSENT
    return INCONCLUSIVE


def judge_equivalence(low: float, high: float, n: int, *, sesoi: float) -> str:
    """The outcome of an equality claim from its interval ``[low, high]`` (see module doc)."""
    if _degenerate(low, high, n):
        return INCONCLUSIVE
    if -sesoi < low and high < sesoi:
        return REPRODUCED
    if low >= sesoi or high <= -sesoi:
        return REVERSED
    return INCONCLUSIVE


def _fmt(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else "n/a"


def _unit(unit: str) -> str:
    return {"points": " points", "rho": ""}.get(unit, f" {unit}")


def _seeds_phrase(seeds: float) -> str:
    if math.isnan(seeds):
        return "the seeds needed cannot be computed from this spread"
    if math.isinf(seeds):
        return "no number of seeds would decide it at this spread"
    return f"about {seeds:.0f} seeds would decide it at this spread"


def _bound_text(
    verdict: str, *, equality: bool, predicted: str, what: str, low: float, high: float,
    n: int, sesoi: float, unit: str, seeds: float,
) -> str:
    u = _unit(unit)
    interval = f"95 % interval {_fmt(low)} to {_fmt(high)}{u}"
    bound = max(abs(low), abs(high)) if math.isfinite(low) and math.isfinite(high) else math.nan
    if n < 2:
        return f"{what}: fewer than two values, undecided"
    if math.isfinite(low) and math.isfinite(high) and _zero_width(low, high):
        return f"{what}: zero-width interval (no spread over seeds), not taken as evidence"
    if equality:
        if verdict == REPRODUCED:
            return f"{what} is within ±{_fmt(sesoi)}{u}: smaller than {_fmt(bound)}{u} ({interval})"
        if verdict == REVERSED:
            return f"{what} is a real difference, larger than ±{_fmt(sesoi)}{u} ({interval})"
        return f"{what} is undecided ({interval}, band ±{_fmt(sesoi)}); " + _seeds_phrase(seeds)
    side = "positive" if predicted == "+" else "negative"
    if verdict == REPRODUCED:
        near = min(abs(low), abs(high))
        text = f"{what} is {side}: at least {_fmt(near)}{u} ({interval})"
        if bound < sesoi:
            text += f", but smaller than the smallest effect of interest ({_fmt(sesoi)}{u})"
        return text
    if verdict == REVERSED:
        other = "negative" if predicted == "+" else "positive"
        return f"{what} goes the other way ({other}; {interval})"
    if verdict == ABSENT:
        return f"{what}, if present at this scale, is smaller than {_fmt(bound)}{u} ({interval})"
    return f"{what} is undecided ({interval}, SESOI {_fmt(sesoi)}); " + _seeds_phrase(seeds)


def _values(values: Iterable[float], name: str) -> list[float]:
    vals = [float(v) for v in values]
    if any(math.isnan(v) for v in vals):
        raise ValueError(f"{name} contain NaN; count failed runs with mark_incomplete instead")
    return vals


def _fragile(halves, judge) -> bool | None:
    if halves is None:
        return None
    if len(halves) != 2:
        raise ValueError(f"halves must be two sequences of values, got {len(halves)}")
    outcomes = []
    for half in halves:
        vals = _values(half, "halves")
        if len(vals) < 2:
            return None
        _, lo, hi, n = t_interval(vals)
        outcomes.append(judge(lo, hi, n))
    return outcomes[0] != outcomes[1]


def _t_summary(vals: list[float]) -> tuple[float, float, float, int, float]:
    if not vals:
        return math.nan, math.nan, math.nan, 0, math.nan
    mean, low, high, n = t_interval(vals)
    sd = float(np.std(vals, ddof=1)) if n >= 2 else math.nan
    return mean, low, high, n, sd


def effect(
    claim: str,
    values: Iterable[float],
    *,
    predicted: Literal["+", "-"],
    sesoi: float,
    sesoi_rule: str,
    what: str,
    unit: str = "points",
    halves: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Verdict:
    """A directional claim: the quantity (one value per seed, in ``unit``) has sign
    ``predicted``; judged from its 95 % t-interval against 0 and ``±sesoi`` (module doc)."""
    _check_predicted(predicted)
    _check_sesoi(sesoi, sesoi_rule)
    vals = _values(values, "values")
    mean, low, high, n, sd = _t_summary(vals)
    verdict = judge_effect(low, high, n, predicted=predicted, sesoi=sesoi)
    fragile = _fragile(
        halves, lambda lo, hi, k: judge_effect(lo, hi, k, predicted=predicted, sesoi=sesoi)
    )
    seeds = _seeds_needed(mean, sd, sesoi, equality=False)
    sign = ">" if predicted == "+" else "<"
    rule = (f"{what} {sign} 0: 95 % t-interval on the predicted side; absent if inside "
            f"±{sesoi:g}{_unit(unit)} ({sesoi_rule})")
    return Verdict(
        claim, rule, mean, low, high, n, verdict, unit, float(sesoi), sesoi_rule, sd,
        minimum_detectable_effect(sd, n), seeds, fragile, True, "t",
        _bound_text(verdict, equality=False, predicted=predicted, what=what, low=low,
                    high=high, n=n, sesoi=sesoi, unit=unit, seeds=seeds),
    )


def equivalent(
    claim: str,
    values: Iterable[float],
    *,
    sesoi: float,
    sesoi_rule: str,
    what: str,
    unit: str = "points",
    halves: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Verdict:
    """An equality claim: the quantity is within ``±sesoi`` of 0; judged from its 95 %
    t-interval (module doc)."""
    _check_sesoi(sesoi, sesoi_rule)
    vals = _values(values, "values")
    mean, low, high, n, sd = _t_summary(vals)
    verdict = judge_equivalence(low, high, n, sesoi=sesoi)
    fragile = _fragile(halves, lambda lo, hi, k: judge_equivalence(lo, hi, k, sesoi=sesoi))
    seeds = _seeds_needed(mean, sd, sesoi, equality=True)
    rule = (f"|{what}| < {sesoi:g}{_unit(unit)}: 95 % t-interval inside the band; reversed if "
            f"wholly outside ({sesoi_rule})")
    return Verdict(
        claim, rule, mean, low, high, n, verdict, unit, float(sesoi), sesoi_rule, sd,
        minimum_detectable_effect(sd, n), seeds, fragile, True, "t",
        _bound_text(verdict, equality=True, predicted="+", what=what, low=low, high=high,
                    n=n, sesoi=sesoi, unit=unit, seeds=seeds),
    )


def no_gain(
    claim: str,
    values: Iterable[float],
    *,
    sesoi: float,
    sesoi_rule: str,
    what: str,
    unit: str = "points",
    halves: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Verdict:
    """A "ties or hurts" claim (no gain of interest): ``reproduced`` when the 95 % t-interval
    lies wholly below ``+sesoi`` (any gain is smaller than the SESOI), ``reversed`` when it lies
    wholly above ``+sesoi`` (a gain of interest), ``inconclusive`` otherwise: a one-sided
    equivalence (non-superiority) test in the same words as :func:`equivalent`."""
    _check_sesoi(sesoi, sesoi_rule)
    mean, low, high, n, sd = _t_summary(_values(values, "values"))

    def judge(lo: float, hi: float, k: int) -> str:
        if _degenerate(lo, hi, k):
            return INCONCLUSIVE
        return REPRODUCED if hi < sesoi else REVERSED if lo >= sesoi else INCONCLUSIVE

    verdict = judge(low, high, n)
    seeds = (math.nan if not math.isfinite(sd) or sd <= 1e-12
             else seeds_for_effect_size(abs(sesoi - mean) / sd))
    u = _unit(unit)
    interval = f"95 % interval {_fmt(low)} to {_fmt(high)}{u}"
    if n < 2 or _degenerate(low, high, n):
        text = f"{what}: no usable interval (n = {n} or zero spread), undecided"
    elif verdict == REPRODUCED and high < 0:
        text = f"{what}: no gain of interest, a loss of at least {_fmt(-high)}{u} ({interval})"
    elif verdict == REPRODUCED:
        text = f"{what}: no gain of interest, any gain is smaller than {_fmt(high)}{u} ({interval})"
    elif verdict == REVERSED:
        text = f"{what}: a gain larger than {_fmt(sesoi)}{u} ({interval})"
    else:
        text = f"{what} is undecided ({interval}, SESOI {_fmt(sesoi)}); " + _seeds_phrase(seeds)
    rule = (f"{what} < {sesoi:g}{_unit(unit)}: 95 % t-interval wholly below +SESOI; reversed if "
            f"wholly above ({sesoi_rule})")
    return Verdict(claim, rule, mean, low, high, n, verdict, unit, float(sesoi), sesoi_rule, sd,
                   minimum_detectable_effect(sd, n), seeds, _fragile(halves, judge), True, "t",
                   text)


def sesoi_from_spec(spec: Mapping[str, object], unit: str = "points") -> tuple[float, str]:
    """The SESOI and its rule in words from a protocol entry (``params['sesoi'][claim]``).

    Two forms: ``{published: x, fraction: f, source: "..."}`` gives ``f · |x|`` ("half the
    published 2.6-point effect (source)"); ``{fixed: v, why: "..."}`` gives ``v`` ("fixed 1
    point: why"), for claims where the paper gives only a direction or no comparable number.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"a SESOI entry must be a mapping, got {spec!r}")
    u = {"points": "point"}.get(unit, unit)
    if "published" in spec:
        published, fraction = float(spec["published"]), float(spec.get("fraction", 0.5))
        if not (0 < fraction <= 1) or published == 0:
            raise ValueError(f"SESOI {dict(spec)}: need a nonzero published effect and "
                             "0 < fraction <= 1")
        words = {0.5: "half", 0.25: "a quarter of", 1.0: "all of"}.get(fraction, f"{fraction:g} ×")
        source = f" ({spec['source']})" if spec.get("source") else ""
        return fraction * abs(published), f"{words} the published {abs(published):g}-{u} effect{source}"
    if "fixed" in spec:
        value = float(spec["fixed"])
        if not value > 0:
            raise ValueError(f"SESOI {dict(spec)}: fixed must be positive")
        why = f": {spec['why']}" if spec.get("why") else ""
        return value, f"fixed {value:g} {_unit(unit).strip() or unit}{why}"
    raise ValueError(f"SESOI entry {dict(spec)} needs 'published' (with 'fraction') or 'fixed'")


def effect_from_interval(
    claim: str,
    estimate: float,
    low: float,
    high: float,
    n: int,
    *,
    predicted: Literal["+", "-"],
    sesoi: float,
    sesoi_rule: str,
    what: str,
    unit: str,
    method: str,
    rule: str,
    sd: float = math.nan,
    mde: float = math.nan,
    seeds_needed: float = math.nan,
    half_intervals: tuple[tuple, tuple] | None = None,
    p_value: float | None = None,
) -> Verdict:
    """A directional claim judged from an interval the caller computed by ``method`` (e.g. a
    bootstrap over targets and seeds for a rank correlation), by the same rule as
    :func:`effect`. ``half_intervals`` are ``(low, high, n)`` (or ``(low, high, n, estimate,
    p_value)``) of the same statistic on two disjoint halves of the seeds (``fragile`` flag). With ``p_value`` (e.g. an exact
    permutation test) the test decides the sign: reproduced / reversed exactly when
    ``p_value < 0.05`` (by the estimate's sign), whatever the interval (a bootstrap of a perfect
    ordering has zero width); the interval then only bounds the size (absent at this scale)."""
    _check_predicted(predicted)
    _check_sesoi(sesoi, sesoi_rule)
    verdict = judge_effect(low, high, n, predicted=predicted, sesoi=sesoi)
    if p_value is not None:  # the test decides the sign, the interval bounds the size
        if p_value < ALPHA and estimate != 0 and n >= 2:
            verdict = REPRODUCED if (estimate > 0) == (predicted == "+") else REVERSED
        elif verdict in (REPRODUCED, REVERSED):
            verdict = INCONCLUSIVE
    fragile: bool | None = None
    if half_intervals is not None:
        def judge_half(half: tuple) -> str:
            lo, hi, k = half[:3]
            out = judge_effect(lo, hi, k, predicted=predicted, sesoi=sesoi)
            if len(half) == 5:  # (low, high, n, estimate, p): the same test rule as above
                est, p = half[3], half[4]
                if p < ALPHA and est != 0 and k >= 2:
                    out = REPRODUCED if (est > 0) == (predicted == "+") else REVERSED
                elif out in (REPRODUCED, REVERSED):
                    out = INCONCLUSIVE
            return out

        a, b = (judge_half(h) for h in half_intervals)
        fragile = None if min(h[2] for h in half_intervals) < 2 else a != b
    return Verdict(
        claim, rule, float(estimate), float(low), float(high), int(n), verdict, unit,
        float(sesoi), sesoi_rule, float(sd), float(mde), float(seeds_needed), fragile, True,
        method,
        _bound_text(verdict, equality=False, predicted=predicted, what=what, low=low,
                    high=high, n=n, sesoi=sesoi, unit=unit, seeds=seeds_needed),
    )


def not_run(claim: str, reason: str = "") -> Verdict:
    """The verdict of a claim whose experiment the parameters leave out: inconclusive, n = 0."""
    nan = math.nan
    rule = f"not run ({reason})" if reason else "not run"
    return Verdict(claim, rule, nan, nan, nan, 0, INCONCLUSIVE, method="none",
                   bound_text=rule)


def all_of(claim: str, parts: list[Verdict]) -> Verdict:
    """A claim made of several conditions. ``reversed`` when any part is reversed, else
    ``absent at this scale`` when any part is absent, else ``reproduced`` when every part is,
    else ``inconclusive``. The estimate shown is the first part's; ``seeds_needed`` is the
    largest of the parts' (enough to decide every part); ``fragile`` is True if any part is."""
    if not parts:
        raise ValueError("all_of needs at least one part")
    outcomes = [p.verdict for p in parts]
    if REVERSED in outcomes:
        verdict = REVERSED
    elif ABSENT in outcomes:
        verdict = ABSENT
    elif all(o == REPRODUCED for o in outcomes):
        verdict = REPRODUCED
    else:
        verdict = INCONCLUSIVE
    flags = [p.fragile for p in parts]
    fragile = True if any(f is True for f in flags) else (
        False if all(f is False for f in flags) else None)
    seeds = [p.seeds_needed for p in parts]
    first = parts[0]
    return Verdict(
        claim,
        " AND ".join(f"[{p.rule} → {p.verdict}]" for p in parts),
        first.mean, first.ci_low, first.ci_high, first.n, verdict, first.unit, first.sesoi,
        first.sesoi_rule, first.sd, first.mde,
        math.nan if any(math.isnan(s) for s in seeds) else max(seeds),
        fragile, all(p.complete for p in parts),
        "+".join(dict.fromkeys(p.method for p in parts)),
        "; ".join(p.bound_text for p in parts),
    )


def mark_incomplete(verdicts: Iterable[Verdict], missing_runs: int) -> list[Verdict]:
    """The verdicts, flagged ``complete = False`` (and said so in ``bound_text``) when the grid
    they were computed on had ``missing_runs > 0`` failed or missing runs."""
    if missing_runs < 0:
        raise ValueError(f"missing_runs must be >= 0, got {missing_runs}")
    verdicts = list(verdicts)
    if missing_runs == 0:
        return verdicts
    note = f" (computed on a grid with {missing_runs} failed or missing runs)"
    return [replace(v, complete=False, bound_text=v.bound_text + note) for v in verdicts]


def seed_halves(seeds: Iterable[int]) -> tuple[list[int], list[int]]:
    """Two disjoint halves of ``seeds``: sorted, alternately assigned (first, third, ... to the
    first half), so that both halves span the seed range."""
    ordered = sorted(dict.fromkeys(int(s) for s in seeds))
    return ordered[0::2], ordered[1::2]


def values_and_halves(
    by_seed: Mapping[int, float] | pd.Series,
) -> tuple[list[float], tuple[list[float], list[float]]]:
    """The values of a seed → value mapping, and the same values split by :func:`seed_halves`."""
    mapping = dict(by_seed.items())
    first, second = seed_halves(mapping)
    return ([float(mapping[s]) for s in sorted(mapping)],
            ([float(mapping[s]) for s in first], [float(mapping[s]) for s in second]))


# --------------------------------------------------------------------------- tables


def verdict_table(verdicts: Iterable[Verdict]) -> pd.DataFrame:
    """The verdicts as a table (one row per claim, columns :data:`COLUMNS`)."""
    return pd.DataFrame([v.as_dict() for v in verdicts], columns=COLUMNS)


def _predicted_side(rule: str) -> str | None:
    """``"+"`` or ``"-"``: the direction an old-format rule predicted (``... > x with its 95 %
    t-interval above``), or ``None`` when the rule states no direction (an equality claim)."""
    import re

    first = str(rule).split("] AND [")[0]
    match = re.search(r"\s([<>])\s*(-?[0-9.]+)\s+with its 95 % t-interval (above|below)", first)
    if not match:
        return None
    return "+" if match.group(1) == ">" else "-"


def migrate_status(
    old: str, rule: str | None = None, low: float = math.nan, high: float = math.nan
) -> str:
    """A verdict word from a table committed before this scheme, in the current words.

    Current words map to themselves. Without the row's ``rule``, ``not reproduced`` maps to
    ``reversed`` (its meaning in the old scheme's equality rules). With the ``rule`` and the
    row's interval ``[low, high]``, the word is re-read: ``reversed`` only when the interval lies
    wholly on the wrong side of 0 for the direction the rule predicted (or, for an equality rule,
    when the old rule put it wholly outside its band), ``inconclusive`` otherwise (an old
    ``not reproduced`` also covered intervals that merely missed the old threshold).

    Raises:
        ValueError: ``old`` is no verdict word of either scheme.
    """
    word = str(old).strip()
    if word in OUTCOMES:
        return word
    if word not in _LEGACY:
        raise ValueError(f"unknown verdict {old!r}; valid: {list(OUTCOMES) + list(_LEGACY)}")
    if rule is None:
        return _LEGACY[word]
    side = _predicted_side(rule)
    if side is None:
        return REVERSED if "within" in str(rule) else INCONCLUSIVE
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return INCONCLUSIVE
    if (side == "+" and float(high) < 0) or (side == "-" and float(low) > 0):
        return REVERSED
    return INCONCLUSIVE


#: what a verdict table written before this scheme lacks, filled in by :func:`normalise_verdicts`.
_FILL = {"unit": "", "sesoi": math.nan, "sesoi_rule": "", "sd": math.nan, "mde": math.nan,
         "seeds_needed": math.nan, "fragile": None, "complete": True, "method": "t",
         "bound_text": ""}
_NEEDED = ["claim", "rule", "mean", "ci_low", "ci_high", "n", "verdict"]


def _old_unit(rule: str) -> str:
    """The unit of an old-format row, read from its rule: Spearman's rho, log10 of a learning
    rate, else an accuracy difference (written as a fraction in those tables)."""
    text = str(rule)
    if "Spearman" in text or ("rank" in text.lower() and "correlation" in text.lower()):
        return "rho"
    if "log10" in text:
        return "log10 lr"
    return "accuracy"


def normalise_verdicts(table: pd.DataFrame, where: str = "verdict table") -> pd.DataFrame:
    """A verdict table of either format, in the current columns, words and units.

    The one reader of committed ``verdicts*.csv`` tables (the book and :mod:`survey_lib.advise`
    use it). A table written before this scheme (no ``sesoi`` column) gets the current verdict
    words (:func:`migrate_status`, read with each row's rule and interval), its accuracy
    differences converted from fractions to percentage points (0.01 accuracy = 1.0 point,
    ``unit = "points"``) and defaults for the columns it lacks (NaN numbers, ``fragile`` None,
    ``complete`` True, ``method`` "t", empty texts). Every table keeps the word as written in
    ``verdict_as_written`` and says its ``format`` ("old" or "new"); extra columns are kept.
    A table already normalised is returned as it is.

    Raises:
        ValueError: the table lacks a column every format has.
    """
    missing = [c for c in _NEEDED if c not in table.columns]
    if missing:
        raise ValueError(f"{where}: a verdict table needs columns {_NEEDED}; missing {missing}")
    if "verdict_as_written" in table.columns:
        return table
    df = table.copy()
    df["verdict_as_written"] = df["verdict"]
    if "sesoi" not in df.columns:
        df["verdict"] = [
            migrate_status(v, r, lo, hi)
            for v, r, lo, hi in zip(df["verdict"], df["rule"], df["ci_low"], df["ci_high"])
        ]
        df["unit"] = [_old_unit(r) for r in df["rule"]]
        accuracy = df["unit"] == "accuracy"
        for col in ("mean", "ci_low", "ci_high"):
            values = df[col].astype(float)
            df[col] = values.where(~accuracy, values * 100.0)
        df.loc[accuracy, "unit"] = "points"
        df["format"] = "old"
    else:
        df["verdict"] = [migrate_status(v) for v in df["verdict"]]
        df["format"] = "new"
    for column, default in _FILL.items():
        if column not in df.columns:
            df[column] = default
    df["fragile"] = df["fragile"].map(
        lambda f: None if f is None or (isinstance(f, float) and math.isnan(f))
        else str(f).strip().lower() == "true").astype(object)
    df["complete"] = df["complete"].map(lambda c: str(c).strip().lower() != "false")
    for column in ("unit", "sesoi_rule", "bound_text", "method"):
        df[column] = df[column].fillna("").astype(str)
    return df


def read_verdicts(path: str | PathLike[str]) -> pd.DataFrame:
    """A ``verdicts.csv`` in either format, normalised (:func:`normalise_verdicts`), with
    exactly the current :data:`COLUMNS`."""
    return normalise_verdicts(pd.read_csv(path), str(path))[COLUMNS]


def compare_verdicts(
    first: pd.DataFrame, second: pd.DataFrame, labels: tuple[str, str] = ("a", "b")
) -> pd.DataFrame:
    """Two verdict tables of the same claims (e.g. one protocol run in fp32 and in bf16 on the
    same seeds), claim by claim: each side's verdict, mean and interval, whether the verdicts
    agree, and whether each mean lies inside the other side's 95 % interval.

    "Numbers within their intervals" is the test issue 13 sets for a change that should not
    move any result (a precision, an engine rewrite): with the same seeds the two estimates
    differ only by the change, so each mean should fall inside the other's t-interval.

    Args:
        first: the reference verdict table (either format; :func:`normalise_verdicts`).
        second: the verdict table compared with it.
        labels: suffixes of the two sides' columns.

    Returns:
        One row per claim in either table: ``claim``, ``verdict_<l>``, ``mean_<l>``,
        ``ci_low_<l>``, ``ci_high_<l>``, ``n_<l>`` for both labels, ``same_verdict``,
        ``inside_both`` (each mean within the other's interval; False when either is missing),
        ``inside_first`` (the second mean within the first's interval: the first is the
        reference) and ``difference`` (second mean minus first). A bootstrap interval can be
        a single point (every resample gave rho = 1), which ``inside_both`` then fails on.

    Raises:
        ValueError: the labels are equal, a table is no verdict table, or a claim repeats.
    """
    a, b = labels
    if a == b:
        raise ValueError(f"labels must differ, got {labels!r}")
    cols = ["claim", "verdict", "mean", "ci_low", "ci_high", "n"]
    left = normalise_verdicts(first, f"{a} table")[cols]
    right = normalise_verdicts(second, f"{b} table")[cols]
    for side, table in ((a, left), (b, right)):
        if table["claim"].duplicated().any():
            raise ValueError(f"{side} table: claims must be unique, repeated: "
                             f"{sorted(set(table['claim'][table['claim'].duplicated()]))}")
    out = left.merge(right, on="claim", how="outer", suffixes=(f"_{a}", f"_{b}"), sort=False)

    def inside(mean: float, low: float, high: float) -> bool:
        return bool(np.isfinite([mean, low, high]).all() and low <= mean <= high)

    out["same_verdict"] = out[f"verdict_{a}"] == out[f"verdict_{b}"]
    out["inside_both"] = [
        inside(ma, lb, hb) and inside(mb, la, ha)
        for ma, la, ha, mb, lb, hb in zip(
            out[f"mean_{a}"], out[f"ci_low_{a}"], out[f"ci_high_{a}"],
            out[f"mean_{b}"], out[f"ci_low_{b}"], out[f"ci_high_{b}"],
        )
    ]
    out["inside_first"] = [
        inside(mb, la, ha)
        for mb, la, ha in zip(out[f"mean_{b}"], out[f"ci_low_{a}"], out[f"ci_high_{a}"])
    ]
    out["difference"] = out[f"mean_{b}"] - out[f"mean_{a}"]
    return out


def has_estimate(table: pd.DataFrame, labels: tuple[str, str]) -> pd.Series:
    """Which rows of a :func:`compare_verdicts` table have an estimate on either side: a claim
    the protocol does not run has none, so neither "same" nor "inside" says anything there."""
    a, b = labels
    return table[[f"mean_{a}", f"mean_{b}"]].notna().any(axis=1)


def compare_verdict_folders(
    first: str | PathLike[str], second: str | PathLike[str], notebooks: Sequence[str],
    labels: tuple[str, str],
) -> pd.DataFrame:
    """:func:`compare_verdicts` over two results roots: for each notebook, every
    ``verdicts*.csv`` under ``<first>/<notebook>/`` against the same file under
    ``<second>/<notebook>/`` (one protocol run twice, e.g. fp32 and bf16, or sequential and
    batched). Returns the rows of every table with ``notebook`` and ``table`` (the file name)
    first.

    Raises:
        FileNotFoundError: a notebook has no verdict table under ``first``, or a table of
            ``first`` is missing under ``second`` (the message names which run lacks it).
    """
    rows = []
    for name in notebooks:
        tables = sorted((Path(first) / name).glob("verdicts*.csv"))
        if not tables:
            raise FileNotFoundError(f"no verdict tables in {Path(first) / name}")
        for path in tables:
            other = Path(second) / name / path.name
            if not other.is_file():
                raise FileNotFoundError(
                    f"{other} missing: the {labels[1]} run's tables are not there")
            table = compare_verdicts(pd.read_csv(path), pd.read_csv(other), labels)
            rows.append(table.assign(notebook=name, table=path.name))
    out = pd.concat(rows, ignore_index=True)
    head = ["notebook", "table", "claim"]
    return out[head + [c for c in out.columns if c not in head]]


def verdict_view(table: pd.DataFrame) -> pd.DataFrame:
    """The columns a reader needs, for a notebook page: claim, verdict, the bound in words,
    the fragile flag, spread, minimum detectable effect, seeds needed and the SESOI rule."""
    cols = ["claim", "verdict", "bound_text", "fragile", "n", "sd", "mde", "seeds_needed",
            "sesoi", "sesoi_rule"]
    return table[cols].round({"sd": 3, "mde": 3, "sesoi": 3})


def verdict_sentences(table: pd.DataFrame) -> str:
    """The verdicts as a Markdown list: claim, verdict, bound in words, and the fragile flag
    (``fragile`` when the two seed halves disagree)."""
    lines = []
    for row in table.itertuples(index=False):
        flag = {True: " — **fragile**: the two seed halves disagree",
                False: " — stable across the two seed halves"}.get(row.fragile, "")
        lines.append(f"- **{row.claim}** — *{row.verdict}*: {row.bound_text}{flag}.")
    return "\n".join(lines) + "\n"
