"""Any timm model as a :class:`TransferModel`, its units taken from timm's own layer grouping.

Pretrained weights come from the Hugging Face hub (or a URL) through timm, unless a local file is
given. Without a connection, timm's download retries for about a minute and then fails with the
hub's raw error; :func:`check_weights_available` fails at once instead when the weights are in
no local cache and the hub cannot be reached, naming the tag and the local-file override.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import timm
import torch
from timm.data import resolve_model_data_config
from timm.models._manipulate import group_parameters
from torch import nn

from survey_lib.models.base import TransferModel


class _UnitView(nn.Module):
    """The modules and loose parameters of one unit of a timm model, seen as one module.

    It shares (does not copy) the tensors of the wrapped model and is never registered as a
    child, so ``state_dict``, ``.to()`` and the optimiser see each tensor once.
    """

    def __init__(self, members: list[tuple[str, nn.Module | nn.Parameter]]) -> None:
        super().__init__()
        for path, member in members:
            key = path.replace(".", "_")
            if isinstance(member, nn.Parameter):
                self.register_parameter(key, member)
            else:
                self.add_module(key, member)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("the units of a timm model do not compose; call the model")


def _collapse(model: nn.Module, param_names: list[str]) -> list[str]:
    """The shortest module paths (or parameter names) covering exactly ``param_names``."""
    wanted = set(param_names)
    chosen: list[str] = []
    covered: set[str] = set()
    for pname in param_names:
        if pname in covered:
            continue
        parts = pname.split(".")
        for depth in range(1, len(parts)):
            prefix = ".".join(parts[:depth])
            names = {f"{prefix}.{n}" for n, _ in model.get_submodule(prefix).named_parameters()}
            if names <= wanted:
                chosen.append(prefix)
                covered |= names
                break
        else:  # a parameter whose owner also holds parameters of other units (or the root)
            chosen.append(pname)
            covered.add(pname)
    return chosen


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights that are neither cached locally nor downloadable from here."""


def _offline_message(name: str, why: str) -> str:
    return (
        f"cannot get the pretrained weights of {name!r}: {why}. Either download them on a "
        f"machine with internet (`huggingface-cli download timm/{name}`, or run once there) and "
        "copy the Hugging Face cache (~/.cache/huggingface, $HF_HOME) here, or give a local "
        "weights file in timm's key layout: create_model(..., weights='/path/model.safetensors'); "
        "in a notebook's source mapping `weights: /path/model.safetensors` (make reproduce "
        "SET=\"source.weights=/path/model.safetensors\")"
    )


def _reachable(url: str, timeout: float) -> bool:
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def check_weights_available(name: str, timeout: float = 3.0) -> None:
    """Return when timm can load the pretrained weights of ``name`` (they are in the local
    Hugging Face or torch hub cache, or the hub answers within ``timeout`` seconds); else raise
    :class:`WeightsUnavailableError` at once, naming the tag and the local-file override.

    ``HF_HUB_OFFLINE=1`` counts as no connection."""
    import huggingface_hub
    import torch
    from huggingface_hub import constants
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None:
        return  # timm reports an unknown tag itself
    hub_id, url = getattr(cfg, "hf_hub_id", None), getattr(cfg, "url", None)
    if hub_id:
        for filename in (getattr(cfg, "hf_hub_filename", None), "model.safetensors",
                         "open_clip_pytorch_model.bin", "pytorch_model.bin"):
            if filename and isinstance(
                huggingface_hub.try_to_load_from_cache(hub_id, filename), str
            ):
                return
    if url and (Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name).exists():
        return
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    endpoint = constants.ENDPOINT if hub_id else (url or constants.ENDPOINT)
    if hub_id and (offline or constants.HF_HUB_OFFLINE):
        raise WeightsUnavailableError(
            _offline_message(name, "HF_HUB_OFFLINE is set and they are not in the local cache")
        )
    if not _reachable(endpoint, timeout):
        raise WeightsUnavailableError(
            _offline_message(
                name, f"{urlparse(endpoint).hostname} cannot be reached (no internet?) and they "
                "are not in the local cache"
            )
        )


def _weights_source(name: str, weights: str | Path | None) -> tuple[bool, dict | None, str]:
    """``(pretrained, pretrained_cfg_overlay, description)`` for timm.create_model."""
    if weights is None:
        return False, None, "random"
    if str(weights) in ("pretrained", name):
        return True, None, f"timm:{name}"
    path = Path(weights)
    if not path.is_file():
        raise ValueError(
            f"weights for {name!r} must be None, 'pretrained', the tag {name!r} itself, or an "
            f"existing local weights file; {str(weights)!r} is none of these"
        )
    # 'source' is cleared so that timm takes the file and never the hub.
    return True, {"file": str(path), "source": ""}, f"file:{path}"


class TimmBackbone(TransferModel):
    """A timm model with the transfer hooks of :class:`TransferModel`.

    Units are timm's coarse layer groups, ``model.group_matcher(coarse=True)`` resolved by
    ``timm.models._manipulate.group_parameters`` (the grouping timm uses for layer-wise learning
    rate decay): ``stem``, ``stage1``..``stageK`` (one per matched block group: the residual
    stages of a ResNet, the blocks of a ViT), and ``head`` (everything after the last block:
    classifier, final norm). The units do not compose (``sequential=False``).

    ``forward_features`` returns pooled pre-logit features, ``forward_head(pre_logits=True)`` of
    timm applied to its unpooled feature map; ``forward_head`` applies timm's classifier
    (``get_classifier()``) to them.

    Preprocessing follows the weights: ``pretrained_cfg`` holds ``mean``, ``std``,
    ``input_size``, ``interpolation``, ``crop_pct``, ``crop_mode`` from
    ``timm.data.resolve_model_data_config``. When ``in_chans`` differs from the weights' three
    channels, timm adapts the first convolution (summing or repeating its filters) and mean and
    std are replaced by their channel average, repeated ``in_chans`` times.

    Args:
        name: timm name, ``arch`` or ``arch.tag`` (e.g. ``"resnet50.tv_in1k"``).
        num_classes: outputs of the new classifier.
        in_chans: input channels.
        weights: ``None`` (random init), ``"pretrained"`` or ``name`` (timm download from the
            hub), or a local ``.safetensors``/``.pth`` file in timm's key layout, loaded offline
            through ``pretrained_cfg_overlay=dict(file=path)``. A head of another size in the
            file is dropped by timm.
        **kwargs: passed to ``timm.create_model`` (e.g. ``drop_rate``, ``img_size``).
    """

    sequential = False

    def __init__(
        self,
        name: str,
        num_classes: int,
        in_chans: int = 1,
        weights: str | Path | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__()
        arch, _, tag = name.partition(".")
        if not timm.is_model(arch):
            raise ValueError(f"{arch!r} is not a timm architecture (see timm.list_models())")
        if tag and name not in timm.list_pretrained(f"{arch}.*"):
            raise ValueError(
                f"{name!r} is not a timm weight tag; tags of {arch!r}: {timm.list_pretrained(f'{arch}.*')}"
            )
        pretrained, overlay, source = _weights_source(name, weights)
        from_hub = pretrained and overlay is None
        if from_hub:
            check_weights_available(name)
        try:
            self.model = timm.create_model(
                name,
                pretrained=pretrained,
                pretrained_cfg_overlay=overlay,
                num_classes=num_classes,
                in_chans=in_chans,
                **kwargs,
            )
        except (OSError, ValueError) as exc:
            hub_error = type(exc).__module__.startswith(("huggingface_hub", "requests", "urllib"))
            if not (from_hub and (hub_error or isinstance(exc, (ConnectionError, TimeoutError)))):
                raise
            raise WeightsUnavailableError(
                _offline_message(name, f"the download failed ({type(exc).__name__}: {exc})")
            ) from exc
        if not isinstance(self.model.get_classifier(), nn.Module):
            raise NotImplementedError(f"{name!r} has several classifiers; not supported")
        self.timm_name = name
        self.num_classes = num_classes
        self.feature_dim = int(
            getattr(self.model, "head_hidden_size", None) or self.model.num_features
        )
        self.pretrained_cfg = self._data_config(in_chans, source)
        groups = group_parameters(self.model, self.model.group_matcher(coarse=True))
        ordered = [groups[k] for k in sorted(groups)]
        if len(ordered) < 2:
            raise NotImplementedError(f"timm groups {name!r} into fewer than two units")
        names = ["stem"] + [f"stage{i}" for i in range(1, len(ordered) - 1)] + ["head"]
        self.unit_names = tuple(names)
        self._unit_members = {
            unit: _collapse(self.model, params) for unit, params in zip(names, ordered)
        }

    def _data_config(self, in_chans: int, source: str) -> dict:
        cfg = dict(resolve_model_data_config(self.model))
        for key in ("mean", "std"):
            values = tuple(float(v) for v in cfg[key])
            if len(values) != in_chans:
                values = (sum(values) / len(values),) * in_chans
            cfg[key] = values
        cfg["input_size"] = (in_chans, *tuple(cfg["input_size"])[1:])
        cfg["architecture"] = self.timm_name
        cfg["weights"] = source
        return cfg

    def _view(self, unit: str) -> _UnitView:
        members: list[tuple[str, nn.Module | nn.Parameter]] = []
        for path in self._unit_members[unit]:
            try:
                members.append((path, self.model.get_submodule(path)))
            except AttributeError:
                members.append((path, self.model.get_parameter(path)))
        return _UnitView(members)

    def __getattr__(self, name: str) -> object:
        try:
            return super().__getattr__(name)
        except AttributeError:
            members = self.__dict__.get("_unit_members")
            if members is not None and name in members:
                return self._view(name)
            raise

    def units(self) -> list[tuple[str, nn.Module]]:
        return [(unit, self._view(unit)) for unit in self.unit_names]

    def unit_output(self, name: str) -> nn.Module:
        """The unit's module that runs last (in timm's registration order, which follows the
        forward pass); its output stands for the unit's output, e.g. ``layer2`` for ``stage2``
        of a ResNet and ``bn1`` for its stem. A hook on a unit view would never fire."""
        if name not in self._unit_members:
            raise ValueError(f"unknown unit {name!r}; valid: {list(self.unit_names)}")
        members = set(self._unit_members[name])
        last = None
        for path, module in self.model.named_modules():
            if path in members:
                last = module
        if last is None:
            raise ValueError(f"unit {name!r} of {self.timm_name} holds only loose parameters")
        return last

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.get_classifier()(features)

    def get_classifier(self) -> nn.Module:
        return self.model.get_classifier()

    def set_classifier(self, head: nn.Module) -> None:
        current = self.model.get_classifier()
        path = next(p for p, m in self.model.named_modules() if m is current)
        parent, _, attr = path.rpartition(".")
        setattr(self.model.get_submodule(parent) if parent else self.model, attr, head)

    def reset_classifier(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        device = next(self.model.parameters()).device
        self.model.reset_classifier(num_classes)
        self.model.get_classifier().to(device)
        self.num_classes = num_classes
