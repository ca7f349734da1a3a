"""BSS against numpy's SVD, and the Gram route against the SVD route."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from survey_lib.regularizers import BSS, create_regularizer, smallest_squared_singular_values


def features(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("shape", [(16, 6), (6, 16), (32, 32)])
@pytest.mark.parametrize("method", ["auto", "svd", "gram"])
def test_bss_equals_numpy_smallest_squared_singular_values(k, shape, method) -> None:
    matrix = features(*shape)
    singular = np.linalg.svd(matrix.numpy(), compute_uv=False)  # descending
    expected = 0.05 * np.sum(np.sort(singular)[:k] ** 2)
    reg = create_regularizer("bss", k=k, eta=0.05, method=method)
    assert reg(matrix).item() == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("shape", [(128, 64), (48, 256)])
def test_gram_route_matches_svd_route_in_value_and_gradient(shape) -> None:
    base = features(*shape, seed=2).float()
    values, grads = [], []
    for method in ("svd", "gram"):
        matrix = base.clone().requires_grad_(True)
        value = smallest_squared_singular_values(matrix, 3, method).sum()
        value.backward()
        values.append(value.detach())
        grads.append(matrix.grad)
    torch.testing.assert_close(values[1], values[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-3, atol=1e-4)


def test_bss_penalises_the_smallest_direction() -> None:
    # rank-deficient features: the smallest singular value is 0, so the penalty is 0
    matrix = features(10, 4)
    matrix[:, 3] = matrix[:, 0] + matrix[:, 1]
    assert BSS(eta=1.0)(matrix).item() == pytest.approx(0.0, abs=1e-12)
    # and grows when the weakest direction is scaled up
    assert BSS(eta=1.0)(features(10, 4) * 2).item() == pytest.approx(
        4 * BSS(eta=1.0)(features(10, 4)).item()
    )


def test_bss_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"k must be in 1..min\(B, D\) = 1..4"):
        BSS(k=5)(features(10, 4))
    with pytest.raises(ValueError, match="features must be a"):
        BSS()(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="valid: auto, svd, gram"):
        BSS(method="qr")
