r"""The paper's numbers of the gradient-field study."""

from __future__ import annotations

__all__ = ["PAPER"]

#: Tables 1–2 of the paper: parameters and the "RMSE dB" (half of the MSE dB of the
#: authors' code), mean and standard deviation over 5 seeds, per field and model.
PAPER = {
    "convex": {
        "ICNN": (109, -17.13, 2.53),
        "ICGN": (96, -10.61, 0.80),
        "CRR": (102, -15.70, 2.04),
        "mGradNet-C": (100, -24.08, 0.44),
        "mGradNet-M": (94, -23.57, 2.61),
    },
    "nonconvex": {
        "MLP": (102, -12.83, 1.04),
        "RR": (102, -16.23, 1.83),
        "GradNet-C": (100, -18.99, 2.03),
        "GradNet-M": (94, -17.00, 1.90),
    },
}
