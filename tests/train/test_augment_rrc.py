"""The batched random-resized crop + flip (``rrc_flip``) against closed forms and a per-image
reference (crop, then ``F.interpolate``)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from survey_lib.train import TrainConfig, augment_batch
from survey_lib.train.augment import (
    RRC_RATIO,
    RRC_SCALE,
    random_resized_crop_flip,
    resized_crop,
    sample_boxes,
)


def _images(b: int = 8, c: int = 3, h: int = 12, w: int = 10, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, c, h, w), generator=g).to(torch.uint8)


def test_shapes_dtype_and_the_augment_name() -> None:
    x = _images()
    y = augment_batch(x, "rrc_flip", padding=4, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.uint8
    z = random_resized_crop_flip(x.float(), generator=torch.Generator().manual_seed(0))
    assert z.shape == x.shape and z.dtype == torch.float32
    assert TrainConfig(epochs=1, lr=0.1, augment="rrc_flip").augment == "rrc_flip"
    with pytest.raises(ValueError, match="rrc_flip"):
        TrainConfig(epochs=1, lr=0.1, augment="rrc")


def test_seeded_generator_reproduces_and_seeds_differ() -> None:
    x = _images(b=16)
    out = [random_resized_crop_flip(x, generator=torch.Generator().manual_seed(s))
           for s in (3, 3, 4)]
    assert torch.equal(out[0], out[1])
    assert not torch.equal(out[0], out[2])


@pytest.mark.parametrize(("h", "w"), [(224, 224), (32, 48), (40, 20)])
def test_boxes_lie_in_the_image_within_scale_and_ratio(h: int, w: int) -> None:
    boxes = sample_boxes(4000, h, w, generator=torch.Generator().manual_seed(1))
    top, left, bh, bw = boxes.double().unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (bh >= 1).all() and (bw >= 1).all()
    assert (top + bh <= h).all() and (left + bw <= w).all()
    # w = round(sqrt(s A r)), h = round(sqrt(s A / r)): the unrounded pair lies within 1/2 of
    # (w, h), so s A in [(w-.5)(h-.5), (w+.5)(h+.5)] and r in [(w-.5)/(h+.5), (w+.5)/(h-.5)]
    area = h * w
    s0, s1 = RRC_SCALE
    r0, r1 = RRC_RATIO
    assert ((bw + 0.5) * (bh + 0.5) >= s0 * area).all()
    assert ((bw - 0.5) * (bh - 0.5) <= s1 * area).all()
    assert ((bw + 0.5) / (bh - 0.5) >= r0).all()
    assert ((bw - 0.5) / (bh + 0.5) <= r1).all()
    # the area fraction spreads over its range: down to 0.08, up to the largest box of an
    # admissible aspect ratio that fits (the whole image when W / H is in [r0, r1])
    largest = min(1.0, h * r1 / w, w / (r0 * h))
    frac = bw * bh / area
    assert frac.min() < 0.12 and frac.max() > 0.9 * largest
    # the left/top offsets spread over their ranges too
    assert (left == 0).any() and (left + bw == w).any()


def test_fallback_is_the_centred_crop_with_clamped_ratio() -> None:
    # scale (1, 1) with ratio (2, 2) never fits a square image: torchvision falls back to the
    # whole width and height round(W / 2), centred
    boxes = sample_boxes(5, 20, 20, scale=(1.0, 1.0), ratio=(2.0, 2.0),
                         generator=torch.Generator().manual_seed(0))
    assert boxes.tolist() == [[5, 0, 10, 20]] * 5
    with pytest.raises(ValueError, match="scale"):
        sample_boxes(1, 4, 4, scale=(0.5, 0.1), generator=torch.Generator())


def test_identity_at_full_scale_square_ratio_without_flip() -> None:
    x = _images(h=9, w=9)
    y = random_resized_crop_flip(x, generator=torch.Generator().manual_seed(0), scale=(1.0, 1.0),
                                 ratio=(1.0, 1.0), flip=False)
    assert torch.equal(y, x)


def test_flip_probability_is_one_half() -> None:
    x = _images(b=2000, c=1, h=5, w=5)
    y = random_resized_crop_flip(x, generator=torch.Generator().manual_seed(2), scale=(1.0, 1.0),
                                 ratio=(1.0, 1.0), flip=True)
    same, mirrored = (y == x).flatten(1).all(1), (y == x.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all()
    flipped = (mirrored & ~same).float().mean().item()
    assert abs(flipped - 0.5) < 0.05  # Bernoulli(1/2) over 2000 images: sd 0.011


def test_resized_crop_equals_crop_then_interpolate() -> None:
    x = _images(b=6, h=12, w=10).float()
    boxes = torch.tensor([[0, 0, 12, 10], [2, 3, 5, 4], [1, 0, 11, 7], [6, 5, 3, 5],
                          [0, 9, 12, 1], [4, 2, 1, 1]])
    flips = torch.tensor([False, True, False, True, False, True])
    y = resized_crop(x, boxes, (12, 10), flip=flips)
    for i, (t, left, h, w) in enumerate(boxes.tolist()):
        ref = F.interpolate(x[i : i + 1, :, t : t + h, left : left + w], size=(12, 10),
                            mode="bilinear", align_corners=False)[0]
        ref = ref.flip(-1) if flips[i] else ref
        assert torch.allclose(y[i], ref, atol=1e-4), i


def test_uint8_output_rounds_the_float_result() -> None:
    x = _images(b=4)
    boxes = sample_boxes(4, 12, 10, generator=torch.Generator().manual_seed(5))
    as_float = resized_crop(x.float(), boxes, (12, 10), flip=None)
    as_uint8 = resized_crop(x, boxes, (12, 10), flip=None)
    assert torch.equal(as_uint8, as_float.round().clamp(0, 255).to(torch.uint8))
    assert math.isclose(float(as_uint8.float().mean()), float(as_float.mean()), abs_tol=0.5)


def test_fit_trains_with_rrc_flip_reproducibly() -> None:
    from survey_lib.train import fit

    from .tiny_model import TinyNet, tiny_data

    def run() -> torch.Tensor:
        torch.manual_seed(0)
        model = TinyNet()
        config = TrainConfig(epochs=2, lr=0.05, batch_size=32, augment="rrc_flip")
        result = fit(model, tiny_data(), None, config, progress=False)
        assert result.status == "ok"
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    first, second = run(), run()
    assert torch.equal(first, second)
    torch.manual_seed(0)
    plain = TinyNet()
    fit(plain, tiny_data(), None, TrainConfig(epochs=2, lr=0.05, batch_size=32, augment="none"),
        progress=False)
    assert not torch.equal(first, torch.cat([p.detach().flatten() for p in plain.parameters()]))
