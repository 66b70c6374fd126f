r"""Gradient networks: architectures that are, by construction, gradients of potentials.

All architectures subclass :class:`GradientNetwork` and take inputs of shape
``(*, dim)``. Monotone ones (``monotone=True``) are mGradNets: gradients of convex
functions. Every public name of the submodules is available here.
"""

from . import (
    activations,
    base,
    baselines,
    cascade,
    combine,
    conv,
    conv_modular,
    modular,
    single,
    structure,
)
from .activations import *  # noqa: F403
from .base import *  # noqa: F403
from .baselines import *  # noqa: F403
from .cascade import *  # noqa: F403
from .combine import *  # noqa: F403
from .conv import *  # noqa: F403
from .conv_modular import *  # noqa: F403
from .modular import *  # noqa: F403
from .single import *  # noqa: F403
from .structure import *  # noqa: F403

__all__ = [
    *base.__all__,
    *single.__all__,
    *cascade.__all__,
    *modular.__all__,
    *combine.__all__,
    *conv.__all__,
    *conv_modular.__all__,
    *baselines.__all__,
    *activations.__all__,
    *structure.__all__,
]
