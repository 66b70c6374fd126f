r"""Optimal transport maps as gradients of convex networks (Brenier maps).

:class:`BrenierMap` fits the :math:`W_2`-optimal map between two sample sets with an
mGradNet; :class:`GaussianMap` is the closed-form linear (Bures) baseline;
:mod:`otgrad.ot.metrics` scores maps against references.
"""

from . import losses, metrics
from .brenier import LOSSES, BrenierMap, default_network
from .gaussian import GaussianMap, bures_map
from .metrics import cosine_similarity, l2_uvp, transport_cost, wasserstein2

__all__ = [
    "BrenierMap",
    "GaussianMap",
    "bures_map",
    "default_network",
    "LOSSES",
    "losses",
    "metrics",
    "l2_uvp",
    "cosine_similarity",
    "wasserstein2",
    "transport_cost",
]
