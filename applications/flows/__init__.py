r"""Convex potential flow benchmarks (``python -m applications.flows``).

* ``toy2d`` — the eight FFJORD sets: a :class:`~otgrad.flows.ConvexPotentialFlow` beside
  zuko's neural spline flow (NSF, the optional ``bench`` extra) with a similar parameter
  count, trained by the same loop with the same steps, batch size, learning-rate schedule
  and seed. Test negative log-likelihood (exact for both), :math:`W_2` of samples against
  test data, the probability mass the flow puts on a grid (a normalization check), and the
  inversion residual of the flow's samples.
* ``mixture`` — a :math:`d = 16` Gaussian mixture with a known density: the flow's test NLL
  against the true entropy (the NLL of the true density on the same points).
* :mod:`applications.flows.cost` — the cost of a training step, closed-form Jacobians
  against autograd (``python -m applications.flows.cost``).
"""

__all__ = ["MODELS"]

#: The models of the flow benchmarks: the convex potential flow and the neural spline flow.
MODELS = ("cpflow", "nsf")
