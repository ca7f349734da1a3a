"""normalize, dataset_stats and extract_features."""

from __future__ import annotations

import pytest
import torch

from survey_lib.data.base import ImageDataset
from survey_lib.models import create_model, dataset_stats, extract_features, normalize


def _dataset(n: int = 10, channels: int = 1, size: int = 28) -> ImageDataset:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, size, size), generator=gen, dtype=torch.uint8)
    labels = torch.arange(n) % 3
    return ImageDataset("toy", "train", images, labels, ("a", "b", "c"))


def test_normalize_matches_formula() -> None:
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    out = normalize(images, mean=(0.0, 0.2, 0.5), std=(1.0, 0.1, 0.5))
    torch.testing.assert_close(out.flatten(), torch.tensor([0.0, 0.0, 1.0]))
    assert out.dtype == torch.float32
    with pytest.raises(ValueError, match="one value per channel"):
        normalize(images, mean=(0.5,), std=(0.5,))
    with pytest.raises(ValueError, match="uint8"):
        normalize(images.float(), mean=(0.5,) * 3, std=(0.5,) * 3)


def test_dataset_stats_standardises() -> None:
    data = _dataset(channels=2)
    mean, std = dataset_stats(data, chunk=3)
    x = data.images.double() / 255
    assert mean == pytest.approx(x.mean(dim=(0, 2, 3)).tolist())
    assert std == pytest.approx(x.std(dim=(0, 2, 3), unbiased=False).tolist())
    z = normalize(data.images, mean, std)
    assert z.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (z.std(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-4


def test_extract_features_in_eval_mode_and_order() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_model("alexnet_small", num_classes=3)  # dropout: eval mode must be used
    data = _dataset()
    feats, logits = extract_features(model, data, batch_size=4, mean=(0.5,), std=(0.25,))
    assert feats.shape == (10, model.feature_dim) and logits.shape == (10, 3)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        expected = model.forward_features(normalize(data.images, (0.5,), (0.25,)))
    torch.testing.assert_close(feats, expected)
    torch.testing.assert_close(logits, model.forward_head(expected))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_extract_features_on_cuda_matches_cpu() -> None:
    torch.manual_seed(0)
    model = create_model("resnet_small", num_classes=3).eval()
    data = _dataset()
    cpu_feats, _ = extract_features(model, data, mean=(0.5,), std=(0.25,))
    cuda_feats, cuda_logits = extract_features(model, data, device="cuda", mean=(0.5,), std=(0.25,))
    assert cuda_feats.device.type == "cpu" and cuda_logits.shape == (10, 3)
    torch.testing.assert_close(cuda_feats, cpu_feats, atol=1e-3, rtol=1e-3)
