"""Fixtures for the regularizer tests (helpers live in regularizer_helpers.py)."""

from __future__ import annotations

import pytest
import torch

from .regularizer_helpers import TinyNet, make_batch, make_pair


@pytest.fixture
def pair() -> tuple[TinyNet, TinyNet]:
    return make_pair()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return make_batch()
