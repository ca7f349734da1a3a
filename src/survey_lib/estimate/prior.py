r"""A stated prior for the time of one training step where nothing has been measured.

.. math::

    \hat t_c = t_0 + \frac{B_c \, F_c \, (1 + 2(1 - \phi_c) + \delta_c)}{R}

:math:`F_c` is the forward FLOPs of one image of configuration :math:`c` (architecture, image
size, input channels), counted by :class:`torch.utils.flop_counter.FlopCounterMode` on a
meta-device copy of the model (nothing is allocated or computed; convolutions and matrix
products only); :math:`B_c` the batch size; the backward pass costs twice the forward of the
trained units (the usual 1 : 2 rule), with :math:`\phi_c` the frozen share of the units
(:math:`f / (U - 1)` for :math:`f` frozen of :math:`U` units, 1 when only the head trains);
:math:`\delta_c = 1` for DELTA, which also runs the source network forward on each batch, else
0 (L2-SP's and BSS's extra work is small next to a convolutional network's).

**This is not fitted to anything.** :data:`ASSUMED_TFLOPS` (:math:`R`, the sustained training
throughput of a convolutional network in eager PyTorch with bf16 autocast on one
H100/H200-class GPU) and :data:`STEP_OVERHEAD_S` (:math:`t_0`, kernel launches, the optimiser
and on-device augmentation per step) are assumptions of this module, not measurements of this
code on any GPU: read every time from this prior as good to a factor of about 3. Once
``scripts/gpu_check.sh`` has measured a configuration, :mod:`survey_lib.estimate` uses the
measured time instead and says which numbers still come from the prior.
"""

from __future__ import annotations

import json
from functools import cache

from survey_lib.estimate.runs import FROZEN_ALL, StepConfig

#: Assumed sustained training throughput, in TFLOP/s, of one H100/H200-class GPU on the
#: convolutional networks here (about a tenth of the dense bf16 peak; an assumption).
ASSUMED_TFLOPS = 80.0
#: Assumed fixed cost of one optimizer step, in seconds, whatever the network (an assumption).
STEP_OVERHEAD_S = 0.005
#: Where the prior's numbers come from, printed beside every estimate that uses them.
PRIOR_SOURCE = (
    f"prior, fitted to no measurement: forward FLOPs counted on the model x 3 (backward) / "
    f"an assumed {ASSUMED_TFLOPS:g} TFLOP/s + an assumed {STEP_OVERHEAD_S * 1e3:g} ms per step "
    f"(survey_lib.estimate.prior; good to about 3x)"
)


@cache
def model_profile(model: str, size: int, channels: int, model_kwargs: str = "{}") -> tuple[float, int]:
    """Forward FLOPs of one ``channels`` x ``size`` x ``size`` image through ``model`` (a
    registered name or a timm architecture, built with ``model_kwargs`` as JSON) and its
    number of transferable units (the classifier included), from a meta-device copy."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from survey_lib.models import create_model

    with torch.device("meta"):
        net = create_model(model, num_classes=10, in_chans=int(channels), weights=None,
                           **json.loads(model_kwargs))  # fmt: skip
        x = torch.empty(1, int(channels), int(size), int(size))
    net.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    return float(counter.get_total_flops()), len(list(net.units()))


def frozen_share(frozen: int | str, units: int) -> float:
    """The share :math:`\\phi` of a model's trained units that are frozen."""
    if frozen == FROZEN_ALL:
        return 1.0
    return min(1.0, int(frozen) / max(1, units - 1))


def prior_step_seconds(step: StepConfig, *, default_size: int = 32) -> float:
    """:math:`\\hat t_c` of the module docstring for one step configuration (``default_size``
    where the protocol gives no image size)."""
    size = step.size or default_size
    flops, units = model_profile(step.model, int(size), int(step.channels), step.model_kwargs)
    factor = 1.0 + 2.0 * (1.0 - frozen_share(step.frozen, units))
    factor += 1.0 if step.method == "delta" else 0.0
    return STEP_OVERHEAD_S + step.batch_size * flops * factor / (ASSUMED_TFLOPS * 1e12)


__all__ = ["ASSUMED_TFLOPS", "STEP_OVERHEAD_S", "PRIOR_SOURCE", "model_profile",
           "frozen_share", "prior_step_seconds"]  # fmt: skip
