"""Transfer by copying layers (freeze or fine-tune) and by fixed features (linear probe)."""

from survey_lib.transfer.layers import (
    freeze_units,
    frozen_unit_count,
    lr_multipliers_for,
    set_train_mode,
    transfer_units,
    unit_param_groups,
)
from survey_lib.transfer.linear_probe import LinearProbeResult, linear_probe

__all__ = [
    "LinearProbeResult",
    "freeze_units",
    "frozen_unit_count",
    "linear_probe",
    "lr_multipliers_for",
    "set_train_mode",
    "transfer_units",
    "unit_param_groups",
]
