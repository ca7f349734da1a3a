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


def base_model(params: Mapping[str, Any], half: str, seed: int) -> tuple[TransferModel, float]:
    """``base<half>`` for this split and seed: loaded from its checkpoint or trained."""
    train, test = _data(params, half, seed)
    config = train_config(params["train"], seed, dataset_stats(train))
    key = {
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
    model = cached_model(
        params["checkpoint_dir"],
        key,
        lambda: new_model(
            params["model"],
            train.num_classes,
            params["channels"],
            seed,
            **params.get("model_kwargs", {}),
        ),
        lambda m: fit_or_fail(m, train, None, config),
    )
    return model, test_accuracy(model, test, config)


def run_cell(params: Mapping[str, Any], seed: int) -> RunOutput:
    """One run of the grid. ``params['kind']`` is ``base``, ``transfer`` or ``random_frozen``.

    Returns ``{"test_acc": ...}`` measured on the held-out test split of the target half, and
    in ``info`` the SHA-256 of the base network's checkpoint the run used.
    """
    kind = params["kind"]
    if kind == "base":
        base, acc = base_model(params, params["half"], seed)
        return RunOutput({"test_acc": acc}, info=checkpoint_info(base))

    train, test = _data(params, "B", seed)
    # Normalise the target with the source half's statistics: the copied units expect them.
    source_train, _ = _data(params, params.get("source", "B"), seed)
    config = train_config(params["train"], seed, dataset_stats(source_train))
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
        source, _ = base_model(params, params["source"], seed)
        transfer_units(source, target, n, freeze=bool(params["freeze"]), seed=seed + 10_000)
        frozen = n if params["freeze"] else 0
    elif kind == "random_frozen":
        freeze_units(target, n)
        frozen = n
    else:
        raise ValueError(f"unknown kind {kind!r}; valid: base, transfer, random_frozen")
    config = train_config(
        {**params["train"], "frozen_units": frozen}, seed, (config.mean, config.std)
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


def _mean_delta(table, split: str, condition: str, ns) -> pd.Series:
    sel = table[(table.split == split) & (table.condition == condition) & (table.n.isin(list(ns)))]
    return sel.groupby("seed")["delta"].mean()


def claim_verdicts(table: pd.DataFrame, *, tolerance: float = 0.01) -> list:
    """The six claims of the reference file, each judged by a rule fixed here in advance.

    ``tolerance`` is the band (in accuracy, 0.01 = one point) inside which two accuracies count
    as equal for the "≈" claims.
    """
    from survey_lib.experiments.verdicts import greater_than, less_than, within

    ns = [int(n) for n in sorted(table.n.unique())]
    low, mid, top = (
        ns[: max(1, len(ns) // 3)],
        ns[len(ns) // 3 : 2 * len(ns) // 3 or None],
        ns[-max(1, len(ns) // 3) :],
    )
    out = []
    out.append(
        less_than(
            "1. BnB dips below baseB in the middle layers (fragile co-adaptation)",
            _mean_delta(table, "random", "BnB", mid),
            0.0,
            what=f"mean BnB − baseB over n∈{mid}",
        )
    )
    out.append(
        within(
            "2. BnB+ ≈ baseB: fine-tuning removes the dip",
            _mean_delta(table, "random", "BnB+", ns),
            tolerance,
            what="mean BnB+ − baseB over all n",
        )
    )
    slopes = []
    for _, g in table[(table.split == "random") & (table.condition == "AnB")].groupby("seed"):
        top_mean = g[g.n.isin(top)].delta.mean()
        low_mean = g[g.n.isin(low)].delta.mean()
        slopes.append(top_mean - low_mean)
    out.append(
        less_than(
            "3. AnB falls as more layers are frozen",
            slopes,
            0.0,
            what=f"(AnB − baseB at n∈{top}) − (at n∈{low})",
        )
    )
    out.append(
        greater_than(
            "4. AnB+ ≥ baseB: transferred features give a lasting boost",
            _mean_delta(table, "random", "AnB+", ns),
            0.0,
            what="mean AnB+ − baseB over all n",
        )
    )
    if "dissimilar" not in set(table.split):
        from survey_lib.experiments.verdicts import not_run

        for claim in (
            "5. AnB drops more for a dissimilar split than for a random one",
            "6. Transferred features, even from a dissimilar half, beat random frozen filters",
        ):
            out.append(not_run(claim, "no dissimilar split"))
        return out
    drop_random = _mean_delta(table, "random", "AnB", top)
    drop_dissim = _mean_delta(table, "dissimilar", "AnB", top)
    common = drop_random.index.intersection(drop_dissim.index)
    out.append(
        greater_than(
            "5. AnB drops more for a dissimilar split than for a random one",
            (drop_random[common] - drop_dissim[common]).tolist(),
            0.0,
            what=f"(AnB − baseB)_random − (AnB − baseB)_dissimilar at n∈{top}",
        )
    )
    anb = (
        table[(table.split == "dissimilar") & (table.condition == "AnB")]
        .set_index(["seed", "n"])
        .acc
    )
    rnd = (
        table[(table.split == "dissimilar") & (table.condition == "random")]
        .set_index(["seed", "n"])
        .acc
    )
    both = anb.index.intersection(rnd.index)
    gap = (anb[both] - rnd[both]).groupby(level="seed").mean()
    out.append(
        greater_than(
            "6. Transferred features, even from a dissimilar half, beat random frozen filters",
            gap.tolist(),
            0.0,
            what="mean over n of AnB(dissimilar) − random frozen",
        )
    )
    return out
