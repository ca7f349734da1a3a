"""The installed environment: pins agree across pyproject.toml and environment.yml, and the
torch/torchvision pair really works together."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*(.*)$", req)
    assert match, req
    name = re.sub(r"[-_.]+", "-", match.group(1).split("[")[0]).lower()
    return name, match.group(2).replace(" ", "")


def _pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = list(data["project"]["dependencies"]) + list(
        data["project"]["optional-dependencies"]["dev"]
    )
    return dict(_norm(r) for r in reqs)


def _conda_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return dict(_norm(r) for r in pip_section if not r.startswith("-e"))


def test_environment_yml_agrees_with_pyproject() -> None:
    assert _conda_pins() == _pyproject_pins()


def test_torch_family_pinned_as_a_matching_pair() -> None:
    pins = _pyproject_pins()
    for name in ("torch", "torchvision", "timm"):
        assert pins[name].startswith("=="), f"{name} must be pinned exactly, got {pins[name]!r}"
    assert pins["jupyter-book"] == ">=1.0.4.post1,<2"


def test_installed_versions_match_pins() -> None:
    import timm
    import torch
    import torchvision

    pins = _pyproject_pins()
    assert torch.__version__.split("+")[0] == pins["torch"][2:]
    assert torchvision.__version__.split("+")[0] == pins["torchvision"][2:]
    assert timm.__version__ == pins["timm"][2:]


def test_torchvision_op_runs() -> None:
    import torch
    from torchvision.ops import box_iou, nms

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    iou = box_iou(boxes, boxes)
    assert torch.allclose(iou.diagonal(), torch.ones(3))
    assert abs(float(iou[0, 1]) - 81.0 / 119.0) < 1e-6
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
