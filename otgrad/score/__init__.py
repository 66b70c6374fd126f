r"""Score-based generative models whose score is exactly a gradient field.

A :class:`NoiseConditionalDeepGradNet` (the default), its one-layer case
:class:`NoiseConditionalTwoLayerGradNet`, or a :class:`NoiseConditionalGradNet`
is a GradNet in :math:`x` at every noise level, so its potential is an energy:
Metropolis-adjusted Langevin sampling and likelihoods by the probability-flow ODE with a
closed-form divergence come with it. :class:`ScoreModel`
wraps training (denoising, sliced or implicit score matching over a VE or VP schedule),
sampling (predictor–corrector, reverse SDE, probability-flow ODE, annealed Langevin,
MALA) and likelihood evaluation behind an estimator interface.
"""

from . import estimator, losses, models, schedules, sde
from .estimator import *  # noqa: F403
from .losses import *  # noqa: F403
from .models import *  # noqa: F403
from .schedules import *  # noqa: F403
from .sde import *  # noqa: F403

__all__ = [
    *estimator.__all__,
    *models.__all__,
    *schedules.__all__,
    *losses.__all__,
    *sde.__all__,
]
