"""The transfer hooks every backbone exposes (see Yosinski et al. 2014 for the unit view)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn


class TransferModel(nn.Module):
    """A classifier seen as an ordered list of transferable units, the last being the head.

    Subclasses set ``self.unit_names`` (ordered; the last name is the classifier) and register
    each unit as a child module of that name, and set ``feature_dim`` and ``num_classes``.

    The contract used by :mod:`survey_lib.transfer` and :mod:`survey_lib.train`:

    * ``units()`` — ordered ``(name, module)`` pairs, classifier last;
    * ``forward_features(x)`` — penultimate features, shape (N, feature_dim);
    * ``forward_head(features)`` — logits;
    * ``reset_classifier(num_classes)`` — a freshly initialised head; ``get_classifier()`` and
      ``set_classifier(head)`` — the head module itself;
    * ``unit_output(name)`` — the module whose forward output is the unit's output (where
      feature-map regularizers such as DELTA hook); the unit itself for sequential models;
    * ``forward_units(x, start, end)`` — the composition of units ``start..end-1``, available
      when ``sequential`` is true (the units compose in order, ``forward == forward_units(x, 0)``).
    """

    unit_names: tuple[str, ...] = ()
    feature_dim: int = 0
    num_classes: int = 0
    sequential: bool = True
    #: preprocessing (mean, std, input_size, ...) of the weights, when the model has some.
    pretrained_cfg: dict | None = None

    def units(self) -> list[tuple[str, nn.Module]]:
        return [(name, getattr(self, name)) for name in self.unit_names]

    def iter_unit_parameters(self) -> Iterator[tuple[int, str, nn.Parameter]]:
        """Yield ``(unit_index, qualified_name, parameter)`` for every parameter of every unit."""
        for index, (name, module) in enumerate(self.units()):
            for pname, param in module.named_parameters():
                yield index, f"{name}.{pname}", param

    @property
    def classifier_name(self) -> str:
        return self.unit_names[-1]

    def forward_units(self, x: torch.Tensor, start: int = 0, end: int | None = None) -> torch.Tensor:
        if not self.sequential:
            raise NotImplementedError(f"{type(self).__name__} does not compose unit by unit")
        for _, module in self.units()[start:end]:
            x = module(x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_units(x, 0, len(self.unit_names) - 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.get_classifier()(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def unit_output(self, name: str) -> nn.Module:
        """The module whose output is unit ``name``'s output (the unit itself here)."""
        units = dict(self.units())
        if name not in units:
            raise ValueError(f"unknown unit {name!r}; valid: {list(units)}")
        return units[name]

    def get_classifier(self) -> nn.Module:
        """The classifier module (features -> logits)."""
        return getattr(self, self.classifier_name)

    def set_classifier(self, head: nn.Module) -> None:
        """Use ``head`` (features -> logits) as the classifier unit."""
        setattr(self, self.classifier_name, head)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier unit by a freshly initialised ``Linear(feature_dim, k)``."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        device = next(self.parameters()).device
        setattr(self, self.classifier_name, nn.Linear(self.feature_dim, num_classes).to(device))
        self.num_classes = num_classes
