"""Learning-rate schedules as pure functions of the optimisation step.

Cosine annealing (Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts",
ICLR 2017, https://arxiv.org/abs/1608.03983), without restarts, after an optional linear
warm-up of :math:`w` steps (Goyal et al., "Accurate, Large Minibatch SGD", 2017,
https://arxiv.org/abs/1706.02677):

.. math::
    \\eta_s = \\eta \\cdot \\min\\!\\left(1, \\tfrac{s+1}{w}\\right) \\cdot
    \\tfrac12\\left(1 + \\cos\\!\\left(\\pi\\,\\tfrac{\\max(0, s-w)}{S-w}\\right)\\right)

for step :math:`s` of :math:`S`. The step schedule multiplies by :math:`\\gamma` at each
milestone :math:`m_j` passed: :math:`\\eta_s = \\eta\\,\\gamma^{|\\{j: s \\ge m_j\\}|}`.
"""

from __future__ import annotations

import math

from survey_lib.train.config import TrainConfig


def milestone_steps(config: TrainConfig, total_steps: int, steps_per_epoch: int) -> list[int]:
    """The step schedule's milestones converted to optimisation steps."""
    ms = config.step_milestones
    if all(m < 1 for m in ms):
        return [round(m * total_steps) for m in ms]
    return [round(m * steps_per_epoch) for m in ms]


def lr_factor(step: int, config: TrainConfig, total_steps: int, steps_per_epoch: int) -> float:
    """Multiplier of the base learning rate at optimisation step ``step`` (0-based).

    Args:
        step: the step about to be taken, in ``[0, total_steps)``.
        config: supplies ``schedule``, ``warmup_epochs``, ``step_milestones`` and ``gamma``.
        total_steps: number of optimisation steps in the run.
        steps_per_epoch: steps per epoch (converts epochs to steps).

    Returns:
        The factor in (0, 1] that multiplies every parameter group's base lr.
    """
    if total_steps <= 0 or steps_per_epoch <= 0:
        raise ValueError(
            f"total_steps and steps_per_epoch must be > 0, got {total_steps}, {steps_per_epoch}"
        )
    warm = round(config.warmup_epochs * steps_per_epoch)
    factor = min(1.0, (step + 1) / warm) if warm > 0 else 1.0
    if config.schedule == "cosine":
        span = max(1, total_steps - warm)
        progress = min(1.0, max(0, step - warm) / span)
        factor *= 0.5 * (1.0 + math.cos(math.pi * progress))
    elif config.schedule == "step":
        passed = sum(step >= m for m in milestone_steps(config, total_steps, steps_per_epoch))
        factor *= config.gamma**passed
    return factor
