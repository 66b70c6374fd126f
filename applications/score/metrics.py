r"""Sample-quality metrics of the score benchmarks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["mmd"]


def mmd(x: np.ndarray, y: np.ndarray, bandwidths: Sequence[float] = (0.1, 0.3, 1.0)) -> float:
    r"""The unbiased squared maximum mean discrepancy with a sum of Gaussian kernels
    :math:`\sum_h \exp(-\|a - b\|^2 / (2h^2))` (bandwidths in data units), computed in
    float64 blocks."""
    a, b = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)

    def mean_kernel(p: torch.Tensor, q: torch.Tensor, same: bool) -> float:
        total = 0.0
        for i, pc in enumerate(p.split(2048)):
            d2 = torch.cdist(pc, q) ** 2
            k = sum(torch.exp(-d2 / (2 * h**2)) for h in bandwidths)
            if same:  # drop the diagonal i = j
                idx = torch.arange(pc.shape[0])
                k[idx, idx + i * 2048] = 0
            total += float(k.sum())
        n, m = p.shape[0], q.shape[0]
        return total / (n * (n - 1) if same else n * m)

    return mean_kernel(a, a, True) + mean_kernel(b, b, True) - 2 * mean_kernel(a, b, False)
