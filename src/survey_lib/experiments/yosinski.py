"""Grid cells of the layer-transfer reproduction (Yosinski et al. 2014).

Yosinski, Clune, Bengio, Lipson, "How transferable are features in deep neural networks?",
NeurIPS 2014, https://arxiv.org/abs/1411.1792.

A dataset's classes are split into halves A and B. ``baseA``/``baseB`` are trained from scratch
on each half. A transfer network ``XnB`` copies units ``1..n`` of ``baseX`` into a fresh
network for B, re-initialises the rest, and either freezes the copied units (``AnB``, ``BnB``)
or fine-tunes them (``AnB+``, ``BnB+``). The control freezes ``n`` *randomly initialised* units.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from survey_lib.data import ImageDataset
from survey_lib.data.protocols import named_split, split_classes
from survey_lib.experiments.common import (
    cached_model,
    checkpoint_info,
    fit_or_fail,
    load_split,
    new_model,
    test_accuracy,
    train_config,
)
from survey_lib.models import TransferModel, dataset_stats
from survey_lib.runner import RunOutput
from survey_lib.train import TrainConfig
from survey_lib.transfer import freeze_units, transfer_units

if TYPE_CHECKING:
    import pandas as pd

#: Named dissimilar splits per dataset (A, B names for tables).
DISSIMILAR = {
    "fashion_mnist": "clothing_vs_footwear_bags",
    "digits": "low_vs_high",
    "cifar100": "manmade_vs_natural",
}


def halves(dataset: str, split: str, seed: int, num_classes: int) -> dict[str, list[int]]:
    """Class ids of halves A and B: a seeded random split, or the dataset's dissimilar split."""
    if split == "random":
        a, b = split_classes(num_classes, seed)
    elif split == "dissimilar":
        if dataset not in DISSIMILAR:
            raise ValueError(
                f"no dissimilar split for {dataset!r}; defined for {sorted(DISSIMILAR)}"
            )
        a, b = named_split(dataset, DISSIMILAR[dataset])
    else:
        raise ValueError(f"unknown split {split!r}; valid: 'random', 'dissimilar'")
    return {"A": sorted(a), "B": sorted(b)}


def _data(params: Mapping[str, Any], half: str, seed: int):
    from survey_lib.data import dataset_info

    info = dataset_info(params["dataset"])
    classes = halves(params["dataset"], params["split"], seed, info.num_classes)[half]
    common = {
        "classes": classes,
        "size": params["size"],
        "channels": params["channels"],
        "seed": seed,
        "options": dict(params.get("options", {})),
    }
    train = load_split(params["dataset"], "train", per_class=params["train_per_class"], **common)
    test = load_split(params["dataset"], "test", per_class=params["test_per_class"], **common)
    return train, test


def _base_key(params: Mapping[str, Any], half: str, seed: int) -> dict[str, Any]:
    return {
        "what": "yosinski-base",
        "half": half,
        "seed": seed,
        **{
            k: params[k]
            for k in (
                "dataset",
                "split",
                "model",
                "train_per_class",
                "size",
                "channels",
                "train",
            )
        },
        "model_kwargs": dict(params.get("model_kwargs", {})),
        "options": dict(params.get("options", {})),
    }


def _trained_base(
    params: Mapping[str, Any], half: str, seed: int, train: ImageDataset, config: TrainConfig
) -> TransferModel:
    """``base<half>`` from its checkpoint, or trained on ``train`` (that half's data)."""
    return cached_model(
        params["checkpoint_dir"],
        _base_key(params, half, seed),
        lambda: new_model(
            params["model"],
            train.num_classes,
            params["channels"],
            seed,
            **params.get("model_kwargs", {}),
        ),
        lambda m: fit_or_fail(m, train, None, config),
    )


def base_model(params: Mapping[str, Any], half: str, seed: int) -> tuple[TransferModel, float]:
    """``base<half>`` for this split and seed (loaded from its checkpoint or trained) and its
    test accuracy on that half."""
    train, test = _data(params, half, seed)
    config = train_config(params["train"], seed, dataset_stats(train))
    model = _trained_base(params, half, seed, train, config)
    return model, test_accuracy(model, test, config)


def run_cell(params: Mapping[str, Any], seed: int) -> RunOutput:
    """One run of the grid. ``params['kind']`` is ``base``, ``transfer`` or ``random_frozen``.

    Returns ``{"test_acc": ...}`` measured on the held-out test split of the target half.
    A transfer run loads each half's data once and does not evaluate the base network.
    In ``info``: the SHA-256 of the base network's checkpoint the run used.
    """
    kind = params["kind"]
    if kind == "base":
        base, acc = base_model(params, params["half"], seed)
        return RunOutput({"test_acc": acc}, info=checkpoint_info(base))

    train, test = _data(params, "B", seed)
    source_half = params.get("source", "B")
    source_train = train if source_half == "B" else _data(params, source_half, seed)[0]
    # Normalise the target with the source half's statistics: the copied units expect them.
    source_config = train_config(params["train"], seed, dataset_stats(source_train))
    n = int(params["n"])
    target = new_model(
        params["model"],
        train.num_classes,
        params["channels"],
        seed + 10_000,
        **params.get("model_kwargs", {}),
    )
    source = None
    if kind == "transfer":
        source = _trained_base(params, params["source"], seed, source_train, source_config)
        transfer_units(source, target, n, freeze=bool(params["freeze"]), seed=seed + 10_000)
        frozen = n if params["freeze"] else 0
    elif kind == "random_frozen":
        freeze_units(target, n)
        frozen = n
    else:
        raise ValueError(f"unknown kind {kind!r}; valid: base, transfer, random_frozen")
    config = train_config(
        {**params["train"], "frozen_units": frozen},
        seed,
        (source_config.mean, source_config.std),
    )
    fit_or_fail(target, train, None, config)
    return RunOutput(
        {"test_acc": test_accuracy(target, test, config)}, info=checkpoint_info(source)
    )


CONDITIONS = ("AnB", "BnB", "AnB+", "BnB+", "random")


def condition_of(row: Mapping[str, Any]) -> str:
    """The paper's name for a run: ``baseA``/``baseB``, ``AnB``, ``BnB+``, ..., ``random``."""
    if row["kind"] == "base":
        return f"base{row['half']}"
    if row["kind"] == "random_frozen":
        return "random"
    return f"{row['source']}nB" + ("" if row["freeze"] else "+")


def per_seed_table(runs: pd.DataFrame) -> pd.DataFrame:
    """From the tidy runs (one row per run with columns kind, split, half, source, n, freeze,
    seed, test_acc) to one row per split × condition × n × seed with ``acc`` and ``delta`` =
    acc − baseB of the same split and seed (paired by seed)."""
    import pandas as pd

    df = runs.copy()
    df["condition"] = [condition_of(r) for r in df.to_dict("records")]
    base_b = df[df["condition"] == "baseB"].set_index(["split", "seed"])["test_acc"]
    out = df[df["condition"].isin(CONDITIONS)].copy()
    out["n"] = out["n"].astype(int)
    out["acc"] = out["test_acc"].astype(float)
    out["baseB"] = [float(base_b.loc[(s, sd)]) for s, sd in zip(out["split"], out["seed"])]
    out["delta"] = out["acc"] - out["baseB"]
    cols = ["split", "condition", "n", "seed", "acc", "baseB", "delta"]
    return pd.DataFrame(out[cols]).sort_values(cols[:4]).reset_index(drop=True)


def _mean_delta(table, split: str, condition: str, ns, *, robust: bool = False) -> pd.Series:
    """Per seed, the mean (or with ``robust`` the median) over ``ns`` of ``delta`` in points."""
    sel = table[(table.split == split) & (table.condition == condition) & (table.n.isin(list(ns)))]
    grouped = sel.groupby("seed")["delta"]
    return 100.0 * (grouped.median() if robust else grouped.mean())


CLAIMS = {
    "1": "1. BnB dips below baseB in the middle layers (fragile co-adaptation)",
    "2": "2. BnB+ ≈ baseB: fine-tuning removes the dip",
    "3": "3. AnB falls as more layers are frozen",
    "4": "4. AnB+ ≥ baseB: transferred features give a lasting boost",
    "5": "5. AnB drops more for a dissimilar split than for a random one",
    "6": "6. Transferred features, even from a dissimilar half, beat random frozen filters",
}
"""The six claims of published-results.md section 1, keyed by number."""


def layer_groups(ns) -> tuple[list[int], list[int], list[int]]:
    """The lowest, middle and top thirds of the depths ``ns`` (each at least one depth)."""
    ns = [int(n) for n in sorted(ns)]
    return (
        ns[: max(1, len(ns) // 3)],
        ns[len(ns) // 3 : 2 * len(ns) // 3 or None],
        ns[-max(1, len(ns) // 3) :],
    )


def claim_values(table: pd.DataFrame) -> dict[str, pd.Series]:
    """Per claim, the per-seed quantity it is judged on (accuracy differences in points),
    indexed by seed; claims 5 and 6 only when the table has the dissimilar split.

    1: mean over the middle depths of BnB − baseB; 2: mean over all depths of BnB+ − baseB;
    3: (AnB − baseB at the top depths) − (at the lowest depths); 4: mean over all depths of
    AnB+ − baseB; 5: (AnB − baseB)_random − (AnB − baseB)_dissimilar at the top depths;
    6: median over depths of AnB − random-frozen on the dissimilar split (the median, fixed in
    the protocol, is robust to a random-filter run that failed to train).
    """
    ns = sorted(int(n) for n in table.n.unique())
    low, mid, top = layer_groups(ns)
    out = {
        "1": _mean_delta(table, "random", "BnB", mid),
        "2": _mean_delta(table, "random", "BnB+", ns),
        "3": _mean_delta(table, "random", "AnB", top) - _mean_delta(table, "random", "AnB", low),
        "4": _mean_delta(table, "random", "AnB+", ns),
    }
    if "dissimilar" in set(table.split):
        out["5"] = (_mean_delta(table, "random", "AnB", top)
                    - _mean_delta(table, "dissimilar", "AnB", top)).dropna()
        dis = table[table.split == "dissimilar"]
        anb = dis[dis.condition == "AnB"].set_index(["seed", "n"]).acc
        rnd = dis[dis.condition == "random"].set_index(["seed", "n"]).acc
        both = anb.index.intersection(rnd.index)
        out["6"] = 100.0 * (anb[both] - rnd[both]).groupby(level="seed").median()
    return {k: v.dropna() for k, v in out.items()}


def claim_verdicts(table: pd.DataFrame, *, sesoi: Mapping[str, Mapping[str, Any]]) -> list:
    """The six claims of the reference file, each judged by a rule fixed here in advance.

    Args:
        table: :func:`per_seed_table` output.
        sesoi: the protocol's SESOI rule per claim number (``"1"`` .. ``"6"``), each a mapping
            for :func:`survey_lib.experiments.verdicts.sesoi_from_spec` (points).

    Claims 1, 3, 4, 5, 6 are directional (:func:`~survey_lib.experiments.verdicts.effect`),
    claim 2 an equality (:func:`~survey_lib.experiments.verdicts.equivalent`); every verdict
    carries its split-half stability (seeds split by ``seed_halves``).
    """
    from survey_lib.experiments.verdicts import (
        effect,
        equivalent,
        not_run,
        sesoi_from_spec,
        values_and_halves,
    )

    missing = sorted(set(CLAIMS) - {str(k) for k in sesoi})
    if missing:
        raise ValueError(f"sesoi has no rule for claims {missing}; needs keys {sorted(CLAIMS)}")
    low, mid, top = layer_groups(table.n.unique())
    what = {
        "1": f"the co-adaptation dip (BnB − baseB over n∈{mid})",
        "2": "BnB+ − baseB (mean over all n)",
        "3": f"the fall of AnB ((AnB − baseB) at n∈{top} minus at n∈{low})",
        "4": "the boost AnB+ − baseB (mean over all n)",
        "5": f"the extra drop of AnB on the dissimilar split at n∈{top}",
        "6": "AnB (dissimilar) − random frozen filters (median over n)",
    }
    predicted = {"1": "-", "3": "-", "4": "+", "5": "+", "6": "+"}
    values = claim_values(table)
    out = []
    for key, claim in CLAIMS.items():
        if key not in values or values[key].empty:
            out.append(not_run(claim, "no dissimilar split"))
            continue
        vals, halves = values_and_halves(values[key])
        size, rule = sesoi_from_spec(sesoi[key])
        common = {"sesoi": size, "sesoi_rule": rule, "what": what[key], "halves": halves}
        if key == "2":
            out.append(equivalent(claim, vals, **common))
        else:
            out.append(effect(claim, vals, predicted=predicted[key], **common))
    return out


def n_test_images(params: Mapping[str, Any], split: str, seed: int) -> int:
    """Test images of half B for ``split`` and ``seed`` under the protocol ``params`` (the
    ``test_per_class`` cap, or every test image when it is ``None``)."""
    import torch

    from survey_lib.data import dataset_info

    info = dataset_info(params["dataset"])
    classes = halves(params["dataset"], split, seed, info.num_classes)["B"]
    test = load_split(params["dataset"], "test", classes=classes, size=None,
                      options=dict(params.get("options", {})))
    counts = torch.bincount(test.labels, minlength=test.num_classes)
    cap = params.get("test_per_class")
    return int(counts.clamp(max=int(cap)).sum()) if cap else int(counts.sum())


def noise_budgets(table: pd.DataFrame, n_test: Mapping[str, int]) -> list:
    """The noise budget (:mod:`survey_lib.experiments.noise`) of each claim's per-seed
    quantity, with ``n_test[split]`` test images per network (claim 6 as the mean over n)."""
    from survey_lib.experiments.noise import mean_difference_terms, noise_budget

    ns = sorted(int(n) for n in table.n.unique())
    low, mid, top = layer_groups(ns)
    acc = table.groupby(["split", "condition", "n"]).acc.mean()
    base = table.groupby("split").baseB.mean()

    def accs(split: str, condition: str, depths) -> list[float]:
        return [float(acc.loc[(split, condition, n)]) for n in depths
                if (split, condition, n) in acc.index]

    m = {s: int(v) for s, v in n_test.items()}
    terms = {
        "1": mean_difference_terms(accs("random", "BnB", mid), [base["random"]], m["random"]),
        "2": mean_difference_terms(accs("random", "BnB+", ns), [base["random"]], m["random"]),
        "3": mean_difference_terms(accs("random", "AnB", top), accs("random", "AnB", low),
                                   m["random"]),
        "4": mean_difference_terms(accs("random", "AnB+", ns), [base["random"]], m["random"]),
    }
    if "dissimilar" in set(table.split) and "dissimilar" in m:
        terms["5"] = (mean_difference_terms(accs("random", "AnB", top), [base["random"]],
                                            m["random"])
                      + [(-w, p, k) for w, p, k in mean_difference_terms(
                          accs("dissimilar", "AnB", top), [base["dissimilar"]],
                          m["dissimilar"])])
        terms["6"] = mean_difference_terms(accs("dissimilar", "AnB", ns),
                                           accs("dissimilar", "random", ns), m["dissimilar"])
    values = claim_values(table)
    return [noise_budget(CLAIMS[k][:2] + " " + CLAIMS[k][3:40], values[k].tolist(), t)
            for k, t in terms.items() if k in values and len(values[k])]
