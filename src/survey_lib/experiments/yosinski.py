"""Grid cells of the layer-transfer reproduction (Yosinski et al. 2014).

Yosinski, Clune, Bengio, Lipson, "How transferable are features in deep neural networks?",
NeurIPS 2014, https://arxiv.org/abs/1411.1792.

A dataset's classes are split into halves A and B. ``baseA``/``baseB`` are trained from scratch
on each half. A transfer network ``XnB`` copies units ``1..n`` of ``baseX`` into a fresh
network for B, re-initialises the rest, and either freezes the copied units (``AnB``, ``BnB``)
or fine-tunes them (``AnB+``, ``BnB+``). The control freezes ``n`` *randomly initialised* units.

Both directions (opt-in, the grid cell's ``target: "A"``): the paper ran its dissimilar split
both ways and reported the mean change of the transfer nets against each half's own base. A
cell with ``target: "A"`` trains on half A; the tables then name conditions relative to the
target (``AnB`` = copied from the *other* half, ``BnB`` = from the target's own half, ``baseB``
= the target half's base) and add a ``direction`` column (``A→B``, ``B→A``). Per-seed claim
quantities average over the directions present.

Paper options of a cell (absent from the offline grids, so their run ids are unchanged):
``frozen_dropout: true`` builds the transfer net as
:class:`~survey_lib.models.alexnet_small.AlexNetSmall` ``(frozen_dropout=True)`` (fc6/fc7
dropout active in frozen units, as in the paper's Caffe nets; the frozen-unit cache is then
off); ``epoch_metrics: [...]`` evaluates the test split after every epoch and records the
metrics of :mod:`survey_lib.experiments.epoch_metrics` beside ``test_acc``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from survey_lib.data import ImageDataset
from survey_lib.data.protocols import named_split, split_classes
from survey_lib.experiments import epoch_metrics
from survey_lib.experiments.common import (
    cached_model,
    checkpoint_info,
    fit_or_fail,
    load_split,
    new_model,
    params_key,
    test_accuracy,
    train_config,
)
from survey_lib.io import atomic_write_json
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


FROZEN_DROPOUT_MODELS = ("alexnet_small",)
"""Models whose ``frozen_dropout=True`` keeps dropout on in frozen units."""

HALVES = ("A", "B")
DIRECTIONS = {"B": "A→B", "A": "B→A"}
"""The direction of a transfer run by its target half (``A→B``: trained on half B)."""


def target_half(params: Mapping[str, Any]) -> str:
    """The half a transfer run trains on: ``params['target']``, default ``"B"``."""
    half = params.get("target", "B")
    if half not in HALVES:
        raise ValueError(f"unknown target half {half!r}; valid: 'A', 'B'")
    return half


def _base_key(params: Mapping[str, Any], half: str, seed: int) -> dict[str, Any]:
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
    if epoch_metrics.recorded(params):  # its own checkpoint, trained with the per-epoch tests
        key["epoch_metrics"] = sorted(epoch_metrics.recorded(params))
    return key


def _sidecar(params: Mapping[str, Any], half: str, seed: int) -> Path:
    """Where a base network's per-epoch test metrics live, beside its checkpoint."""
    name = f"{params_key(_base_key(params, half, seed))}.epochs.json"
    return Path(params["checkpoint_dir"]) / name


def _trained_base(
    params: Mapping[str, Any],
    half: str,
    seed: int,
    train: ImageDataset,
    config: TrainConfig,
    test: ImageDataset | None = None,
) -> TransferModel:
    """``base<half>`` from its checkpoint, or trained on ``train`` (that half's data). With
    ``epoch_metrics`` in ``params`` the training also evaluates ``test`` after every epoch and
    writes the metrics beside the checkpoint (:func:`base_epoch_metrics`)."""
    names = epoch_metrics.recorded(params)

    def fit_base(m: TransferModel) -> None:
        if not names:
            fit_or_fail(m, train, None, config)
            return
        if test is None:
            raise ValueError("a base network with epoch_metrics needs its half's test split")
        result = fit_or_fail(m, train, None, config, eval_sets={"test": test})
        atomic_write_json(_sidecar(params, half, seed), {
            "metrics": epoch_metrics.from_history(result.history, names),
            "test_acc_by_epoch": [float(a) for a in result.history[epoch_metrics.HISTORY_COLUMN]],
        })

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
        fit_base,
    )


def base_epoch_metrics(params: Mapping[str, Any], half: str, seed: int) -> dict[str, float]:
    """The epoch metrics (``params['epoch_metrics']``) of ``base<half>``, written when it was
    trained; ``{}`` when none are asked for.

    Raises:
        FileNotFoundError: the checkpoint exists without them (delete it to retrain)."""
    names = epoch_metrics.recorded(params)
    if not names:
        return {}
    path = _sidecar(params, half, seed)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: base{half} (seed {seed}) was cached without its per-epoch "
            "test metrics; delete its checkpoint beside it to retrain it"
        )
    stored = json.loads(path.read_text(encoding="utf-8"))["metrics"]
    return {name: float(stored[name]) for name in names}


def base_model(params: Mapping[str, Any], half: str, seed: int) -> tuple[TransferModel, float]:
    """``base<half>`` for this split and seed (loaded from its checkpoint or trained) and its
    test accuracy on that half."""
    train, test = _data(params, half, seed)
    config = train_config(params["train"], seed, dataset_stats(train))
    model = _trained_base(params, half, seed, train, config, test)
    return model, test_accuracy(model, test, config)


def transfer_target(
    params: Mapping[str, Any], seed: int, train: ImageDataset, source_train: ImageDataset,
    source_test: ImageDataset,
) -> tuple[TransferModel, TransferModel | None, TrainConfig]:
    """The network a transfer or random-filter run trains (copied and re-initialised units,
    frozen or not), the base it copied (``None`` for the control) and its config (normalised
    with the source half's statistics: the copied units expect them)."""
    kind = params["kind"]
    source_config = train_config(params["train"], seed, dataset_stats(source_train))
    n = int(params["n"])
    kwargs = dict(params.get("model_kwargs", {}))
    if params.get("frozen_dropout"):
        kwargs["frozen_dropout"] = True
    target = new_model(params["model"], train.num_classes, params["channels"], seed + 10_000,
                       **kwargs)
    source = None
    if kind == "transfer":
        source = _trained_base(params, params["source"], seed, source_train, source_config,
                               source_test)
        transfer_units(source, target, n, freeze=bool(params["freeze"]), seed=seed + 10_000)
        frozen = n if params["freeze"] else 0
    elif kind == "random_frozen":
        freeze_units(target, n)
        frozen = n
    else:
        raise ValueError(f"unknown kind {kind!r}; valid: base, transfer, random_frozen")
    extra: dict[str, Any] = {"frozen_units": frozen}
    if params.get("frozen_dropout") and frozen:
        extra["cache_frozen"] = False  # a cache of frozen outputs would fix one dropout mask
    config = train_config({**params["train"], **extra}, seed,
                          (source_config.mean, source_config.std))
    return target, source, config


def prepare_transfer(
    params: Mapping[str, Any], seed: int
) -> tuple[TransferModel, TransferModel | None, ImageDataset, ImageDataset, TrainConfig]:
    """Everything one transfer or random-filter run trains with, before it trains.

    Loads the target half's train and test splits (``params['target']``, default B) once, and
    the source half's only when it differs, then builds the target network from the source's
    cached base network (:func:`transfer_target`). Used by :func:`run_cell` and by the batched
    cells (:mod:`survey_lib.experiments.yosinski_batched`), so both prepare a run identically.

    Returns:
        ``(target model, source model, train split, test split, train config)``.
    """
    half = target_half(params)
    train, test = _data(params, half, seed)
    source_half = params.get("source", half)
    source_train, source_test = (
        (train, test) if source_half == half else _data(params, source_half, seed)
    )
    target, source, config = transfer_target(params, seed, train, source_train, source_test)
    return target, source, train, test, config


def run_cell(params: Mapping[str, Any], seed: int) -> RunOutput:
    """One run of the grid. ``params['kind']`` is ``base``, ``transfer`` or ``random_frozen``.

    Returns ``{"test_acc": ...}`` measured on the held-out test split of the target half
    (``params['target']``, default B), plus the ``params['epoch_metrics']`` asked for.
    A transfer run loads each half's data once and does not evaluate the base network.
    In ``info``: the SHA-256 of the base network's checkpoint the run used.
    """
    kind = params["kind"]
    names = epoch_metrics.recorded(params)
    if kind == "base":
        base, acc = base_model(params, params["half"], seed)
        return RunOutput({"test_acc": acc, **base_epoch_metrics(params, params["half"], seed)},
                         info=checkpoint_info(base))

    target, source, train, test, config = prepare_transfer(params, seed)
    if names:
        result = fit_or_fail(target, train, None, config, eval_sets={"test": test})
        extra = epoch_metrics.from_history(result.history, names)
    else:
        fit_or_fail(target, train, None, config)
        extra = {}
    return RunOutput(
        {"test_acc": test_accuracy(target, test, config), **extra}, info=checkpoint_info(source)
    )


CONDITIONS = ("AnB", "BnB", "AnB+", "BnB+", "random")


def _half_of(row: Mapping[str, Any]) -> str:
    """The half a run was measured on: a base run's ``half``, else its target (default B)."""
    if row["kind"] == "base":
        return str(row["half"])
    target = row.get("target")
    return "B" if not isinstance(target, str) else target


def condition_of(row: Mapping[str, Any]) -> str:
    """The paper's name for a run: ``baseA``/``baseB``, ``AnB``, ``BnB+``, ..., ``random``.

    A run on target half A (direction ``B→A``) is named relative to its target, as if the
    halves were swapped: copied from half B (the paper's ``BnA``) it is ``AnB``, from its own
    half ``BnB``."""
    if row["kind"] == "base":
        return f"base{row['half']}"
    if row["kind"] == "random_frozen":
        return "random"
    own = row["source"] == _half_of(row)
    return ("BnB" if own else "AnB") + ("" if row["freeze"] else "+")


def per_seed_table(runs: pd.DataFrame) -> pd.DataFrame:
    """From the tidy runs (one row per run with columns kind, split, half, source, n, freeze,
    seed, test_acc, and ``target`` when some run trained on half A) to one row per split ×
    condition × n × seed with ``acc`` and ``delta`` = acc − baseB of the same split and seed
    (paired by seed).

    With a ``target`` column the table gains a ``direction`` column (``A→B``, ``B→A``; see
    :func:`condition_of`) and ``baseB`` is the base of the run's target half."""
    import pandas as pd

    df = runs.copy()
    df["condition"] = [condition_of(r) for r in df.to_dict("records")]
    cols = ["split", "condition", "n", "seed", "acc", "baseB", "delta"]
    if "target" not in df.columns:
        base_b = df[df["condition"] == "baseB"].set_index(["split", "seed"])["test_acc"]
        out = df[df["condition"].isin(CONDITIONS)].copy()
        out["n"] = out["n"].astype(int)
        out["acc"] = out["test_acc"].astype(float)
        out["baseB"] = [float(base_b.loc[(s, sd)]) for s, sd in zip(out["split"], out["seed"])]
        out["delta"] = out["acc"] - out["baseB"]
        return pd.DataFrame(out[cols]).sort_values(cols[:4]).reset_index(drop=True)
    df["measured_on"] = [_half_of(r) for r in df.to_dict("records")]
    bases = df[df["kind"] == "base"].set_index(["split", "measured_on", "seed"])["test_acc"]
    out = df[df["condition"].isin(CONDITIONS)].copy()
    out["direction"] = [DIRECTIONS[h] for h in out["measured_on"]]
    out["n"] = out["n"].astype(int)
    out["acc"] = out["test_acc"].astype(float)
    out["baseB"] = [float(bases.loc[(s, h, sd)])
                    for s, h, sd in zip(out["split"], out["measured_on"], out["seed"])]
    out["delta"] = out["acc"] - out["baseB"]
    cols = ["split", "direction", *cols[1:]]
    return pd.DataFrame(out[cols]).sort_values(cols[:5]).reset_index(drop=True)


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

    With both directions run (a ``direction`` column), each per-seed mean pools the rows of
    both, which is the mean of the two directions (the paper's dissimilar numbers are that
    mean); claim 6 takes the mean of the directions at each depth before the median.
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
        keys = ["seed", "n"] + (["direction"] if "direction" in dis.columns else [])
        anb = dis[dis.condition == "AnB"].set_index(keys).acc
        rnd = dis[dis.condition == "random"].set_index(keys).acc
        both = anb.index.intersection(rnd.index)
        diff = anb[both] - rnd[both]
        if "direction" in dis.columns:  # the mean of the directions at each depth
            diff = diff.groupby(level=["seed", "n"]).mean()
        out["6"] = 100.0 * diff.groupby(level="seed").median()
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


def n_test_images(params: Mapping[str, Any], split: str, seed: int, half: str = "B") -> int:
    """Test images of ``half`` (default B) for ``split`` and ``seed`` under the protocol
    ``params`` (the ``test_per_class`` cap, or every test image when it is ``None``)."""
    import torch

    from survey_lib.data import dataset_info

    info = dataset_info(params["dataset"])
    classes = halves(params["dataset"], split, seed, info.num_classes)[half]
    test = load_split(params["dataset"], "test", classes=classes, size=None,
                      options=dict(params.get("options", {})))
    counts = torch.bincount(test.labels, minlength=test.num_classes)
    cap = params.get("test_per_class")
    return int(counts.clamp(max=int(cap)).sum()) if cap else int(counts.sum())


def _terms_by_direction(table: pd.DataFrame, n_test: Mapping[str, Any], ns, groups) -> dict:
    """Claim terms of :func:`noise_budgets` for a table with a ``direction`` column: each
    direction's terms (its own accuracies, base and test size ``n_test[split][direction]``, or
    ``n_test[split]`` for all) weighted by 1 / (number of directions of the split)."""
    from survey_lib.experiments.noise import mean_difference_terms

    low, mid, top = groups

    def per_direction(split: str, build) -> list:
        sub = table[table.split == split]
        directions = sorted(sub.direction.unique())
        out = []
        for d in directions:
            rows = sub[sub.direction == d]
            acc = rows.groupby(["condition", "n"]).acc.mean()
            size = n_test[split][d] if isinstance(n_test[split], Mapping) else n_test[split]

            def accs(condition: str, depths, acc=acc) -> list[float]:
                return [float(acc.loc[(condition, n)]) for n in depths
                        if (condition, n) in acc.index]

            terms = build(accs, [float(rows.baseB.mean())], int(size))
            out += [(w / len(directions), q, k) for w, q, k in terms]
        return out

    mdt = mean_difference_terms
    terms = {
        "1": per_direction("random", lambda a, b, m: mdt(a("BnB", mid), b, m)),
        "2": per_direction("random", lambda a, b, m: mdt(a("BnB+", ns), b, m)),
        "3": per_direction("random", lambda a, b, m: mdt(a("AnB", top), a("AnB", low), m)),
        "4": per_direction("random", lambda a, b, m: mdt(a("AnB+", ns), b, m)),
    }
    if "dissimilar" in set(table.split) and "dissimilar" in n_test:
        terms["5"] = (per_direction("random", lambda a, b, m: mdt(a("AnB", top), b, m))
                      + [(-w, q, k) for w, q, k in per_direction(
                          "dissimilar", lambda a, b, m: mdt(a("AnB", top), b, m))])
        terms["6"] = per_direction("dissimilar",
                                   lambda a, b, m: mdt(a("AnB", ns), a("random", ns), m))
    return terms


def noise_budgets(table: pd.DataFrame, n_test: Mapping[str, Any]) -> list:
    """The noise budget (:mod:`survey_lib.experiments.noise`) of each claim's per-seed
    quantity, with ``n_test[split]`` test images per network (claim 6 as the mean over n).

    For a table with both directions, ``n_test[split]`` may map each direction to the test
    size of its target half; each direction contributes half of every term."""
    from survey_lib.experiments.noise import mean_difference_terms, noise_budget

    ns = sorted(int(n) for n in table.n.unique())
    low, mid, top = layer_groups(ns)
    if "direction" in table.columns:
        values = claim_values(table)
        terms = _terms_by_direction(table, n_test, ns, (low, mid, top))
        return [noise_budget(CLAIMS[k][:2] + " " + CLAIMS[k][3:40], values[k].tolist(), t)
                for k, t in terms.items() if k in values and len(values[k]) and t]
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
