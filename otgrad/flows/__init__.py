r"""Convex potential flows: normalizing flows whose blocks are strongly convex mGradNets.

The log-density needs :math:`\log\det` of each block's Jacobian, which for an mGradNet is
available in closed form (a symmetric positive definite matrix, or its matrix-vector
product); sampling inverts each block by Newton's method on a strongly convex problem.
:class:`ConvexPotentialFlow` is the estimator; :class:`FlowNetwork` the module it fits.
"""

from .actnorm import ActNorm
from .estimator import ConvexPotentialFlow
from .flow import LOGDETS, NETS, FlowDistribution, FlowNetwork, block_networks

__all__ = [
    "ActNorm",
    "ConvexPotentialFlow",
    "FlowNetwork",
    "FlowDistribution",
    "block_networks",
    "NETS",
    "LOGDETS",
]
