r"""The convex regularizer in deepinv (an optional extra: ``pip install otgrad[deepinv]``).

deepinv's physics objects already work in :func:`~otgrad.inverse.reconstruct` (they have
``A`` and ``A_adjoint``); :func:`deepinv_prior` goes the other way and hands a fitted
regularizer to deepinv's optimizers as an explicit prior, with its value and its gradient
in closed form (no automatic differentiation of the network).

References:
    | DeepInverse: a Python package for solving imaging inverse problems with deep learning
      (Tachella et al., 2025).
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["deepinv_prior"]


def deepinv_prior(regularizer: Any) -> Any:
    r"""Returns ``regularizer`` as a :class:`deepinv.optim.Prior`.

    The prior's ``fn(x)`` is :math:`R(x)` per image (shape ``(B,)``) and ``grad(x)`` is
    :math:`\nabla R(x)`; both ignore deepinv's extra arguments (a convex regularizer has no
    noise-level input). Its strength is the regularizer's own :math:`\lambda` (keep
    deepinv's ``lambda`` at 1, or scale both).

    Arguments:
        regularizer: A fitted :class:`~otgrad.inverse.ConvexRegularizer` or a
            :class:`~otgrad.inverse.RegularizerNetwork`.

    Raises:
        ImportError: If deepinv is not installed.
        TypeError: If ``regularizer`` has no ``value`` and ``grad``.

    Example:
        >>> import deepinv as dinv  # doctest: +SKIP
        >>> prior = deepinv_prior(ConvexRegularizer.pretrained("bsd", 25))  # doctest: +SKIP
        >>> model = dinv.optim.optim_builder(  # doctest: +SKIP
        ...     "GD", prior=prior, data_fidelity=dinv.optim.L2(),
        ...     params_algo={"stepsize": 0.02, "lambda": 1.0}, max_iter=300)
    """
    try:
        from deepinv.optim import Prior
    except ImportError as e:
        raise ImportError("deepinv_prior needs deepinv: pip install 'otgrad[deepinv]'") from e
    if not all(callable(getattr(regularizer, m, None)) for m in ("value", "grad")):
        raise TypeError(
            "regularizer must be a ConvexRegularizer or RegularizerNetwork (value and grad), "
            f"got {type(regularizer).__name__}"
        )
    return _prior_class(Prior)(regularizer)


@functools.cache
def _prior_class(base: type) -> type:
    r"""The prior class, made once deepinv is imported (its base class lives there)."""

    class ConvexRegularizerPrior(base):
        r"""A fitted convex regularizer as an explicit deepinv prior."""

        def __init__(self, regularizer: Any):
            super().__init__()
            self.explicit_prior = True
            self.regularizer = regularizer

        def fn(self, x, *args, **kwargs):
            return self.regularizer.value(x)

        def grad(self, x, *args, **kwargs):
            return self.regularizer.grad(x)

    return ConvexRegularizerPrior
