"""One factory for every backbone: our small convnets by name, timm models by ``arch.tag``.

Names registered here (``alexnet_small``, ``resnet_small``) are built by their builder; any other
name that timm knows (an architecture such as ``resnet18`` or a weight tag such as
``resnet50.tv_in1k``) is wrapped by :class:`survey_lib.models.timm_backbone.TimmBackbone`.
timm is imported only when such a name is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from survey_lib.models.base import TransferModel

ModelBuilder = Callable[..., TransferModel]

_REGISTRY: dict[str, ModelBuilder] = {}


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator registering ``builder(num_classes, in_chans, **kwargs) -> TransferModel``."""

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = builder
        return builder

    return decorator


def list_models() -> list[str]:
    """Names of the registered models (timm names are accepted too, see :func:`create_model`)."""
    return sorted(_REGISTRY)


def _unknown_model_error(name: str) -> ValueError:
    return ValueError(
        f"unknown model {name!r}: registered models are {list_models()}; any timm architecture "
        "or pretrained tag 'arch.tag' (e.g. 'resnet50.tv_in1k', see timm.list_pretrained()) "
        "is accepted too"
    )


def _load_local_weights(model: TransferModel, path: Path) -> None:
    """Load a saved ``state_dict`` into one of our models, keeping a fresh head on mismatch."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    own = model.state_dict()
    prefix = f"{model.classifier_name}."
    head_mismatch = any(
        key.startswith(prefix) and key in own and own[key].shape != value.shape
        for key, value in state.items()
    )
    if head_mismatch:  # a different number of classes: transfer everything but the head
        state = {k: v for k, v in state.items() if not k.startswith(prefix)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (head_mismatch and k.startswith(prefix))]
    if missing or unexpected:
        raise ValueError(
            f"weights file {path} does not fit {type(model).__name__}: "
            f"missing keys {missing}, unexpected keys {unexpected}"
        )


def create_model(
    name: str,
    num_classes: int,
    in_chans: int = 1,
    weights: str | Path | None = None,
    **kwargs: object,
) -> TransferModel:
    """Build a :class:`TransferModel` by name.

    Args:
        name: a registered name (:func:`list_models`) or a timm name, ``arch`` or ``arch.tag``.
        num_classes: size of the classifier.
        in_chans: number of input channels.
        weights: ``None`` for random initialisation. For our models, a path to a saved
            ``state_dict`` (``.pt``/``.pth``/``.safetensors``); a head of another size is
            dropped and kept freshly initialised. For timm models see
            :class:`~survey_lib.models.timm_backbone.TimmBackbone` (``"pretrained"``, the tag
            itself, or a local file loaded offline).
        **kwargs: passed to the model's builder.

    Returns:
        The model, in training mode.

    Raises:
        ValueError: unknown name (the message lists the valid ones) or bad arguments.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if not isinstance(in_chans, int) or in_chans < 1:
        raise ValueError(f"in_chans must be a positive int, got {in_chans!r}")
    if name in _REGISTRY:
        model = _REGISTRY[name](num_classes=num_classes, in_chans=in_chans, **kwargs)
        if weights is not None:
            path = Path(weights)
            if not path.is_file():
                raise ValueError(
                    f"weights for {name!r} must be None or the path of a saved state_dict; "
                    f"{str(weights)!r} is not a file"
                )
            _load_local_weights(model, path)
        return model

    import timm

    if not timm.is_model(name):
        raise _unknown_model_error(name)
    from survey_lib.models.timm_backbone import TimmBackbone

    return TimmBackbone(name, num_classes=num_classes, in_chans=in_chans, weights=weights, **kwargs)
