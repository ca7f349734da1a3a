"""Mean per-class accuracy (Kornblith et al. 2019) against closed forms."""

from __future__ import annotations

import pytest
import torch

from survey_lib.train.evaluate import eval_metrics, mean_per_class_accuracy


def _logits_for(pred: list[int], k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(pred), k).float() * 5.0


def test_unbalanced_toy_differs_from_top1_by_the_closed_form() -> None:
    # class 0: 8 images, all right; class 1: 2 images, 0 right.
    labels = torch.tensor([0] * 8 + [1] * 2)
    pred = [0] * 8 + [0, 0]
    out = eval_metrics(_logits_for(pred, 2), labels)
    assert out["accuracy"] == pytest.approx(8 / 10)
    assert out["mean_per_class_accuracy"] == pytest.approx((8 / 8 + 0 / 2) / 2)  # 0.5
    assert out["accuracy"] - out["mean_per_class_accuracy"] == pytest.approx(0.3)


def test_class_without_test_images_is_skipped() -> None:
    # 4 classes in the logits, class 2 has no test image: C' = {0, 1, 3}.
    labels = torch.tensor([0, 0, 1, 3, 3, 3])
    pred = torch.tensor([0, 1, 1, 3, 2, 2])
    expected = (1 / 2 + 1 / 1 + 1 / 3) / 3
    assert mean_per_class_accuracy(pred, labels) == pytest.approx(expected)
    out = eval_metrics(_logits_for(pred.tolist(), 4), labels)
    assert out["mean_per_class_accuracy"] == pytest.approx(expected)


def test_balanced_set_equals_top1_and_empty_set_is_zero() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = torch.tensor([0, 1, 1, 1, 0, 2])
    top1 = float((pred == labels).float().mean())
    assert mean_per_class_accuracy(pred, labels) == pytest.approx(top1)
    assert mean_per_class_accuracy(torch.tensor([]), torch.tensor([], dtype=torch.long)) == 0.0


def test_evaluate_passes_it_through() -> None:
    from survey_lib.data.base import ImageDataset
    from survey_lib.train.evaluate import evaluate

    class Fixed(torch.nn.Module):  # predicts class 0 for every image
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[1.0, 0.0]]).expand(x.shape[0], 2)

    labels = torch.tensor([0, 0, 0, 1])
    data = ImageDataset("toy", "test", torch.zeros(4, 1, 4, 4, dtype=torch.uint8), labels,
                        ("a", "b"))
    out = evaluate(Fixed(), data, mean=[0.5], std=[0.5], channels_last=False)
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["mean_per_class_accuracy"] == pytest.approx(0.5)
