"""The paper profile, tested as far as this offline machine allows: the committed paper
protocols name registered datasets and creatable models; CIFAR-100 halves load through the
real reader from fixture files in CIFAR's on-disk format; ImageNet weights load from a local
file through timm's ``pretrained_cfg_overlay``."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from survey_lib.data import dataset_info, list_datasets
from survey_lib.experiments import common, yosinski
from survey_lib.reproduce import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]

# CIFAR-100 fine label names in their (alphabetical) label order.
CIFAR100_NAMES = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch "
    "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo "
    "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse "
    "mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy "
    "porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper "
    "snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television "
    "tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()
MANMADE = {
    "bottle", "bowl", "can", "cup", "plate", "clock", "keyboard", "lamp", "telephone",
    "television", "bed", "chair", "couch", "table", "wardrobe", "bridge", "castle", "house",
    "road", "skyscraper", "bicycle", "bus", "motorcycle", "pickup_truck", "train", "lawn_mower",
    "rocket", "streetcar", "tank", "tractor",
}


def _paper_params(name: str) -> dict:
    from survey_lib.reproduce import load_params

    return load_params(name, "smoke", "paper", ROOT / "notebooks")


def _datasets_named(params: dict) -> list[str]:
    names = [params["dataset"]] if "dataset" in params else []
    targets = params.get("targets", [])
    names += [t["dataset"] for t in (targets.values() if isinstance(targets, dict) else targets)]
    return names


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_paper_protocols_name_registered_datasets(name: str) -> None:
    params = _paper_params(name)
    paper = set(list_datasets("paper"))
    for dataset in _datasets_named(params):
        assert dataset in paper, f"{name}: {dataset} is not a paper-profile dataset"
        assert dataset_info(dataset).num_classes
    if "source" in params:
        assert params["source"]["epochs"] == 0 and params["source"]["model"] == "resnet50.tv_in1k"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _write_cifar100(
    root: Path, train_per_class: int = 2, test_per_class: int = 1, textured: bool = False
) -> dict[str, str]:
    """CIFAR-100 in its pickled on-disk format. Images are flat grey levels, or with ``textured``
    seeded noise around a class-dependent level (flat images give near-duplicate features on
    which the linear probe's weakly penalised fits crawl)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, per in (("train", train_per_class), ("test", test_per_class)):
        labels = [c for c in range(100) for _ in range(per)]
        if textured:
            levels = np.array([(7 * c) % 256 for c in labels], dtype=np.float64)[:, None]
            data = np.clip(levels + rng.normal(0, 40, (len(labels), 3072)), 0, 255).astype(np.uint8)
        else:
            data = np.stack(
                [np.full(3072, (7 * c + i) % 256, dtype=np.uint8) for i, c in enumerate(labels)]
            )
        entry = {"filenames": [f"{i}.png" for i in range(len(labels))], "fine_labels": labels,
                 "coarse_labels": [0] * len(labels), "data": data}
        (folder / split).write_bytes(pickle.dumps(entry))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": CIFAR100_NAMES,
                                                "coarse_label_names": ["x"] * 20}))
    return {p.name: _md5(p) for p in folder.iterdir()}


def test_yosinski_paper_halves_load_from_cifar100_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    checksums = _write_cifar100(tmp_path / "data")
    params = {**_paper_params("yosinski_layer_transfer"), "split": "dissimilar",
              "train_per_class": 2, "test_per_class": 1,
              "options": {"root": str(tmp_path / "data"), "download": False, "checksums": checksums}}
    train_a, test_a = yosinski._data(params, "A", 0)
    train_b, _ = yosinski._data(params, "B", 0)
    assert set(train_a.class_names) == MANMADE
    assert train_a.num_classes == 30 and train_b.num_classes == 70
    assert tuple(train_a.images.shape) == (60, 3, 32, 32) and len(test_a) == 30
    # Without the fixture's checksums the real reader refuses the files (torchvision's MD5s).
    with pytest.raises(Exception, match="MD5|md5|checksum"):
        yosinski._data({**params, "options": {"root": str(tmp_path / "data"), "download": False}}, "A", 1)


def test_imagenet_weights_load_offline_through_timm(tmp_path: Path, monkeypatch) -> None:
    import timm

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reference = timm.create_model("resnet18", pretrained=False, num_classes=1000)
    path = tmp_path / "resnet18_tv_in1k.pth"
    torch.save(reference.state_dict(), path)
    source = {"model": "resnet18.tv_in1k", "epochs": 0, "weights": str(path), "channels": 3}
    model, (mean, std) = common.source_model(source, tmp_path / "ckpt")
    assert mean == pytest.approx((0.485, 0.456, 0.406), abs=1e-3)
    assert std == pytest.approx((0.229, 0.224, 0.225), abs=1e-3)
    state = model.state_dict()
    conv = next(k for k in state if k.endswith("conv1.weight"))
    assert torch.equal(state[conv], reference.state_dict()["conv1.weight"])
    assert np.isnan(common.source_test_accuracy(source, tmp_path / "ckpt"))


@pytest.fixture()
def paper_fixture(tmp_path: Path, monkeypatch):
    """CIFAR-100 fixture files and a local ImageNet-style weights file for a small timm model."""
    return paper_files(tmp_path, monkeypatch)


def paper_files(tmp_path: Path, monkeypatch):
    """``(tmp_path, options, source)``: CIFAR-100 files in the real format and a local
    ImageNet-style weights file for timm's resnet18, offline (the fixture's body, importable)."""
    import timm

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    checksums = _write_cifar100(tmp_path / "data")
    path = tmp_path / "resnet18_tv_in1k.pth"
    torch.manual_seed(0)
    torch.save(timm.create_model("resnet18", pretrained=False, num_classes=1000).state_dict(), path)
    options = {"root": str(tmp_path / "data"), "download": False, "checksums": checksums}
    source = {"dataset": "timm_weights", "model": "resnet18.tv_in1k", "weights": str(path),
              "epochs": 0, "seed": 0, "size": 32, "channels": 3,
              "train": {"lr": 0.01, "batch_size": 16, "weight_decay": 0.0, "augment": "none"}}
    return tmp_path, options, source


# The fixture's 100 classes with one training image each are separable: at weak penalties the
# probe's L-BFGS runs to its 1000-iteration limit (minutes per fit on 2 busy cores, the
# slowdown once blamed on the library). The test caps it with `probe.max_iter`.
def test_kornblith_cells_run_on_given_weights(paper_fixture) -> None:
    from survey_lib.experiments import kornblith

    tmp_path, options, source = paper_fixture
    target = {"name": "cifar100", "dataset": "cifar100", "options": options, "channels": 3,
              "train_split": "train", "test_split": "test", "max_k": 2, "test_per_class": 1, "rank": 1}
    spec = {"steps": 1, "train": {"lr": 0.01, "batch_size": 64, "weight_decay": 0.0, "augment": "none"}}
    for method in kornblith.METHODS:
        out = kornblith.run_cell({"target": target, "k": 2, "method": method, "source": source,
                                  "finetune": spec, "scratch": spec, "val_fraction": 0.5,
                                  "probe": {"max_iter": 20},
                                  "checkpoint_dir": str(tmp_path / "ckpt")}, 0)
        assert 0.0 <= out.metrics["test_acc"] <= 1.0


def test_kornblith_paper_cells_record_mean_per_class_accuracy(paper_fixture) -> None:
    """A cell built from the resolved paper preset's target (its published metric named) on
    the fixture files records mean per-class accuracy beside top-1 for every method; on the
    fixture's balanced test set (one image per class) the two are equal."""
    from survey_lib.experiments import kornblith
    from survey_lib.reproduce import load_params

    tmp_path, options, source = paper_fixture
    preset = load_params("kornblith_gains_vs_size", "published", "paper", ROOT / "notebooks")
    assert [t["metric"] for t in preset["targets"]] == [
        "test_acc_mean_per_class", "test_acc_mean_per_class", "test_acc_mean_per_class",
        "test_acc", "test_acc_mean_per_class"]
    paper_target = preset["targets"][0]
    target = {**{k: v for k, v in paper_target.items() if k not in ("rank", "max_k", "metric")},
              "dataset": "cifar100", "options": options, "test_per_class": 1}
    spec = {"steps": 1, "train": {**preset["finetune"]["train"], "batch_size": 64}}
    for method in kornblith.METHODS:
        out = kornblith.run_cell({"target": target, "k": 2, "method": method, "source": source,
                                  "finetune": spec, "scratch": spec, "val_fraction": 0.5,
                                  "probe": {"max_iter": 20},
                                  "checkpoint_dir": str(tmp_path / "ckpt")}, 0)
        mpc = out.metrics[kornblith.target_metric(paper_target)]
        assert mpc == out.metrics["test_acc_mean_per_class"]
        assert mpc == pytest.approx(out.metrics["test_acc"])


def test_kornblith_target_metric_is_validated() -> None:
    from survey_lib.experiments import kornblith
    from survey_lib.experiments.validate import parameter_problems

    with pytest.raises(ValueError, match="valid: test_acc, test_acc_mean_per_class"):
        kornblith.target_metric({"name": "dtd", "metric": "top1"})
    assert kornblith.target_metric({"name": "dtd"}) == "test_acc"
    params = _paper_params("kornblith_gains_vs_size")
    params["targets"][0]["metric"] = "mean_per_class_acc"
    problems = parameter_problems("kornblith_gains_vs_size", params)
    assert any("targets[0].metric" in p and "test_acc_mean_per_class" in p for p in problems)


L2SP_METHODS = {
    "L2": {"regularizer": "l2", "alpha": 0.0005},
    "L2-SP": {"regularizer": "l2_sp", "alpha": 0.1, "beta": 0.01},
    "BSS": {"regularizer": "l2+bss", "l2__alpha": 0.0005, "bss__eta": 0.001, "bss__k": 1},
    "L2-SP+BSS": {"regularizer": "l2_sp+bss", "l2_sp__alpha": 0.1, "l2_sp__beta": 0.01,
                  "bss__eta": 0.001, "bss__k": 1},
    "DELTA": {"regularizer": "delta", "alpha": 0.01, "beta": 0.01, "head_steps": 2},
}


@pytest.mark.parametrize(
    "method",
    # DELTA's attention on a timm backbone (one whole forward per channel) ran over 10 minutes
    # at the end of the session that merged issues 11-19: slow until the cause is found.
    [pytest.param(m, marks=pytest.mark.slow) if m == "DELTA" else m for m in L2SP_METHODS],
)
def test_l2sp_cells_run_on_given_weights(paper_fixture, method: str) -> None:
    from survey_lib.experiments import l2sp_bss

    tmp_path, options, source = paper_fixture
    target = {"name": "cifar100", "dataset": "cifar100", "options": options, "channels": 3,
              "pool_per_class": 2, "test_per_class": 1}
    out = l2sp_bss.run_cell({"source": source, "methods": L2SP_METHODS, "method": method,
                             "target": target, "rate": 1.0, "checkpoint_dir": str(tmp_path / "ckpt"),
                             "train": {"epochs": 1, "lr": 0.01, "batch_size": 64,
                                       "weight_decay": 0.0, "augment": "none"}}, 0)
    assert 0.0 <= out.metrics["test_acc"] <= 1.0


def test_l2sp_paper_preset_trains_with_random_resized_crop(paper_fixture, monkeypatch) -> None:
    """The resolved paper-published L2-SP protocol's train mapping reaches the engine: its
    batches go through rrc_flip (TLlib's RandomResizedCrop + flip)."""
    from survey_lib.experiments import l2sp_bss
    from survey_lib.reproduce import load_params
    from survey_lib.train import engine

    preset = load_params("l2sp_vs_bss", "published", "paper", ROOT / "notebooks")
    assert preset["train"]["augment"] == "rrc_flip"
    modes: list[str] = []
    real = engine.augment_batch

    def spy(images, mode, **kwargs):
        modes.append(mode)
        out = real(images, mode, **kwargs)
        assert out.shape == images.shape and out.dtype == images.dtype
        return out

    monkeypatch.setattr(engine, "augment_batch", spy)
    tmp_path, options, source = paper_fixture
    target = {"name": "cifar100", "dataset": "cifar100", "options": options, "channels": 3,
              "pool_per_class": 2, "test_per_class": 1}
    train = {k: v for k, v in preset["train"].items() if k != "lr_multipliers"}
    out = l2sp_bss.run_cell({"source": source, "method": "L2", "spec": preset["methods"]["L2"],
                             "target": target, "rate": 1.0, "iterations": 1,
                             "checkpoint_dir": str(tmp_path / "ckpt"), "train": train}, 0)
    assert modes and set(modes) == {"rrc_flip"}
    assert 0.0 <= out.metrics["test_acc"] <= 1.0


def _overrides(name: str, options: dict, source: dict) -> dict:
    """Paper-profile smoke protocols pointed at the fixture files (CIFAR-100, 4 images per class,
    and a local weights file) instead of the real datasets and ImageNet weights."""
    import json

    data = {"dataset": "cifar100", "options": options, "channels": 3}
    if name == "yosinski_layer_transfer":
        return {"options": options, "train_per_class": 4, "test_per_class": 2}
    src = json.loads(json.dumps(source))
    if name == "transferability_ranking":
        return _zoo_overrides(data, source)
    if name == "kornblith_gains_vs_size":
        targets = [
            {"name": f"cifar100_{rank}", **data, "train_split": "train", "test_split": "test",
             "max_k": 4, "test_per_class": 2, "rank": rank}
            for rank in (1, 2)
        ]
        return {"source": src, "targets": targets, "ks": [2, 4], "quality_k": 4}
    if name == "best_practice_quadrants":
        quads = {"small_near": ("small, similar", 2), "large_near": ("large, similar", 4),
                 "small_far": ("small, less similar", 2), "large_far": ("large, less similar", 4)}
        targets = {key: {**data, "per_class": k, "test_per_class": 2, "epochs": 1, "placed": placed}
                   for key, (placed, k) in quads.items()}
        return {"source": src, "targets": targets}
    targets = {
        key: {"name": f"cifar100_{key}", **data, "pool_per_class": 4, "test_per_class": 2}
        for key in ("near", "far")
    }
    # DELTA's channel attention costs one forward pass per channel (~90 s a run here); the
    # attention path on a timm backbone is covered by test_l2sp_cells_run_on_given_weights.
    methods = yaml.safe_load((ROOT / "notebooks/params/l2sp_vs_bss/smoke.yaml").read_text())
    methods = methods["methods"]
    methods["DELTA"] = {"regularizer": "delta_unweighted", "alpha": 0.01, "beta": 0.01}
    return {"source": src, "targets": targets, "methods": methods}


def _zoo_overrides(data: dict, source: dict) -> dict:
    """The ranking study's paper zoo on three local timm weight files (seeded random weights)."""
    import timm

    folder = Path(source["weights"]).parent
    zoo = []
    for seed in range(3):
        path = folder / f"zoo_resnet18_{seed}.pth"
        torch.manual_seed(seed)
        torch.save(timm.create_model("resnet18", pretrained=False, num_classes=1000).state_dict(), path)
        zoo.append({"name": f"resnet18_{seed}", "kind": "pretrained", "model": "resnet18.tv_in1k",
                    "weights": str(path), "channels": 3, "source_top1": 69.752 + seed})
    targets = [{"name": "cifar100", **data, "train_split": "train", "test_split": "test",
                "test_per_class": 2, "rank": 1}]
    return {"zoo_models": zoo, "targets": targets, "size": 32, "ks": [2, 4], "finetune_ks": [4],
            "measures": ["hscore", "leep", "logme", "knn"]}


# The zoo study fine-tunes three ResNet-18s on 100 fixture classes: 13 min on the busy 2-core
# machine, so it runs with the slow tests.
@pytest.mark.parametrize(
    "name",
    # Besides the zoo study: the Kornblith, L2-SP/BSS and best-practice runs did not finish in
    # 9 minutes on an idle machine at the end of the session that merged issues 11-19 (the
    # Yosinski one takes about a minute): slow until the cause is found.
    [pytest.param(n, marks=pytest.mark.slow) if n != "yosinski_layer_transfer" else n
     for n in NOTEBOOKS],
)
def test_paper_notebooks_run_end_to_end_on_fixtures(tmp_path: Path, monkeypatch, name: str) -> None:
    """The paper profile's notebooks, unchanged, through `make reproduce`'s driver: only the
    data and weights locations are overridden (no internet here)."""
    import json

    import timm

    from survey_lib import reproduce

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    checksums = _write_cifar100(
        tmp_path / "data", train_per_class=4, test_per_class=2, textured=True
    )
    path = tmp_path / "resnet18_tv_in1k.pth"
    torch.manual_seed(0)
    torch.save(timm.create_model("resnet18", pretrained=False, num_classes=1000).state_dict(), path)
    options = {"root": str(tmp_path / "data"), "download": False, "checksums": checksums}
    source = {"dataset": "timm_weights", "options": {}, "model": "resnet18.tv_in1k",
              "weights": str(path), "epochs": 0, "seed": 0, "size": 32, "channels": 3,
              "train": {"lr": 0.01, "batch_size": 16, "weight_decay": 0.0, "augment": "none"}}
    sets = [f"{k}={json.dumps(v)}" for k, v in _overrides(name, options, source).items()]
    argv = ["--scale", "smoke", "--profile", "paper", "--results-root", str(tmp_path / "results"),
            "--no-book", "--only", name]
    rc = reproduce.main(argv + [a for s in sets for a in ("--set", s)])
    # overridden runs have their own folder
    out = reproduce.results_dir(name, "smoke", "paper", tmp_path / "results",
                                reproduce.parse_overrides(sets))
    assert rc == 0, (out / "executed.ipynb").read_text()[-3000:] if out.exists() else rc
    driver = json.loads((out / "driver.json").read_text())
    assert driver["protocol"]["files"] == ["paper-smoke.yaml"]  # the offline smoke.yaml unread
    assert driver["protocol"]["resolved"] == {
        k: v for k, v in driver["parameters"].items() if k not in reproduce.INJECTED}
    verdicts = (out / "verdicts.csv").read_text()
    assert "reproduced" in verdicts or "inconclusive" in verdicts
    if name == "yosinski_layer_transfer":  # the paper options reach the tables
        import pandas as pd

        assert set(pd.read_csv(out / "verdicts.csv")["metric"]) == {"test_acc_top10_mean"}
        per_seed = pd.read_csv(out / "per_seed.csv")
        assert set(per_seed[per_seed.split == "dissimilar"].direction) == {"A→B", "B→A"}
        assert {"test_acc", "test_acc_top10_mean"} <= set(
            pd.read_csv(out / "summary_by_metric.csv").columns)
