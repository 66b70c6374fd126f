r"""Gradient networks: architectures that are, by construction, gradients of potentials.

All architectures subclass :class:`GradientNetwork` and take inputs of shape
``(*, dim)``. Monotone ones (``monotone=True``) are mGradNets: gradients of convex
functions.
"""

from .activations import (
    Activation,
    GroupActivation,
    Identity,
    LinearSpline,
    LogCoshSquare,
    Sigmoid,
    SigmoidMixture,
    Softmax,
    Softplus,
    Tanh,
    WSoftmax,
    WTanh,
)
from .base import GradientNetwork, check_input, set_validation, validation
from .baselines import CRR, ICGN, ICNN, RR, MLPPotential
from .cascade import GradNetC
from .combine import (
    ConicalSum,
    Difference,
    LipschitzShift,
    StronglyConvex,
    Sum,
    TransformedRidgeSum,
)
from .conv import ConvGradNet, MultiConv2d
from .modular import GradNetM
from .single import SingleLayerGradNet
from .structure import RidgeTerm, StructuredJacobian

__all__ = [
    "GradientNetwork",
    "SingleLayerGradNet",
    "GradNetC",
    "GradNetM",
    "Sum",
    "ConicalSum",
    "StronglyConvex",
    "LipschitzShift",
    "Difference",
    "TransformedRidgeSum",
    "ConvGradNet",
    "MultiConv2d",
    "ICNN",
    "ICGN",
    "CRR",
    "RR",
    "MLPPotential",
    "Activation",
    "Identity",
    "Tanh",
    "Sigmoid",
    "Softplus",
    "WTanh",
    "SigmoidMixture",
    "LinearSpline",
    "GroupActivation",
    "Softmax",
    "WSoftmax",
    "LogCoshSquare",
    "StructuredJacobian",
    "RidgeTerm",
    "check_input",
    "set_validation",
    "validation",
]
