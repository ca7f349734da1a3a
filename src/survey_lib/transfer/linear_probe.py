"""Fixed-feature transfer: L2-regularised multinomial logistic regression on frozen features.

Kornblith, Shlens & Le, "Do Better ImageNet Models Transfer Better?", CVPR 2019,
https://arxiv.org/abs/1805.08974 (Section 3 and appendix): penultimate features of the
pretrained network, a multinomial logistic regression fitted with L-BFGS, the L2 strength picked
on a validation split from log-spaced values in :math:`[10^{-6}, 10^{5}]` (45 of them in the
paper, 12 by default here), then a refit on train + validation with the chosen strength and
the test accuracy of that refit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from survey_lib.train.evaluate import mean_per_class_accuracy

ArrayLike = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class LinearProbeResult:
    """Outcome of :func:`linear_probe`.

    Attributes:
        best_C: scikit-learn ``C`` of the train-split fit at the chosen strength,
            :math:`1 / (\\lambda^* n_\\text{train})`.
        val_accuracy: validation accuracy of that fit.
        test_accuracy: test accuracy of the refit on train + validation (``None`` without a
            test split).
        test_mean_per_class_accuracy: the refit's mean per-class test accuracy (Kornblith et
            al. 2019; :func:`survey_lib.train.evaluate.mean_per_class_accuracy`; ``None``
            without a test split).
        grid: one row per L2 strength: ``l2``, ``C``, ``train_accuracy``, ``val_accuracy``,
            ``n_iter``, ``converged``, ``selected``, from the strongest penalty to the weakest.
        best_l2: the chosen strength :math:`\\lambda^*`.
        refit_C: scikit-learn ``C`` of the refit, :math:`1 / (\\lambda^* (n_\\text{train} +
            n_\\text{val}))` (``None`` without a test split).
    """

    best_C: float
    val_accuracy: float
    test_accuracy: float | None
    grid: pd.DataFrame
    best_l2: float
    refit_C: float | None
    test_mean_per_class_accuracy: float | None = None


def _as_numpy(x: ArrayLike, name: str, ndim: int) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    out = np.asarray(x)
    if out.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {out.shape}")
    return out


def _check_labels(labels: np.ndarray, features: np.ndarray, name: str, num_classes: int) -> None:
    if labels.shape[0] != features.shape[0]:
        raise ValueError(f"{name}: {features.shape[0]} feature rows but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{name}: labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]"
        )


def _pipeline(max_iter: int, tol: float = 1e-4) -> Pipeline:
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("logreg", LogisticRegression(solver="lbfgs", max_iter=max_iter, tol=tol)),
        ]
    )


BACKENDS = ("sklearn", "torch")


class TorchLogisticProbe:
    """scikit-learn's ``StandardScaler`` + ``LogisticRegression(solver="lbfgs")`` in torch.

    Minimises the same objective, :math:`\\frac1n \\sum_i -\\log \\operatorname{softmax}(W
    z_i + b)_{y_i} + \\frac{\\lambda}{2}\\lVert W\\rVert_F^2` on standardised features
    :math:`z = (x - \\mu)/s` (population standard deviation; constant features keep
    :math:`s = 1`, as scikit-learn does), over the classes present in the training labels;
    with two classes, like scikit-learn, one weight vector :math:`w` and the logit
    :math:`w^\\top z + b` of the second class. Solved by :class:`torch.optim.LBFGS` (history
    10, strong-Wolfe line search, as SciPy's L-BFGS-B in scikit-learn) in float64 on
    ``device``, stopping when the largest absolute gradient entry is at most ``tol`` (SciPy's
    ``pgtol``, which scikit-learn sets to its ``tol``) or after ``max_iter`` iterations. A
    second :meth:`fit` starts from the previous solution (``warm_start``).
    """

    def __init__(self, *, max_iter: int = 1000, tol: float = 1e-4, device: str = "cpu") -> None:
        self.max_iter, self.tol, self.device = int(max_iter), float(tol), torch.device(device)
        self.l2 = 1.0
        self.n_iter_ = 0
        self._weights: tuple[torch.Tensor, torch.Tensor] | None = None

    def _tensor(self, x: ArrayLike) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float64, device=self.device)

    def _z(self, x: ArrayLike) -> torch.Tensor:
        return (self._tensor(x) - self._mean) / self._scale

    def _logits(self, z: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        logits = z @ w.T + b
        if len(self.classes_) == 2:
            return torch.cat([torch.zeros_like(logits), logits], dim=1)
        return logits

    def fit(self, x: ArrayLike, y: ArrayLike) -> TorchLogisticProbe:
        x_t = self._tensor(x)
        labels = np.asarray(y)
        classes = np.unique(labels)
        if self._weights is not None and not np.array_equal(classes, self.classes_):
            self._weights = None
        self.classes_ = classes
        self._mean = x_t.mean(dim=0)
        scale = x_t.std(dim=0, unbiased=False)
        self._scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        z = (x_t - self._mean) / self._scale
        target = torch.as_tensor(np.searchsorted(classes, labels), device=self.device)
        rows = 1 if len(classes) == 2 else len(classes)
        # Solved in v = sqrt(1 + l2) * w: a strong penalty otherwise makes the weights' curvature
        # (l2 + O(1) on standardised features) dwarf the intercepts' (O(1)), and L-BFGS's
        # scalar initial Hessian then crawls along the intercepts. The optimum is the same;
        # the gradient tolerance is scaled so that |dJ/dw| <= tol still holds at the stop.
        l2 = self.l2
        root = math.sqrt(1.0 + l2)
        if self._weights is None:
            v = torch.zeros(rows, z.shape[1], dtype=torch.float64, device=self.device)
            b = torch.zeros(rows, dtype=torch.float64, device=self.device)
        else:
            v, b = self._weights[0] * root, self._weights[1].clone()
        v.requires_grad_(True)
        b.requires_grad_(True)
        optimizer = torch.optim.LBFGS(
            [v, b],
            lr=1.0,
            max_iter=self.max_iter,
            max_eval=self.max_iter * 5 // 4 + 1,
            tolerance_grad=self.tol / root,
            tolerance_change=1e-16,
            history_size=10,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            w = v / root
            loss = F.cross_entropy(self._logits(z, w, b), target) + 0.5 * l2 * w.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        self.n_iter_ = int(optimizer.state[optimizer._params[0]].get("n_iter", 0))
        self._weights = (v.detach() / root, b.detach())
        return self

    @property
    def coef_(self) -> np.ndarray:
        """Weights on the standardised features, as scikit-learn's ``coef_``."""
        return self._weights[0].cpu().numpy()

    @property
    def intercept_(self) -> np.ndarray:
        return self._weights[1].cpu().numpy()

    def predict(self, x: ArrayLike) -> np.ndarray:
        with torch.no_grad():
            index = self._logits(self._z(x), *self._weights).argmax(dim=1)
        return self.classes_[index.cpu().numpy()]

    def score(self, x: ArrayLike, y: ArrayLike) -> float:
        return float(np.mean(self.predict(x) == np.asarray(y)))


class _SklearnProbe:
    """The scikit-learn pipeline behind the same small interface (``l2``, fit, score)."""

    def __init__(self, *, max_iter: int, tol: float, warm_start: bool) -> None:
        self.pipeline = _pipeline(max_iter, tol)
        self.pipeline.set_params(logreg__warm_start=warm_start)
        self.l2 = 1.0

    def fit(self, x: np.ndarray, y: np.ndarray) -> _SklearnProbe:
        self.pipeline.set_params(logreg__C=1.0 / (self.l2 * len(y)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.pipeline.fit(x, y)
        self.n_iter_ = int(np.max(self.pipeline.named_steps["logreg"].n_iter_))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.pipeline.predict(x)

    def score(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(self.pipeline.score(x, y))


def _probe(backend: str, max_iter: int, tol: float, device: str, warm_start: bool):
    if backend == "torch":
        return TorchLogisticProbe(max_iter=max_iter, tol=tol, device=device)
    return _SklearnProbe(max_iter=max_iter, tol=tol, warm_start=warm_start)


def linear_probe(
    train_features: ArrayLike,
    train_labels: ArrayLike,
    val_features: ArrayLike,
    val_labels: ArrayLike,
    *,
    num_classes: int,
    test_features: ArrayLike | None = None,
    test_labels: ArrayLike | None = None,
    l2_grid: ArrayLike = np.logspace(-6, 5, 12),  # noqa: B008
    max_iter: int = 1000,
    tol: float = 1e-4,
    backend: str = "sklearn",
    device: str = "cpu",
) -> LinearProbeResult:
    """Kornblith et al.'s fixed-feature protocol, scaled down.

    For each strength :math:`\\lambda` in ``l2_grid`` the features are standardised with the
    training split's mean and standard deviation and a multinomial logistic regression is fitted
    on the training split by L-BFGS, minimising the per-example objective

    .. math::
        \\frac{1}{n}\\sum_{i=1}^{n} -\\log \\operatorname{softmax}(W x_i + b)_{y_i}
        + \\frac{\\lambda}{2}\\lVert W\\rVert_F^2

    (the bias is not penalised), i.e. scikit-learn's ``LogisticRegression`` with
    :math:`C = 1/(\\lambda n)`. Fits run from the strongest to the weakest penalty, each warm-started
    from the previous solution. The strength with the highest validation accuracy wins; ties
    go to the stronger penalty. With a test split, the scaler and the regression are then refit
    on train + validation with the same :math:`\\lambda` (so :math:`C = 1/(\\lambda (n_\\text{train}
    + n_\\text{val}))`, the same per-example penalty) and scored on the test split.

    Args:
        train_features: (n_train, D) features of the training split.
        train_labels: (n_train,) integer labels in ``[0, num_classes)``.
        val_features: (n_val, D) features of the validation split.
        val_labels: (n_val,) labels.
        num_classes: number of classes (checked against the labels, never inferred).
        test_features: optional (n_test, D) features of the test split.
        test_labels: optional (n_test,) labels; given exactly when ``test_features`` is.
        l2_grid: candidate strengths :math:`\\lambda > 0`.
        max_iter: L-BFGS iteration limit per fit (non-converged fits are flagged in the grid).
        tol: L-BFGS stops when the largest absolute gradient entry is at most ``tol``.
        backend: ``"sklearn"`` (scikit-learn on the CPU) or ``"torch"``
            (:class:`TorchLogisticProbe` on ``device``: the same objective, strengths and
            selection, so a GPU run needs no host round trip per fit; agreement with
            scikit-learn is tested in ``tests/transfer/test_linear_probe_torch.py``).
        device: where the torch backend computes (ignored by scikit-learn).

    Returns:
        A :class:`LinearProbeResult`.
    """
    x_train = _as_numpy(train_features, "train_features", 2).astype(np.float64)
    y_train = _as_numpy(train_labels, "train_labels", 1).astype(np.int64)
    x_val = _as_numpy(val_features, "val_features", 2).astype(np.float64)
    y_val = _as_numpy(val_labels, "val_labels", 1).astype(np.int64)
    _check_labels(y_train, x_train, "train", num_classes)
    _check_labels(y_val, x_val, "val", num_classes)
    if x_val.shape[1] != x_train.shape[1]:
        raise ValueError(f"train has {x_train.shape[1]} features, val {x_val.shape[1]}")
    if len(np.unique(y_train)) < 2:
        raise ValueError("train_labels must contain at least two classes")
    if len(y_val) == 0:
        raise ValueError("the validation split is empty: no way to choose the L2 strength")
    if (test_features is None) != (test_labels is None):
        raise ValueError("give both test_features and test_labels, or neither")
    grid_values = np.sort(np.asarray(l2_grid, dtype=np.float64).ravel())[::-1]
    if grid_values.size == 0 or np.any(grid_values <= 0):
        raise ValueError(f"l2_grid must hold positive strengths, got {np.asarray(l2_grid)}")

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    model = _probe(backend, max_iter, tol, device, warm_start=True)
    rows = []
    n_train = len(y_train)
    for l2 in grid_values:
        model.l2 = float(l2)
        model.fit(x_train, y_train)
        rows.append(
            {
                "l2": float(l2),
                "C": float(1.0 / (l2 * n_train)),
                "train_accuracy": model.score(x_train, y_train),
                "val_accuracy": model.score(x_val, y_val),
                "n_iter": model.n_iter_,
                "converged": model.n_iter_ < max_iter,
            }
        )
    grid = pd.DataFrame(rows)
    # rows run from the strongest penalty down, so idxmax's first maximum is the strongest tie
    best = int(grid["val_accuracy"].idxmax())
    grid["selected"] = grid.index == best
    best_l2 = float(grid.loc[best, "l2"])

    test_accuracy: float | None = None
    test_mpc: float | None = None
    refit_c: float | None = None
    if test_features is not None and test_labels is not None:
        x_test = _as_numpy(test_features, "test_features", 2).astype(np.float64)
        y_test = _as_numpy(test_labels, "test_labels", 1).astype(np.int64)
        _check_labels(y_test, x_test, "test", num_classes)
        x_all = np.concatenate([x_train, x_val])
        y_all = np.concatenate([y_train, y_val])
        refit_c = 1.0 / (best_l2 * len(y_all))
        final = _probe(backend, max_iter, tol, device, warm_start=False)
        final.l2 = best_l2
        final.fit(x_all, y_all)
        test_accuracy = final.score(x_test, y_test)
        test_mpc = mean_per_class_accuracy(
            torch.as_tensor(np.asarray(final.predict(x_test))), torch.as_tensor(y_test)
        )

    return LinearProbeResult(
        best_C=float(grid.loc[best, "C"]),
        val_accuracy=float(grid.loc[best, "val_accuracy"]),
        test_accuracy=test_accuracy,
        grid=grid,
        best_l2=best_l2,
        refit_C=refit_c,
        test_mean_per_class_accuracy=test_mpc,
    )
