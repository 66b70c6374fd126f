r"""Data sets, target fields and sample validation."""

from .fields import ConvexField, GradientField, NonconvexField, PolyMax, unit_grid
from .samples import as_samples, scalar_standardization
from .toy2d import FFJORD_SETS, TOY2D, sample_toy2d, toy2d_log_prob

__all__ = [
    "GradientField",
    "ConvexField",
    "NonconvexField",
    "PolyMax",
    "unit_grid",
    "TOY2D",
    "FFJORD_SETS",
    "sample_toy2d",
    "toy2d_log_prob",
    "as_samples",
    "scalar_standardization",
]
