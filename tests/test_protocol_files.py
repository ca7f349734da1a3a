"""Protocol resolution (survey_lib.protocol_files), the ``published`` scale and the protocol table
(survey_lib.protocol_table), tested against the committed files."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from survey_lib import reproduce
from survey_lib.experiments.validate import parameter_problems
from survey_lib.protocol_files import resolve_file, unread_keys
from survey_lib.protocol_table import (
    COMPARABILITY,
    explain,
    load_facts,
    lookup,
    number_marks,
    rows,
)

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks"
PAPER_SCALES = ("smoke", "cpu", "gpu", "published")


@pytest.mark.parametrize(
    ("name", "scale"),
    [
        (n, s)
        for n in reproduce.NOTEBOOKS
        for s in PAPER_SCALES
        if s != "published" or n in reproduce.PUBLISHED_NOTEBOOKS
    ],
)
def test_paper_protocols_resolve_completely_with_every_key_read(name: str, scale: str) -> None:
    protocol = reproduce.load_protocol(name, scale, "paper", NB)
    assert protocol.files[-1] == f"paper-{scale}.yaml"
    assert not any(f in ("smoke.yaml", "cpu.yaml", "gpu.yaml") for f in protocol.files)
    assert "extends" not in protocol.params and "changes" not in protocol.params
    assert unread_keys(name, protocol.params) == []
    assert parameter_problems(name, protocol.params) == []


@pytest.mark.parametrize("name", reproduce.PUBLISHED_NOTEBOOKS)
def test_paper_gpu_is_published_with_stated_reductions(name: str) -> None:
    published = reproduce.load_params(name, "published", "paper", NB)
    gpu = reproduce.load_protocol(name, "gpu", "paper", NB)
    assert gpu.files == ["paper-published.yaml", "paper-gpu.yaml"]
    assert gpu.changes and all(c["effect"] for c in gpu.changes)
    undone = copy.deepcopy(gpu.params)
    for c in gpu.changes:  # undoing every stated change gives the published protocol back
        undone = reproduce.apply_overrides(undone, {c["key"]: c["base"]})
        assert lookup(gpu.params, c["key"]) == c["value"] != c["base"]
    assert undone == published


def _write(folder: Path, stem: str, data: dict) -> None:
    (folder / f"{stem}.yaml").write_text(yaml.safe_dump(data))


def _resolve(folder: Path, stem: str):
    return resolve_file(folder, stem, load=lambda p: reproduce.load_yaml(p.read_text()),
                        apply=reproduce.apply_overrides)


def test_derived_files_merge_deeply_and_need_effects(tmp_path: Path) -> None:
    _write(tmp_path, "base", {"train": {"epochs": 10, "lr": 0.1}, "seeds": [0, 1, 2]})
    _write(tmp_path, "small", {"extends": "base", "changes": {
        "train.epochs": {"value": 2, "effect": "shorter"}}})
    out = _resolve(tmp_path, "small")
    assert out.params == {"train": {"epochs": 2, "lr": 0.1}, "seeds": [0, 1, 2]}
    assert out.changes == [{"file": "small.yaml", "key": "train.epochs", "base": 10, "value": 2,
                            "effect": "shorter"}]
    _write(tmp_path, "bad", {"extends": "base", "changes": {"train.epochs": {"value": 2}}})
    with pytest.raises(ValueError, match="effect"):
        _resolve(tmp_path, "bad")
    _write(tmp_path, "mixed", {"extends": "base", "seeds": [0]})
    with pytest.raises(ValueError, match="only 'extends' and 'changes'"):
        _resolve(tmp_path, "mixed")
    _write(tmp_path, "loop", {"extends": "loop", "changes": {}})
    with pytest.raises(ValueError, match="deeper"):
        _resolve(tmp_path, "loop")


def test_unread_keys_named_but_regularizer_hyperparameters_left_to_their_check() -> None:
    params = reproduce.load_params("l2sp_vs_bss", "smoke", "offline", NB)
    params = reproduce.apply_overrides(params, {
        "source.train_recipe": 1, "targets.far.pool_size": 3, "methods.L2.alpha": 0.1})
    assert unread_keys("l2sp_vs_bss", params) == ["source.train_recipe", "targets.far.pool_size"]
    kornblith = reproduce.load_params("kornblith_gains_vs_size", "smoke", "offline", NB)
    kornblith["targets"][1]["pool"] = "x"
    assert unread_keys("kornblith_gains_vs_size", kornblith) == ["targets[1].pool"]


def test_driver_rejects_unread_keys_before_running(tmp_path: Path) -> None:
    out = reproduce.run_notebook("yosinski_layer_transfer", "smoke", "offline",
                                 {"many_class.image_size": 3}, notebooks_dir=NB,
                                 results_root=tmp_path)
    assert out.status == "failed" and "many_class.image_size" in out.error
    assert "read by no cell" in out.error


def test_published_scale_exists_for_the_paper_profile_only(tmp_path: Path, capsys) -> None:
    assert "published" in reproduce.SCALES and "published" in reproduce.PAPER_ONLY_SCALES
    assert reproduce.protocol_root("published", "paper", tmp_path) == tmp_path / "paper-published"
    with pytest.raises(ValueError, match="only with profile 'paper'"):
        reproduce.protocol_root("published", "offline", tmp_path)
    with pytest.raises(ValueError, match="only with profile 'paper'"):
        reproduce.load_protocol("l2sp_vs_bss", "published", "offline", NB)
    with pytest.raises(SystemExit):
        reproduce.main(["--scale", "published", "--explain"])
    assert "--profile paper" in capsys.readouterr().err


def test_facts_file_marks_every_published_number() -> None:
    facts = load_facts()
    assert set(facts) == set(reproduce.PUBLISHED_NOTEBOOKS)
    published = {p.name for p in (ROOT / "results" / "published").glob("*.csv")}
    for name, entry in facts.items():
        assert entry["numbers"] and entry["aspects"]
        params = reproduce.load_params(name, "published", "paper", NB)
        for file, marked in number_marks(name, params, facts):  # derived, never typed
            assert file in published and "comparability" not in next(
                n for n in entry["numbers"] if n["file"] == file)
            assert len(marked) == len(pd.read_csv(ROOT / "results" / "published" / file))
            assert set(marked["comparability"]) <= set(COMPARABILITY)


@pytest.mark.parametrize("name", reproduce.PUBLISHED_NOTEBOOKS)
def test_protocol_table_is_generated_from_protocol_and_facts(name: str) -> None:
    facts = load_facts()
    params = reproduce.load_params(name, "published", "paper", NB)
    table = rows(name, params, facts)
    assert [r["aspect"] for r in table] == [a["aspect"] for a in facts[name]["aspects"]]
    for row, aspect in zip(table, facts[name]["aspects"]):
        assert aspect["source"] in row["published"]
        if "key" in aspect:  # ours is read from the protocol, the deviation follows from it
            value = lookup(params, aspect["key"])
            same = value == aspect.get("published_value", aspect["published"])
            assert row["deviation"] == ("none" if same else f"yes: {aspect['effect']}")
        else:
            assert row["ours"] == aspect["ours"] and row["deviation"].startswith("yes")
    text = explain(name, params, facts=facts)
    assert text.count("\n| ") == len(table) + 1  # header + one line per aspect


def test_protocol_table_follows_the_protocol() -> None:
    facts = load_facts()
    params = reproduce.load_params("kornblith_gains_vs_size", "published", "paper", NB)
    [row] = [r for r in rows("kornblith_gains_vs_size", params, facts)
             if r["aspect"] == "Aircraft training split"]
    assert row["deviation"] == "none"
    params["targets"][4]["train_split"] = "train"
    [row] = [r for r in rows("kornblith_gains_vs_size", params, facts)
             if r["aspect"] == "Aircraft training split"]
    assert row["deviation"].startswith("yes: train only (33 per class)")


def test_explain_cli_prints_one_table_per_notebook(capsys) -> None:
    rc = reproduce.main(["--profile", "paper", "--scale", "published", "--explain"])
    out = capsys.readouterr().out
    assert rc == 0
    for name in reproduce.PUBLISHED_NOTEBOOKS:
        assert f"## {name} (profile paper, scale published)" in out
    assert "| aspect | published (source) | ours | deviation and expected effect |" in out


def test_kornblith_marks_follow_each_targets_metric() -> None:
    """The simclr2020 rows published as mean per-class accuracy are set beside ours because the
    paper preset compares those targets in test_acc_mean_per_class; switch one target back to
    top-1 and only its rows become not comparable, for that reason."""
    facts = load_facts()
    params = reproduce.load_params("kornblith_gains_vs_size", "published", "paper", NB)
    assert unread_keys("kornblith_gains_vs_size", params) == []
    [(_, marked)] = number_marks("kornblith_gains_vs_size", params, facts)
    ours = marked[marked["dataset"].isin(["Caltech-101", "Oxford-IIIT Pets", "Oxford 102 Flowers",
                                          "FGVC Aircraft", "Describable Textures"])]
    assert len(ours) == 15 and (ours["comparability"] != "not comparable").all()
    assert set(ours.loc[ours["dataset"] != "Describable Textures", "metric"]) == {
        "mean_per_class_acc"}
    [row] = [r for r in rows("kornblith_gains_vs_size", params, facts) if r["aspect"] == "metric"]
    assert row["deviation"] == "none"

    top1 = copy.deepcopy(params)
    top1["targets"][0]["metric"] = "test_acc"  # Caltech-101 compared in top-1
    [(_, marked)] = number_marks("kornblith_gains_vs_size", top1, facts)
    far = marked[marked["comparability"] == "not comparable"]
    assert set(far.loc[far["why"].str.contains("ours top1"), "dataset"]) == {
        "Caltech-101", "PASCAL VOC 2007"}
    assert "published mean_per_class_acc, ours top1" in set(
        far.loc[far["dataset"] == "Caltech-101", "why"])
    [row] = [r for r in rows("kornblith_gains_vs_size", top1, facts) if r["aspect"] == "metric"]
    assert row["deviation"].startswith("yes")

    unset = copy.deepcopy(params)
    for t in unset["targets"]:
        t.pop("metric")  # no per-target metric: top-1 (metric_default), as the offline presets
    assert lookup(unset, "targets.*.metric") == [None] * 5
    [(_, marked)] = number_marks("kornblith_gains_vs_size", unset, facts)
    mpc = marked[marked["metric"] == "mean_per_class_acc"]
    assert (mpc["comparability"] == "not comparable").all()


def test_l2sp_paper_augmentation_is_the_published_one() -> None:
    facts = load_facts()
    params = reproduce.load_params("l2sp_vs_bss", "published", "paper", NB)
    table = {r["aspect"]: r for r in rows("l2sp_vs_bss", params, facts)}
    assert table["augmentation"]["deviation"] == "none"
    assert table["crop input"]["deviation"].startswith("yes: crops never reach the margins")
