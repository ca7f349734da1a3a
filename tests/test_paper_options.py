"""The paper options of the Yosinski and L2-SP/BSS reproductions on the fixture files in the
real on-disk formats (CIFAR-100's pickles, a local timm weights file): both directions of the
dissimilar split, dropout in frozen units, metrics over epochs, TLlib's fixed iteration count;
and the protocol table rows they make faithful."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_paper_profile import MANMADE, _paper_params, _write_cifar100, paper_files

from survey_lib import reproduce
from survey_lib.experiments import l2sp_bss, yosinski
from survey_lib.protocol_table import load_facts, rows

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _single_thread() -> None:
    torch.set_num_threads(1)


def _capture(monkeypatch: pytest.MonkeyPatch, module) -> list:
    """Record every ``fit_or_fail`` call of ``module``: (args, kwargs, result)."""
    calls, real = [], module.fit_or_fail

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    monkeypatch.setattr(module, "fit_or_fail", spy)
    return calls


def test_yosinski_b_to_a_with_frozen_dropout_and_top10_metric(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    checksums = _write_cifar100(tmp_path / "data", train_per_class=4, test_per_class=2,
                                textured=True)
    params = {**_paper_params("yosinski_layer_transfer"), "split": "dissimilar",
              "train_per_class": 4, "test_per_class": 2,
              "options": {"root": str(tmp_path / "data"), "download": False,
                          "checksums": checksums},
              "checkpoint_dir": str(tmp_path / "ckpt"),
              "train": {"epochs": 2, "batch_size": 64, "lr": 0.02, "weight_decay": 0.0005,
                        "augment": "none"}}
    assert params["frozen_dropout"] and params["epoch_metrics"] == ["test_acc_top10_mean"]
    calls = _capture(monkeypatch, yosinski)
    # baseA (man-made, 30 classes): trained with a per-epoch test, its metrics kept beside it
    base = yosinski.run_cell({**params, "kind": "base", "half": "A"}, 0).metrics
    [(args, kwargs, result)] = calls
    assert args[1].num_classes == 30 and set(args[1].class_names) == MANMADE
    per_epoch = result.history["test_acc"].tolist()
    assert len(per_epoch) == 2 and kwargs["eval_sets"]["test"].num_classes == 30
    assert base["test_acc"] == per_epoch[-1]
    assert base["test_acc_top10_mean"] == pytest.approx(sum(per_epoch) / 2)
    # B→A: baseB's first 7 units frozen in a net for half A, dropout on in frozen fc6/fc7
    calls.clear()
    cell = {**params, "kind": "transfer", "source": "B", "target": "A", "n": 7, "freeze": True}
    out = yosinski.run_cell(cell, 0).metrics
    (_, kw_b, _), (args, kwargs, result) = calls  # baseB trained first (uncached), then the net
    assert kw_b["eval_sets"]["test"].num_classes == 70
    target, config = args[0], args[3]
    assert target.num_classes == 30 and target.frozen_dropout
    assert config.frozen_units == 7 and config.cache_frozen is False
    per_epoch = result.history["test_acc"].tolist()
    assert out["test_acc"] == per_epoch[-1]
    assert out["test_acc_top10_mean"] == pytest.approx(sum(per_epoch) / 2)
    assert yosinski.condition_of(cell) == "AnB"  # the paper's BnA, named relative to its target
    # the control on half A, and a cached base without its metrics refuses to guess them
    control = {**params, "kind": "random_frozen", "source": "A", "target": "A", "n": 7,
               "freeze": True}
    assert 0.0 <= yosinski.run_cell(control, 0).metrics["test_acc_top10_mean"] <= 1.0
    next(Path(params["checkpoint_dir"]).glob("*.epochs.json")).unlink()
    with pytest.raises(FileNotFoundError, match="per-epoch test metrics"):
        for half in ("A", "B"):
            yosinski.run_cell({**params, "kind": "base", "half": half}, 0)


def test_yosinski_batched_cells_leave_paper_options_to_run_cell() -> None:
    from survey_lib.experiments.yosinski_batched import _sequential_only

    cell = {"kind": "transfer", "n": 2}
    assert not _sequential_only(cell)
    assert _sequential_only({**cell, "frozen_dropout": True})
    assert _sequential_only({**cell, "epoch_metrics": ["test_acc_top10_mean"]})


def test_l2sp_fixed_iterations_and_best_epoch_on_given_weights(tmp_path: Path, monkeypatch) -> None:
    _, options, source = paper_files(tmp_path, monkeypatch)
    target = {"name": "cifar100", "dataset": "cifar100", "options": options, "channels": 3,
              "pool_per_class": 2, "test_per_class": 1}
    calls = _capture(monkeypatch, l2sp_bss)
    out = l2sp_bss.run_cell({
        "source": source, "target": target, "rate": 1.0, "method": "L2",
        "spec": {"regularizer": "l2", "alpha": 0.0005}, "checkpoint_dir": str(tmp_path / "ckpt"),
        "train": {"lr": 0.01, "batch_size": 64, "drop_last": True, "weight_decay": 0.0,
                  "augment": "none"},
        "iterations": 5, "eval_every_iterations": 3, "epoch_metrics": ["test_acc_best_epoch"],
    }, 0).metrics
    [(args, kwargs, result)] = calls
    # 200 images, batch 64, last batch dropped: 3 steps an epoch, so 2 epochs for >= 5 steps
    assert args[3].epochs == 2 and result.steps == 6 and kwargs["eval_every"] == 1
    per_epoch = result.history["test_acc"].tolist()
    assert out["test_acc"] == per_epoch[-1]
    assert out["test_acc_best_epoch"] == max(per_epoch)


def _row(name: str, scale: str, aspect: str) -> dict:
    params = reproduce.load_params(name, scale, "paper", ROOT / "notebooks")
    [row] = [r for r in rows(name, params, load_facts()) if r["aspect"] == aspect]
    return row


@pytest.mark.parametrize(
    ("name", "aspect"),
    [("yosinski_layer_transfer", a) for a in (
        "training length", "dropout in frozen units", "dissimilar split directions", "metric")]
    + [("l2sp_vs_bss", a) for a in ("iterations", "optimiser", "test evaluations", "metric")],
)
def test_published_preset_makes_these_aspects_faithful(name: str, aspect: str) -> None:
    assert _row(name, "published", aspect)["deviation"] == "none"


def test_cheaper_presets_show_what_still_differs() -> None:
    assert _row("yosinski_layer_transfer", "gpu", "training length")["deviation"].startswith(
        "yes: fewer passes")
    assert _row("l2sp_vs_bss", "gpu", "iterations")["deviation"].startswith("yes: fewer iterations")
    # the published preset's augmentation is TLlib's now; what it still cannot do is said
    assert _row("l2sp_vs_bss", "published", "augmentation")["deviation"] == "none"
    assert _row("l2sp_vs_bss", "published", "crop input")["deviation"].startswith("yes")
    facts = load_facts()
    params = reproduce.load_params("yosinski_layer_transfer", "published", "paper",
                                   ROOT / "notebooks")
    params = {**params, "frozen_dropout": False, "metric": "test_acc"}
    table = {r["aspect"]: r for r in rows("yosinski_layer_transfer", params, facts)}
    assert table["dropout in frozen units"]["deviation"].startswith("yes: frozen units in eval")
    assert table["metric"]["deviation"].startswith("yes: the final epoch")


def test_paper_presets_record_their_metric_and_name_it() -> None:
    for name, published in (("yosinski_layer_transfer", "test_acc_top10_mean"),
                            ("l2sp_vs_bss", "test_acc_best_epoch")):
        for scale in ("smoke", "cpu", "gpu", "published"):
            params = reproduce.load_params(name, scale, "paper", ROOT / "notebooks")
            assert params["metric"] == published and published in params["epoch_metrics"]
    text = json.dumps(load_facts()["yosinski_layer_transfer"]["numbers"])
    assert "final epoch" not in text  # the metric is now the published one
