r"""Data sets and target fields."""

from .fields import ConvexField, GradientField, NonconvexField, PolyMax, unit_grid
from .toy2d import TOY2D, sample_toy2d

__all__ = [
    "GradientField",
    "ConvexField",
    "NonconvexField",
    "PolyMax",
    "unit_grid",
    "TOY2D",
    "sample_toy2d",
]
