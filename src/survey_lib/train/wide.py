"""A "wide" model: K networks of one architecture as one network with K-fold channels.

Model batching after Wang et al., "Horizontally Fused Training Array" (HFTA), MLSys 2021,
https://proceedings.mlsys.org/paper_files/paper/2021/hash/a97da629b098b75c294dffdc3e463904-Abstract.html:
K independent networks become one whose every tensor carries the K networks' channels side by
side, model-major (run ``k`` owns channels ``k*C .. (k+1)*C - 1``):

* ``Conv2d(C_in, C_out, groups=g)`` becomes ``Conv2d(K*C_in, K*C_out, groups=K*g)``: group
  ``k*g + i`` of the wide convolution is group ``i`` of network ``k``;
* ``BatchNorm(C)`` becomes ``BatchNorm(K*C)``: batch norm is per channel, so each network keeps
  its own batch statistics, affine parameters and running statistics;
* ``Linear(d_in, d_out)`` becomes :class:`WideLinear`, a batched matrix product
  :math:`y_{b,k} = W_k x_{b,k} + c_k` over the ``(B, K*d_in)`` input viewed as ``(B, K, d_in)``;
* modules without parameters of their own (activations, pooling, dropout, ``Flatten``,
  containers and blocks whose ``forward`` only composes submodules and adds tensors) are kept:
  they act on each channel (or element) alone, and flattening a model-major ``(B, K*C, h, w)``
  tensor gives K contiguous per-network blocks in each network's own order.

:func:`widen` checks the result: a wide forward pass in eval mode must reproduce every
network's own output, so an architecture that mixes channels somewhere (a softmax over
channels, a reshape in a custom ``forward``) is refused rather than trained wrongly.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch
from torch import nn


class WideLinear(nn.Module):
    """K linear maps applied to K blocks of the input: ``(B, K*d_in) -> (B, K*d_out)``.

    .. math:: y_{b,k,:} = W_k\\, x_{b,k,:} + c_k, \\quad W \\in \\mathbb R^{K\\times d_{out}
        \\times d_{in}},\\; c \\in \\mathbb R^{K\\times d_{out}}
    """

    def __init__(self, k: int, in_features: int, out_features: int, bias: bool) -> None:
        super().__init__()
        self.k, self.in_features, self.out_features = k, in_features, out_features
        self.weight = nn.Parameter(torch.empty(k, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(k, out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xk = x.reshape(b, self.k, self.in_features).transpose(0, 1)  # (K, B, d_in)
        wt = self.weight.transpose(1, 2)  # (K, d_in, d_out)
        if self.bias is None:
            y = torch.bmm(xk, wt)
        else:
            y = torch.baddbmm(self.bias.unsqueeze(1), xk, wt)
        return y.transpose(0, 1).reshape(b, self.k * self.out_features)


class WideDropout(nn.Module):
    """Dropout with one random stream per run, so each run draws the masks ``fit`` draws.

    Inverted dropout, :math:`y = x \\odot m / (1-p)`, :math:`m_j \\sim \\mathrm{Bernoulli}(1-p)`
    (Srivastava et al., JMLR 2014, https://jmlr.org/papers/v15/srivastava14a.html). ``fit``
    draws ``m`` for a ``(B, D)`` input from the global generator seeded with the run's seed
    (``empty_like(x).bernoulli_(1 - p)``, then ``div_(1 - p)``: PyTorch's CPU dropout); here
    run ``k``'s block of the ``(B, K*D)`` input gets the same draw from ``generators[k]``, so on
    the CPU the masks are the sequential run's, bit for bit. Without generators it is
    ``F.dropout`` on the whole wide tensor (equal in distribution only).
    """

    def __init__(self, p: float, k: int) -> None:
        super().__init__()
        self.p, self.k = float(p), k
        self.generators: list[torch.Generator] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.generators is None or x.ndim != 2:
            return nn.functional.dropout(x, self.p, training=True)
        b, d = x.shape[0], x.shape[1] // self.k
        masks = [
            torch.empty((b, d), dtype=x.dtype, device=x.device)
            .bernoulli_(1 - self.p, generator=g)
            .div_(1 - self.p)
            for g in self.generators
        ]
        return x * torch.cat(masks, 1)


def set_dropout_generators(wide: nn.Module, generators: list[torch.Generator]) -> None:
    """Give every :class:`WideDropout` of ``wide`` the runs' streams (shared, as in ``fit``)."""
    for module in wide.modules():
        if isinstance(module, WideDropout):
            module.generators = generators


def _plain(module: nn.Module, base: type[nn.Module]) -> bool:
    """``module`` is ``base`` or a subclass that does not change ``forward``."""
    return isinstance(module, base) and type(module).forward is base.forward


def _wide_leaf(module: nn.Module, k: int) -> nn.Module | None:
    """The wide counterpart of a leaf with parameters (``None``: keep the module as it is)."""
    if _plain(module, nn.Conv2d):
        m: nn.Conv2d = module
        return nn.Conv2d(
            k * m.in_channels, k * m.out_channels, m.kernel_size, stride=m.stride,
            padding=m.padding, dilation=m.dilation, groups=k * m.groups,
            bias=m.bias is not None, padding_mode=m.padding_mode,
        )  # fmt: skip
    if _plain(module, nn.Dropout):
        return WideDropout(module.p, k)
    if _plain(module, nn.Linear):
        return WideLinear(k, module.in_features, module.out_features, module.bias is not None)
    for base in (nn.BatchNorm2d, nn.BatchNorm1d):
        if _plain(module, base):
            bn: nn.modules.batchnorm._BatchNorm = module
            return base(
                k * bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                track_running_stats=bn.track_running_stats,
            )  # fmt: skip
    own = list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))
    if own:
        raise ValueError(
            f"fit_many cannot widen {type(module).__name__} (it holds {[n for n, _ in own]}); "
            "supported modules with parameters: Conv2d, Linear, BatchNorm1d/2d"
        )
    return None


def _own_tensors(module: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    yield from module.named_parameters(recurse=False)
    for name, buf in module.named_buffers(recurse=False):
        if buf is not None:
            yield name, buf


def per_run(tensor: torch.Tensor, k: int) -> torch.Tensor:
    """A view of a wide tensor with the runs on dim 0: ``(K, ...)`` (a split of dim 0)."""
    return tensor.unflatten(0, (k, tensor.shape[0] // k))


def widen(models: Sequence[nn.Module]) -> nn.Module:
    """One wide network holding the parameters and buffers of ``models`` (copied).

    Raises:
        ValueError: the models differ in structure or shapes, or hold a module with parameters
            that cannot be widened (only Conv2d, Linear and BatchNorm1d/2d can).
    """
    k = len(models)
    first = models[0]
    names = [n for n, _ in first.named_modules()]
    for other in models[1:]:
        if type(other) is not type(first) or [n for n, _ in other.named_modules()] != names:
            raise ValueError("fit_many needs models of one class with the same modules")
        shapes_a = {n: t.shape for n, t in first.state_dict().items()}
        shapes_b = {n: t.shape for n, t in other.state_dict().items()}
        if shapes_a != shapes_b:
            diff = sorted(n for n in shapes_a if shapes_a[n] != shapes_b.get(n))
            raise ValueError(f"fit_many needs models with equal shapes; differ: {diff[:5]}")
    wide = copy.deepcopy(first)
    for name, module in list(wide.named_modules()):
        if not name or list(module.children()):
            if list(_own_tensors(module)):
                raise ValueError(f"fit_many cannot widen {name or 'the model'}: it holds tensors")
            continue
        replacement = _wide_leaf(module, k)
        if replacement is None:
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = wide.get_submodule(parent_name) if parent_name else wide
        setattr(parent, attr, replacement.to(next(first.parameters()).device))
    load_runs(wide, models)
    return wide


def wide_leaves(wide: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of the wide model's leaves that hold tensors."""
    return [(n, m) for n, m in wide.named_modules() if n and list(_own_tensors(m))]


@torch.no_grad()
def load_runs(wide: nn.Module, models: Sequence[nn.Module]) -> None:
    """Copy every run's parameters and buffers into its slice of the wide model."""
    k = len(models)
    for name, leaf in wide_leaves(wide):
        for attr, tensor in _own_tensors(leaf):
            for run, model in enumerate(models):
                source = getattr(model.get_submodule(name), attr)
                if tensor.ndim == 0:  # BatchNorm's num_batches_tracked
                    tensor.copy_(source)
                else:
                    per_run(tensor, k)[run].copy_(source.reshape(per_run(tensor, k)[run].shape))


@torch.no_grad()
def store_runs(wide: nn.Module, models: Sequence[nn.Module]) -> None:
    """Copy each run's slice of the wide model back into its own model (in place)."""
    k = len(models)
    for name, leaf in wide_leaves(wide):
        for attr, tensor in _own_tensors(leaf):
            for run, model in enumerate(models):
                target = getattr(model.get_submodule(name), attr)
                if tensor.ndim == 0:
                    target.copy_(tensor)
                else:
                    target.copy_(per_run(tensor, k)[run].reshape(target.shape))


def split_runs(output: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, K*D)`` wide output -> ``(B, K, D)``."""
    return output.reshape(output.shape[0], k, -1)


@torch.no_grad()
def check_widened(
    wide: nn.Module, models: Sequence[nn.Module], sample: torch.Tensor, atol: float = 1e-4
) -> None:
    """Raise ``ValueError`` unless the wide network reproduces each model on ``sample``.

    ``sample`` is a ``(B, C, H, W)`` float batch; run ``k`` gets ``sample`` rolled by ``k``
    along the batch (different inputs per run). Compared in eval mode, fp32.
    """
    k = len(models)
    modes = [(m, m.training) for net in (wide, *models) for m in net.modules()]
    try:
        wide.eval()
        inputs = [sample.roll(run, 0) for run in range(k)]
        out = split_runs(wide(torch.cat(inputs, 1)), k)
        for run, model in enumerate(models):
            model.eval()
            expected = model(inputs[run])
            if not torch.allclose(out[:, run], expected, atol=atol, rtol=1e-3):
                gap = float((out[:, run] - expected).abs().max())
                raise ValueError(
                    f"fit_many: the wide {type(models[0]).__name__} does not reproduce run "
                    f"{run} (max gap {gap:.3g}); its forward mixes channels or reshapes, so it "
                    "cannot be batched: train it with fit"
                )
    finally:
        for module, mode in modes:
            module.training = mode
