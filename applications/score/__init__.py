r"""Score-model benchmarks (``python -m applications.score``).

* ``toy2d`` — the eight FFJORD sets: a conservative GradNet score model beside an
  unconstrained MLP score network with about as many parameters (and optionally the
  gradient of an MLP), trained identically with the same seeds. Sample quality (exact
  :math:`W_2` by POT and MMD, samples against fresh data, with the data-against-data
  level), negative log-likelihood by the probability-flow ODE, and for GradNets the
  grid-normalized energy as a cross-check; the true entropy where it is known.
* ``mala`` — MALA against unadjusted Langevin at equal step budgets.
* ``trace`` — the ODE likelihood with the closed-form divergence against the autograd
  divergence and Hutchinson's estimator.
"""
