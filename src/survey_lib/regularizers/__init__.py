"""Transfer regularizers of the survey's sections 5.2.1 and 5.2.2.

Each is an ``nn.Module`` built from the pretrained model by :func:`create_regularizer`; its
``penalty(ctx)`` plugs into ``survey_lib.train.fit(..., penalty=...)``:

* ``none`` — plain fine-tuning;
* ``l2`` — weight decay towards zero (:mod:`.l2`);
* ``l2_sp`` — weight decay towards the pretrained weights (:mod:`.l2_sp`);
* ``l2_sp_lower`` — L2-SP on the lower units, L2 above (:mod:`.l2_sp_lower`);
* ``delta`` / ``delta_unweighted`` — feature-map distance to the source (:mod:`.delta`);
* ``bss`` — Batch Spectral Shrinkage (:mod:`.bss`);
* ``stochnorm`` — Stochastic Normalization, a model transform (:mod:`.stochnorm`).
"""

from survey_lib.regularizers.base import CombinedRegularizer, Regularizer
from survey_lib.regularizers.bss import BSS, smallest_squared_singular_values
from survey_lib.regularizers.delta import DELTA, channel_attention, feature_map_distance
from survey_lib.regularizers.l2 import L2
from survey_lib.regularizers.l2_sp import L2SP
from survey_lib.regularizers.l2_sp_lower import L2SPLower
from survey_lib.regularizers.none import NoRegularizer
from survey_lib.regularizers.registry import (
    create_regularizer,
    hyperparameters,
    list_regularizers,
)
from survey_lib.regularizers.stochnorm import (
    StochNorm,
    StochNorm1d,
    StochNorm2d,
    convert_to_stochnorm,
)

__all__ = [
    "BSS",
    "DELTA",
    "L2",
    "L2SP",
    "CombinedRegularizer",
    "L2SPLower",
    "NoRegularizer",
    "Regularizer",
    "StochNorm",
    "StochNorm1d",
    "StochNorm2d",
    "channel_attention",
    "convert_to_stochnorm",
    "create_regularizer",
    "feature_map_distance",
    "hyperparameters",
    "list_regularizers",
    "smallest_squared_singular_values",
]
