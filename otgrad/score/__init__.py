r"""Score-based generative models whose score is exactly a gradient field.

A :class:`NoiseConditionalGradNet` is a GradNet in :math:`x` at every noise level, so its
potential is an energy: Metropolis-adjusted Langevin sampling and likelihoods by the
probability-flow ODE with a closed-form divergence come with it. :class:`ScoreModel`
wraps training (denoising, sliced or implicit score matching over a VE or VP schedule),
sampling (predictor–corrector, reverse SDE, probability-flow ODE, annealed Langevin,
MALA) and likelihood evaluation behind an estimator interface.
"""

from .estimator import SAMPLERS, ScoreModel
from .losses import (
    dsm_loss,
    implicit_score_matching_loss,
    score_matching_loss,
    sliced_score_matching_loss,
)
from .models import (
    NoiseConditionalGradMLP,
    NoiseConditionalGradNet,
    NoiseConditionalMLP,
    NoiseConditionalScore,
    SigmaEmbedding,
    build_score_model,
    parameter_count,
)
from .schedules import NoiseSchedule, VESchedule, VPSchedule, make_schedule
from .sde import (
    annealed_langevin,
    grid_log_prob,
    langevin,
    marginal_score,
    ode_log_prob,
    predictor_corrector,
    probability_flow,
    reverse_sde,
)

__all__ = [
    "ScoreModel",
    "SAMPLERS",
    "NoiseConditionalScore",
    "NoiseConditionalGradNet",
    "NoiseConditionalMLP",
    "NoiseConditionalGradMLP",
    "SigmaEmbedding",
    "build_score_model",
    "parameter_count",
    "NoiseSchedule",
    "VESchedule",
    "VPSchedule",
    "make_schedule",
    "dsm_loss",
    "implicit_score_matching_loss",
    "sliced_score_matching_loss",
    "score_matching_loss",
    "marginal_score",
    "reverse_sde",
    "predictor_corrector",
    "probability_flow",
    "annealed_langevin",
    "langevin",
    "ode_log_prob",
    "grid_log_prob",
]
