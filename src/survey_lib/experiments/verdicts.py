"""Verdicts on published claims, computed from data by rules written down in advance.

A rule compares a quantity measured over seeds with a threshold through its 95 % Student-t
interval (:func:`survey_lib.stats.t_interval`):

* ``reproduced`` — the whole interval lies on the side the claim predicts;
* ``not reproduced`` — the whole interval lies on the other side;
* ``inconclusive`` — the interval straddles the threshold (or fewer than two seeds).

Claims that are statements about equality ("BnB+ ≈ baseB") use a tolerance band instead:
reproduced when the interval lies inside ``[-tol, tol]``, not reproduced when it lies wholly
outside, inconclusive otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import pandas as pd

from survey_lib.stats import t_interval

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Verdict:
    """One claim, the rule that tests it, what was measured and the outcome."""

    claim: str
    rule: str
    mean: float
    ci_low: float
    ci_high: float
    n: int
    verdict: str

    def as_dict(self) -> dict:
        return asdict(self)


def not_run(claim: str, reason: str = "") -> Verdict:
    """The verdict of a claim whose experiment the parameters leave out: inconclusive, n = 0."""
    nan = float("nan")
    rule = f"not run ({reason})" if reason else "not run"
    return Verdict(claim, rule, nan, nan, nan, 0, INCONCLUSIVE)


def _interval(values: Iterable[float]) -> tuple[float, float, float, int]:
    vals = [float(v) for v in values]
    return t_interval(vals)


def greater_than(
    claim: str, values: Iterable[float], threshold: float = 0.0, *, what: str = ""
) -> Verdict:
    """Claim: the quantity is above ``threshold``."""
    mean, low, high, n = _interval(values)
    if n < 2 or math.isnan(low):
        verdict = INCONCLUSIVE
    elif low > threshold:
        verdict = REPRODUCED
    elif high < threshold:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    rule = f"{what or 'value'} > {threshold:g} with its 95 % t-interval above {threshold:g}"
    return Verdict(claim, rule, mean, low, high, n, verdict)


def less_than(
    claim: str, values: Iterable[float], threshold: float = 0.0, *, what: str = ""
) -> Verdict:
    """Claim: the quantity is below ``threshold``."""
    negated = greater_than(claim, [-float(v) for v in values], -threshold)
    rule = f"{what or 'value'} < {threshold:g} with its 95 % t-interval below {threshold:g}"
    return Verdict(
        claim, rule, -negated.mean, -negated.ci_high, -negated.ci_low, negated.n, negated.verdict
    )


def within(claim: str, values: Iterable[float], tolerance: float, *, what: str = "") -> Verdict:
    """Claim: the quantity is approximately zero, ``|x| <= tolerance``."""
    if tolerance <= 0:
        raise ValueError(f"tolerance must be positive, got {tolerance}")
    mean, low, high, n = _interval(values)
    if n < 2 or math.isnan(low):
        verdict = INCONCLUSIVE
    elif -tolerance <= low and high <= tolerance:
        verdict = REPRODUCED
    elif low > tolerance or high < -tolerance:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    rule = f"{what or 'value'} within ±{tolerance:g}: 95 % t-interval inside [-{tolerance:g}, {tolerance:g}]"
    return Verdict(claim, rule, mean, low, high, n, verdict)


def verdict_table(verdicts: Iterable[Verdict]) -> pd.DataFrame:
    """The verdicts as a table (one row per claim)."""
    return pd.DataFrame([v.as_dict() for v in verdicts])


def all_of(claim: str, parts: list[Verdict]) -> Verdict:
    """A claim made of several conditions: reproduced when every part is, not reproduced when
    any part is not, inconclusive otherwise. The measured value shown is the first part's."""
    if not parts:
        raise ValueError("all_of needs at least one part")
    outcomes = [p.verdict for p in parts]
    if NOT_REPRODUCED in outcomes:
        verdict = NOT_REPRODUCED
    elif all(o == REPRODUCED for o in outcomes):
        verdict = REPRODUCED
    else:
        verdict = INCONCLUSIVE
    rule = " AND ".join(f"[{p.rule} → {p.verdict}]" for p in parts)
    first = parts[0]
    return Verdict(claim, rule, first.mean, first.ci_low, first.ci_high, first.n, verdict)
