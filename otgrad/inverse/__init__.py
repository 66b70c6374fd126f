r"""Inverse problems with learned convex regularizers.

Minimize :math:`\frac12\|Ax - y\|^2 + \frac{\lambda}{\mu}R(\mu x)` where :math:`\nabla R` is a
monotone convolutional GradNet (:class:`~otgrad.nn.conv.ConvGradNet`): the objective is
convex, so :func:`reconstruct` converges to its global minimizer with the step :math:`1/L`
from the network's Lipschitz bound.
"""

from .interop import deepinv_prior
from .operators import (
    Blur,
    Denoising,
    Inpainting,
    LinearOperator,
    Tomography,
    gaussian_kernel,
    operator_norm_squared,
)
from .regularizer import ConvexRegularizer, RegularizerNetwork
from .solve import Reconstruction, data_fidelity, reconstruct
from .training import mean_psnr, noisy_copies, t_step_denoiser, tune_strength
from .tv import divergence, finite_differences, total_variation, tv_reconstruct

__all__ = [
    "LinearOperator",
    "Denoising",
    "Blur",
    "Inpainting",
    "Tomography",
    "gaussian_kernel",
    "operator_norm_squared",
    "ConvexRegularizer",
    "RegularizerNetwork",
    "reconstruct",
    "Reconstruction",
    "data_fidelity",
    "t_step_denoiser",
    "mean_psnr",
    "tune_strength",
    "noisy_copies",
    "tv_reconstruct",
    "total_variation",
    "finite_differences",
    "divergence",
    "deepinv_prior",
]
