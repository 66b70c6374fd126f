r"""Published reference numbers of the inverse-problem benchmarks (Goujon et al. 2023)."""

from __future__ import annotations

__all__ = ["CRR_NN_PUBLISHED", "WCRR_NN_PUBLISHED", "CRR_NN_TRAINING"]

#: BSD68 mean PSNR (dB) of CRR-NN (convex) at sigma = 5, 15, 25.
CRR_NN_PUBLISHED = {"5": 36.93, "15": 30.51, "25": 28.07}
#: BSD68 mean PSNR (dB) of the weakly convex WCRR-NN at sigma = 5, 15, 25.
WCRR_NN_PUBLISHED = {"5": 37.65, "15": 31.21, "25": 28.68}
#: CRR-NN's training: Adam steps of a t-step denoiser.
CRR_NN_TRAINING = {"iterations": 18_600, "t_steps": 10}
