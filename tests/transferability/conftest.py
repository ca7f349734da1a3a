"""Shared setup for the transferability tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _single_blas_thread() -> Iterator[None]:
    # The inputs here are tiny: multi-threaded BLAS/OpenMP only adds contention (25x slower
    # logistic regression on a busy 2-core machine), and one thread keeps timings predictable.
    with threadpool_limits(limits=1):
        yield
