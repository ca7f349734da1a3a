"""Measure the offline similarity ladder: train a Latin-glyph source, score every target.

Usage: ``python scripts/measure_ladder.py [--params scripts/measure_ladder.yaml]
[--out results/similarity_ladder]``. Writes ``ladder.csv`` (one row per seed × rung × measure,
tidy long form) and ``ladder.provenance.json`` atomically. The protocol lives in the params file,
fixed before the outcomes were seen.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from survey_lib.data import get_dataset
from survey_lib.io import atomic_write_json, atomic_write_text
from survey_lib.models import create_model
from survey_lib.models.features import dataset_stats, extract_features
from survey_lib.provenance import environment
from survey_lib.similarity import LADDER, SOURCE, load_rung, measure_similarity
from survey_lib.train import TrainConfig, evaluate, fit, seed_everything

ROOT = Path(__file__).resolve().parents[1]


def train_source(params: dict, seed: int) -> tuple[torch.nn.Module, dict, tuple, tuple]:
    """Train the source model on Latin glyphs (training typefaces) and report its accuracy."""
    train = get_dataset(SOURCE.dataset, SOURCE.split, **dict(SOURCE.options))
    test = get_dataset(LADDER[0].dataset, LADDER[0].split, **dict(LADDER[0].options))
    mean, std = dataset_stats(train)
    config = TrainConfig(
        epochs=params["epochs"], lr=params["lr"], batch_size=params["batch_size"],
        weight_decay=params["weight_decay"], augment=params["augment"], mean=mean, std=std,
        seed=seed, device="cpu",
    )  # fmt: skip
    seed_everything(seed)
    model = create_model(params["model"], num_classes=train.num_classes, in_chans=1)
    result = fit(model, train, None, config, progress=False)
    if result.status != "ok":
        raise RuntimeError(f"source training failed: {result.failure}")
    accuracy = evaluate(model, test, mean=mean, std=std)["accuracy"]
    info = {"source_test_accuracy": accuracy, "train_seconds": result.train_seconds}
    return model, info, mean, std


def measure(params: dict) -> tuple[pd.DataFrame, dict]:
    rows, runs = [], {}
    for seed in params["seeds"]:
        model, info, mean, std = train_source(params, seed)
        runs[str(seed)] = info
        source = load_rung(SOURCE, max_n=params["max_n"], seed=seed)
        source_feats, _ = extract_features(model, source, mean=mean, std=std)
        rows.append({"seed": seed, "rung": SOURCE.name, "rank": 0, "measure": "accuracy_unseen_fonts",
                     "value": info["source_test_accuracy"]})  # fmt: skip
        for rung in LADDER:
            target = load_rung(rung, max_n=params["max_n"], seed=seed)
            scores = measure_similarity(model, source_feats, target, mean=mean, std=std, seed=seed)
            for measure_name, value in scores.items():
                rows.append({"seed": seed, "rung": rung.name, "rank": rung.rank,
                             "measure": measure_name, "value": value, "n": len(target),
                             "checksum": target.checksum})  # fmt: skip
            print(
                f"seed {seed} {rung.name:20s} "
                + " ".join(f"{k}={v:.3f}" for k, v in scores.items())
            )
    return pd.DataFrame(rows), runs


def order_check(df: pd.DataFrame, measure_name: str) -> dict:
    """Whether the mean ``measure_name`` increases with the intended rank (ties free)."""
    means = df[df.measure == measure_name].groupby(["rung", "rank"])["value"].mean().reset_index()
    pairs = [(a, b) for a in means.itertuples() for b in means.itertuples() if a.rank < b.rank]
    violations = [f"{a.rung} >= {b.rung}" for a, b in pairs if not a.value < b.value]
    rho = means[["rank", "value"]].corr(method="spearman").iloc[0, 1]
    return {"measure": measure_name, "spearman_rank_vs_value": float(rho),
            "order_matches": not violations, "violations": violations}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "scripts" / "measure_ladder.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "similarity_ladder")
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())
    torch.set_num_threads(1)
    start = time.time()
    df, runs = measure(params)
    buffer = io.StringIO()
    df.to_csv(buffer, index=False)
    atomic_write_text(args.out / "ladder.csv", buffer.getvalue())
    checks = {m: order_check(df, m) for m in ("frechet_distance", "proxy_a_distance")}
    provenance = {"params": params, "runs": runs, "order_checks": checks,
                  "wall_seconds": time.time() - start, **environment()}  # fmt: skip
    atomic_write_json(args.out / "ladder.provenance.json", provenance)
    print(checks)


if __name__ == "__main__":
    main()
