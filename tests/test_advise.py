"""``survey_lib.advise``: threshold calibration, quadrant rule, recipes, and advice on real data
(an image folder written from Fashion-MNIST images; slow: the ladder's pairs)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from survey_lib import advise
from survey_lib.data import get_dataset
from survey_lib.data.protocols import k_per_class
from survey_lib.recipes import QUADRANTS, RECOMMENDED, Recipe

ROOT = Path(__file__).resolve().parents[1]
TINY_SOURCE = {**advise.SOURCES["glyphs_latin_resnet_small_smoke"], "epochs": 1, "per_class": 10}


def test_threshold_lies_between_the_ladders_near_and_far_rungs() -> None:
    t = advise.ladder_threshold()
    ladder = pd.read_csv(advise.LADDER_CSV)
    means = ladder[ladder.measure == "logme"].groupby(["rung", "rank"]).value.mean().reset_index()
    assert (means[means["rank"] <= 2].value > t.value).all()
    assert (means[means["rank"] >= 3].value < t.value).all()
    assert "greek" in t.rule and "digits" in t.rule and f"{t.value:.3f}" in t.rule


def test_threshold_refuses_an_overlapping_ladder(tmp_path: Path) -> None:
    rows = [{"seed": 0, "rung": r, "rank": k, "measure": "logme", "value": v}
            for r, k, v in (("a", 1, 0.2), ("b", 3, 0.5))]
    pd.DataFrame(rows).to_csv(tmp_path / "l.csv", index=False)
    with pytest.raises(ValueError, match="does not separate"):
        advise.ladder_threshold(tmp_path / "l.csv")
    with pytest.raises(ValueError, match="not in"):
        advise.ladder_threshold(tmp_path / "l.csv", score="hscore")


def test_quadrant_rule() -> None:
    t = advise.Threshold("logme", 0.6, 0.8, 0.4, "")
    def m(per_class: float, score: float) -> advise.Measurement:
        return advise.Measurement("x", {}, 10, 10 * int(per_class), per_class, int(per_class),
                                  "logme", score, 100, "0" * 16)
    assert advise.quadrant_of(m(20, 0.7), t) == "small, similar"
    assert advise.quadrant_of(m(100, 0.7), t) == "large, similar"
    assert advise.quadrant_of(m(99, 0.59), t) == "small, less similar"
    assert advise.quadrant_of(m(500, 0.1), t) == "large, less similar"


def test_every_quadrant_has_a_valid_sourced_recipe() -> None:
    assert set(RECOMMENDED) == set(QUADRANTS)
    survey = (Path("/work/shared/reference/survey-plested-gedeon.md"))
    text = " ".join(survey.read_text().split()) if survey.exists() else None
    for rec in RECOMMENDED.values():
        config = rec.recipe.config(advise.DEFAULT_TRAIN, 0, ((0.5,), (0.5,)), 5)
        assert config.lr > 0 and Recipe.from_dict(rec.recipe.to_dict()) == rec.recipe
        for s in rec.settings:
            assert s.section.startswith("7.") and s.passage
            if text is not None and "..." not in s.passage:
                assert s.passage in text, s.passage
    near, far = RECOMMENDED["small, similar"].recipe, RECOMMENDED["small, less similar"].recipe
    assert near.lr_factor < 1 < far.lr_factor


def test_recipe_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown recipe keys"):
        Recipe.from_dict({"learning_rate": 1})
    with pytest.raises(ValueError, match="unknown source"):
        advise.source_spec("imagenet")
    assert advise.source_spec("timm:resnet18@x.pth")["weights"] == "x.pth"


def _fashion_folder(root: Path, per_class: int, classes=(0, 1, 2, 3)) -> Path:
    ds = get_dataset("fashion_mnist", "test").select_classes(list(classes))
    ds = ds.subset(k_per_class(ds.labels, per_class, 0, num_classes=ds.num_classes))
    for i, (img, y) in enumerate(zip(ds.images, ds.labels)):
        folder = root / f"class_{int(y)}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0].numpy(), mode="L").save(folder / f"{i:03d}.png")
    return root


def test_advise_and_check_on_an_image_folder_of_fashion_mnist(tmp_path: Path, capsys) -> None:
    root = _fashion_folder(tmp_path / "clothes", 15)
    ckpt = tmp_path / "ckpt"
    a = advise.advise("image_folder", {"root": str(root)}, TINY_SOURCE, checkpoint_dir=ckpt,
                      verdicts={1: "reproduced"})
    assert a.measurement.classes == 4 and a.measurement.images_per_class == 12  # 15 - 3 test
    assert a.quadrant == "small, less similar"  # Fashion-MNIST is the ladder's farthest rung
    assert a.train_config["lr"] == pytest.approx(advise.DEFAULT_TRAIN["lr"] * 3)
    assert a.regularizer["regularizer"] == "l2_sp_lower"
    text = advise.report(a)
    assert "quadrant: small, less similar" in text and "logme" in text and "survey 7.2" in text
    a.check = advise.check(a, [0, 1], checkpoint_dir=ckpt,
                           base_train={**advise.DEFAULT_TRAIN, "epochs": 1}, progress=False)
    c = a.check
    assert c["n"] == 2 and c["ci_low"] <= c["difference_points"] <= c["ci_high"]
    assert set(c["advised"]) == {0, 1}
    assert json.loads(a.to_json())["check"]["n"] == 2
    # the command line, JSON output
    src = tmp_path / "src.yaml"
    src.write_text(yaml.safe_dump(TINY_SOURCE))
    capsys.readouterr()
    assert advise.main(["--dataset", "image_folder", "--option", f"root={root}",
                        "--source", str(src), "--checkpoint-dir", str(ckpt), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["quadrant"] == "small, less similar"
    assert advise.main(["--dataset", "image_folder", "--option", f"root={tmp_path / 'nope'}",
                        "--source", str(src), "--checkpoint-dir", str(ckpt)]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["small_near", "large_near", "small_far", "large_far"])
def test_ladder_pairs_land_in_the_notebooks_quadrants(name: str) -> None:
    """With the cpu-scale source (cached in results/cpu/checkpoints once any cpu notebook ran)."""
    params = yaml.safe_load((ROOT / "notebooks/params/best_practice_quadrants/cpu.yaml").read_text())
    t = params["targets"][name]
    a = advise.advise(t["dataset"], t["options"], params["source"],
                      checkpoint_dir=ROOT / "results" / "cpu" / "checkpoints",
                      per_class=t["per_class"], verdicts={})
    assert a.quadrant == t["placed"]
