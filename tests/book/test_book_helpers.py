"""The helpers the chapters read committed results with (fast: no build, tiny files)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from survey_lib import book

ROOT = Path(__file__).resolve().parents[2]


def _experiment(folder: Path, *, seconds: float, runs: int, cuda: list[str]) -> None:
    (folder / "grid").mkdir(parents=True)
    (folder / "executed.ipynb").write_text("{}")
    (folder / "driver.json").write_text(
        json.dumps({"scale": folder.parent.name, "seconds": seconds, "parameters": {}})
    )
    (folder / "grid" / "provenance.json").write_text(
        json.dumps(
            {
                "code_version": "abc123",
                "device": {"cpu": "Xeon", "cpu_count": 2, "cuda": cuda},
                "experiment": "grid",
                "git": {"commit": "0123456789abcdef", "dirty": True},
                "packages": {"torch": "9.9"},
                "runs_finished": runs,
            }
        )
    )


def test_build_status_prefers_gpu_and_reads_the_ladder(tmp_path: Path) -> None:
    _experiment(tmp_path / "cpu" / "exp_a", seconds=100.0, runs=12, cuda=[])
    _experiment(tmp_path / "gpu" / "exp_a", seconds=7.0, runs=20, cuda=["H100"])
    _experiment(tmp_path / "cpu" / "exp_b", seconds=50.0, runs=3, cuda=[])
    (tmp_path / "similarity_ladder").mkdir()
    (tmp_path / "similarity_ladder" / "ladder.provenance.json").write_text(
        json.dumps({"wall_seconds": 5.5, "runs": {"0": {}, "1": {}}, "code_version": "x"})
    )
    status = book.build_status(tmp_path).set_index("experiment")
    assert list(status.index) == ["exp_a", "exp_b", "similarity_ladder"]
    assert status.loc["exp_a", "scale"] == "gpu"
    assert status.loc["exp_a", "wall time (s)"] == 7.0
    assert status.loc["exp_a", "device"] == "H100"
    assert status.loc["exp_a", "runs"] == 20
    assert status.loc["exp_b", "device"] == "Xeon (2 cores)"
    assert status.loc["exp_b", "git commit"] == "0123456789 (dirty)"
    assert status.loc["exp_b", "torch"] == "9.9"
    assert status.loc["similarity_ladder", "runs"] == 2
    # the fixtures' code versions are not this library's: the column says they differ
    assert "differs" in status.loc["exp_b", "library changed since"]


def _git(repo: Path, *args: str) -> str:
    import subprocess

    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}  # fmt: skip
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()  # fmt: skip


def test_library_changes_names_the_computing_modules_edited_since_the_results(
    tmp_path: Path,
) -> None:
    lib = tmp_path / "src" / "survey_lib"
    (lib / "train").mkdir(parents=True)
    for rel in ("train/engine.py", "train/batched.py", "book.py", "stats.py"):
        (lib / rel).write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "results computed here")
    commit = _git(tmp_path, "rev-parse", "HEAD")
    # the code version the results hold is the current one: nothing to report
    assert book.library_changes([commit], ["v1"], current="v1", repo=tmp_path) == "none"
    # edits after the results: a computing module and a presentation module (book.py)
    (lib / "train" / "batched.py").write_text("x = 2\n")
    (lib / "book.py").write_text("x = 2\n")
    got = book.library_changes([commit + " (dirty)"], ["v1"], current="v2", repo=tmp_path)
    assert got == "train/batched.py"
    # a presentation-only edit leaves the code version alone, but if the versions still
    # differ (the results came from a dirty tree) the answer says so instead of "none"
    (lib / "train" / "batched.py").write_text("x = 1\n")
    assert "differs" in book.library_changes([commit], ["v1"], current="v2", repo=tmp_path)
    # no such commit: the versions differ, and the answer says there is nothing to compare
    assert "no git history" in book.library_changes(["feedbeef00"], ["v1"], current="v2",
                                                    repo=tmp_path)  # fmt: skip
    many = [f"m{i}.py" for i in range(9)]
    for name in many:
        (lib / name).write_text("y = 1\n")
    _git(tmp_path, "add", ".")
    got = book.library_changes([commit], ["v1"], current="v2", repo=tmp_path)
    assert got.endswith("and 3 more") and got.startswith("m0.py, m1.py")


def test_results_dir_override_and_unscaled_fallback(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))
    assert book.results_dir() == tmp_path.resolve()
    assert book.experiment_dir("exp_x") == tmp_path.resolve() / "exp_x"
    assert book.read_result_file("exp_x", "per_seed.csv") is None
    assert book.read_driver("exp_x") is None
    # the ladder has no scale: it is still found under results/ with an override
    if (ROOT / "results" / "similarity_ladder").is_dir():
        assert book.experiment_dir("similarity_ladder") == ROOT / "results" / "similarity_ladder"
    monkeypatch.delenv("RESULTS_DIR")
    assert book.results_dir().parent == ROOT / "results"
    assert book.results_dir().name in book.SCALES_BY_PREFERENCE


def test_t_summary_matches_the_t_interval() -> None:
    df = pd.DataFrame({"g": ["a", "a", "a", "b", "b"], "v": [1.0, 2.0, 3.0, 5.0, 5.0]})
    out = book.t_summary(df, ["g"], "v").set_index("g")
    assert out.loc["a", "mean"] == pytest.approx(2.0)
    # t_{0.975, 2} = 4.302653; s = 1; half-width = 4.302653 / sqrt(3)
    assert out.loc["a", "ci_high"] - 2.0 == pytest.approx(4.302653 / 3**0.5, rel=1e-5)
    assert out.loc["b", "n"] == 2 and out.loc["b", "ci_low"] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="not in the table"):
        book.t_summary(df, ["nope"], "v")


def _verdicts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "claim": ["1. first claim", "2. second claim"],
            "rule": ["r1", "r2"],
            "mean": [0.5, -0.1],
            "ci_low": [0.1, -0.3],
            "ci_high": [0.9, 0.1],
            "n": [3, 3],
            "verdict": ["reproduced", "inconclusive"],
        }
    )


def test_verdict_styler_formats_and_rejects_unknown_verdicts() -> None:
    html = book.verdict_styler(_verdicts()).to_html()
    # old-format accuracy differences are shown in points (×100), one decimal, no "nan"
    assert "50.0 [10.0, 90.0] points" in html and book.OUTCOME_COLOURS["reproduced"] in html
    assert "nan" not in html and "—" in html
    bad = _verdicts().assign(verdict=["maybe", "reproduced"])
    with pytest.raises(ValueError, match="unknown verdict"):
        book.verdict_styler(bad)


def test_claim_verdicts_finds_claims_and_names_missing_ones(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))
    missing = book.claim_verdicts("l2sp_vs_bss:2")
    assert missing.loc[0, "verdict"] == "results not yet committed"
    (tmp_path / "l2sp_vs_bss").mkdir()
    _verdicts().to_csv(tmp_path / "l2sp_vs_bss" / "verdicts.csv", index=False)
    found = book.claim_verdicts("l2sp_vs_bss:2")
    assert found.loc[0, "verdict"] == "inconclusive"
    assert found.loc[0, "section"] == "sec-l2sp-vs-bss-ours"
    with pytest.raises(ValueError, match="has no claim 7"):
        book.claim_verdicts("l2sp_vs_bss:7")
    with pytest.raises(ValueError, match="unknown experiment"):
        book.claim_verdicts("nope:1")
    with pytest.raises(ValueError, match="must look like"):
        book.claim_verdicts("l2sp_vs_bss")


def test_recommendations_link_to_sections_and_committed_claims() -> None:
    rec = book.read_data("recommendations")
    labels = set()
    for page in (ROOT / "book").glob("*.md"):
        labels.update(
            line[1:-2]
            for line in page.read_text(encoding="utf-8").splitlines()
            if line.startswith("(sec-") and line.endswith(")=")
        )
    assert set(rec["evidence"]) <= labels, set(rec["evidence"]) - labels
    assert set(book.EXPERIMENT_SECTIONS.values()) <= labels
    for refs in rec["our_claims"]:
        found = book.claim_verdicts(refs)  # raises if a claim number is not in verdicts.csv
        assert len(found) >= 1
        committed = found[found["verdict"] != "results not yet committed"]
        assert set(committed["verdict"]) <= set(book.OUTCOMES)


def test_normalise_verdicts_reads_both_formats() -> None:
    old = book.normalise_verdicts(_verdicts())
    assert list(old["unit"]) == ["points", "points"]
    assert old.loc[0, "mean"] == pytest.approx(50.0)
    assert old["sesoi"].isna().all() and (old["format"] == "old").all()
    rho = _verdicts().assign(rule=["Spearman(a, b) < 0 with its 95 % t-interval below 0"] * 2)
    assert book.normalise_verdicts(rho).loc[0, "mean"] == pytest.approx(0.5)
    new = _verdicts().assign(
        verdict=["reversed", "absent at this scale"], unit="points", sesoi=0.5, seeds_needed=9.0
    )
    out = book.normalise_verdicts(new)
    assert list(out["verdict"]) == ["reversed", "absent at this scale"]
    assert out.loc[0, "mean"] == pytest.approx(0.5)  # new tables are already in their unit
    with pytest.raises(ValueError, match="missing \\['rule'\\]"):
        book.normalise_verdicts(_verdicts().drop(columns="rule"))


def test_findings_discovers_every_committed_verdict_table(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RESULTS_DIR", raising=False)
    for name in ("alpha_study", "transferability_ranking"):
        folder = tmp_path / "cpu" / name
        folder.mkdir(parents=True)
        _verdicts().to_csv(folder / "verdicts.csv", index=False)
    _verdicts().to_csv(tmp_path / "cpu" / "alpha_study" / "verdicts_glyphs.csv", index=False)
    table = book.findings(tmp_path)
    assert len(table) == 6
    assert set(table["experiment"]) == {"alpha_study", "transferability_ranking"}
    assert set(table["variant"]) == {"", "glyphs"}
    assert book.verdict_counts(table)["reproduced"] == 3


def test_dashboard_lists_every_committed_claim_with_counts() -> None:
    table = book.findings()
    text = book.findings_dashboard().data
    assert f"**{len(table)} claims**" in text
    for claim in table["claim"]:
        assert book._claim_words(claim).replace("|", "\\|") in text
    assert "nan" not in text.replace("Fernando", "")
    counts = book.verdict_counts(table)
    assert sum(counts.values()) == len(table)


def test_numbers_never_print_nan_or_negative_zero() -> None:
    assert book.fmt_number(float("nan")) == "—"
    assert book.fmt_number(-0.04) == "0.0"
    assert book.fmt_number(-1.25, 1) == "−1.2"
    assert book.fmt_number(1280000.0, thousands=True) == "1,280,000"
    assert book.fmt_number(True) == "yes"
    assert book.fmt_interval(float("nan"), 1, 2) == "—"
    assert book.fmt_interval(1.0, -0.5, 2.5, 1, "points") == "1.0 [−0.5, 2.5] points"


def test_direction_words_follow_the_interval() -> None:
    words = {"above": "hurts", "below": "helps", "neither": "makes no clear difference"}
    assert book.direction(0.1, 0.3, **words) == "hurts"
    assert book.direction(-0.3, -0.1, **words) == "helps"
    assert book.direction(-1.4, 37.1, **words) == "makes no clear difference"
    assert book.direction(float("nan"), 1.0, **words) == "makes no clear difference"
    assert book.trend([5.7, 4.0, 3.4], rising="r", falling="f", mixed="m") == "f"
    assert book.trend([1, 2, 1], rising="r", falling="f", mixed="m") == "m"
    with pytest.raises(AssertionError, match="helps when small"):
        book.check_claim(False, "helps when small")


def test_palette_names_every_plotted_condition() -> None:
    for name in ("AnB", "AnB+", "BnB", "BnB+", "baseB", "L2", "L2-SP", "BSS", "DELTA", "digits"):
        assert book.colour(name).startswith("#")
    assert book.palette_for(["AnB", "AnB"]) == {"AnB": book.PALETTE["AnB"]}
    with pytest.raises(ValueError, match="no book colour for 'XYZ'"):
        book.colour("XYZ")
    lo, hi = book.clip_band([-0.1, 0.5], [0.9, 1.2], lower=0.0, upper=1.0)
    assert lo.tolist() == [0.0, 0.5] and hi.tolist() == [0.9, 1.0]


def test_palette_for_notebooks_gives_unknown_names_spare_colours() -> None:
    shown = book.palette_for(["AnB", "new_method", "other", "new_method"], others=True)
    assert shown["AnB"] == book.PALETTE["AnB"]
    assert shown["new_method"] == book.OTHER_COLOURS[0] and shown["other"] == book.OTHER_COLOURS[1]
    for name in ("caltech101", "oxford_pets", "fgvc_aircraft", "small_near", "large_far"):
        assert book.colour(name).startswith("#")
    with pytest.raises(ValueError, match="no book colour for 'new_method'"):
        book.palette_for(["new_method"])


def test_frame_view_shows_no_nan_bools_raw_floats_or_negative_zero() -> None:
    df = pd.DataFrame({
        "images": [1280000.0, 50000.0],
        "acc": [0.91234, -0.0001],
        "agrees": [True, False],
        "note": ["ok", float("nan")],
        "ratio": [1.5e-7, 0.25],
    })
    html = book.frame_view(df, significant=["ratio"]).to_html()
    for bad in ("nan", "True", "False", "-0.0", "1280000.00", "0.000000"):
        assert bad not in html, bad
    for good in ("1,280,000", "50,000", "0.912", ">0.000<", "yes", "no", "—", "1.5e−07", "0.25"):
        assert good in html, good
    assert 'class="row_heading' not in html  # a plain 0..n-1 index is hidden
    pivot = pd.DataFrame({"rate": [0.15, 1.0], "acc": [0.5, float("nan")]}).set_index("rate")
    html = book.frame_view(pivot, 2).to_html()
    assert 'class="row_heading' in html  # a meaningful index is shown, its floats plainly
    assert ">0.15<" in html and ">1<" in html and "—" in html and "nan" not in html


def test_log_ticks_label_the_values_run_and_nothing_overlaps() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [20, 50, 100, 200, 400, 800]
    fig, (crowded, clean) = plt.subplots(1, 2, figsize=(6.5, 4))
    for ax in (crowded, clean):
        ax.plot(sizes, [0.5, 0.6, 0.7, 0.8, 0.85, 0.9], marker="o")
    crowded.set_xscale("log")  # matplotlib labels minor ticks 2×10¹ 3×10¹ … here
    assert book.log_ticks(clean, sizes) == [float(s) for s in sizes]
    fig.tight_layout()
    assert book.overlapping_labels(crowded), "the default log axis should crowd its labels"
    assert book.overlapping_labels(clean) == []
    assert [t.get_text() for t in clean.get_xticklabels()] == [str(s) for s in sizes]
    with pytest.raises(ValueError, match="positive"):
        book.log_ticks(clean, [0, 1])
    plt.close(fig)


def test_bounded_errorbar_clips_the_t_interval_to_what_the_quantity_can_take() -> None:
    from survey_lib.stats import t_errorbar

    values = [0.1, 0.9, 0.95]  # a wide 3-seed interval, reaching past 1 and below 0
    low, high = t_errorbar(values)
    assert low < 0.0 and high > 1.0
    assert book.bounded_errorbar(0.0, 1.0)(values) == (0.0, 1.0)
    assert book.bounded_errorbar(None, 1.0)(values) == (pytest.approx(low), 1.0)
    inside = [0.4, 0.5, 0.6]
    assert book.bounded_errorbar(0.0, 1.0)(inside) == pytest.approx(t_errorbar(inside))


def test_load_results_skips_records_moved_aside(tmp_path: Path) -> None:
    from survey_lib.runner import run_grid

    def fn(params, seed):
        return {"acc": params["x"] + seed}

    run_grid("g", fn, [{"x": 1}, {"x": 2}], [0], tmp_path / "exp", progress=False, code_version="v")
    run_grid("g", fn, [{"x": 2}], [0], tmp_path / "exp", progress=False, code_version="v")
    assert (tmp_path / "exp" / "g" / "stale" / "runs").is_dir()  # x=1 was moved aside
    table = book.load_results("exp", root=tmp_path)
    assert set(table["grid"]) == {"g"} and list(table["x"]) == [2]


def test_precision_comparison_reads_the_committed_check(tmp_path: Path, load_script) -> None:
    import shutil

    root = Path(book.__file__).resolve().parents[2]
    assert book.precision_comparison(tmp_path / "cpu") is None  # not committed: nothing to show
    fp32 = tmp_path / "cpu-fp32"
    shutil.copytree(root / "results" / "cpu-fp32", fp32)
    shutil.copytree(fp32, tmp_path / "cpu-bf16")
    (tmp_path / "cpu").mkdir()
    script = load_script("compare_precision")
    out = tmp_path / "cpu" / "precision_comparison.csv"
    assert script.main(["--fp32", str(fp32), "--bf16", str(tmp_path / "cpu-bf16"),
                        "--out", str(out)]) == 0
    shown = book.precision_comparison(tmp_path / "cpu")
    assert set(shown["same verdict"]) == {"yes"}  # the same runs twice
    # claims a protocol does not run (no estimate in either run) are "not run", never "no"
    assert set(shown["each inside the other's CI"]) <= {"yes", "no", "not run"}
    assert "no" not in set(shown["bf16 inside the fp32 CI"])  # the same runs twice
    assert set(shown["notebook"]) == set(book.PRECISION_NOTEBOOKS)
    assert "nan" not in " ".join(shown["fp32 [95 % CI]"])


def test_batching_comparison_reads_the_committed_check(tmp_path: Path, load_script) -> None:
    root = Path(book.__file__).resolve().parents[2]
    assert book.batching_comparison(tmp_path) is None  # not committed: nothing to show
    script = load_script("compare_batching")
    seq = root / "results" / "cpu-fp32"
    assert script.main(["--sequential", str(seq), "--batched", str(seq), "--notebooks",
                        "l2sp_vs_bss", "--out", str(tmp_path / "batching_comparison.csv")]) == 0
    shown = book.batching_comparison(tmp_path)
    assert set(shown["same verdict"]) == {"yes"} and set(shown["notebook"]) == {"l2sp_vs_bss"}
    assert set(shown["batched inside the sequential CI"]) == {"yes"}
    assert "nan" not in " ".join(shown["batched [95 % CI]"])


def test_protocol_batch_runs_reads_the_committed_protocol() -> None:
    assert book.protocol_batch_runs("yosinski_layer_transfer") == 8  # the check passed
    assert book.protocol_batch_runs("l2sp_vs_bss") == 1  # the check failed on claim 4
    assert book.protocol_batch_runs("kornblith_gains_vs_size") == 1  # not wired


def test_protocol_precision_reads_the_committed_protocol() -> None:
    assert book.protocol_precision("yosinski_layer_transfer") == "fp32"  # the check failed there
    assert book.protocol_precision("transferability_ranking") == "fp32"
    assert book.protocol_precision("kornblith_gains_vs_size") == "bf16"  # the check passed
    assert book.protocol_precision("l2sp_vs_bss") == "bf16"
    assert book.protocol_precision("yosinski_layer_transfer", "smoke") == "fp32"
