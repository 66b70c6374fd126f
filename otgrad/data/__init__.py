r"""Data sets and target fields."""

from .fields import ConvexField, GradientField, NonconvexField, unit_grid

__all__ = ["GradientField", "ConvexField", "NonconvexField", "unit_grid"]
