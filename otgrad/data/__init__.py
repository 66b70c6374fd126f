r"""Data sets and target fields."""

from .fields import ConvexField, GradientField, NonconvexField, PolyMax, unit_grid

__all__ = ["GradientField", "ConvexField", "NonconvexField", "PolyMax", "unit_grid"]
