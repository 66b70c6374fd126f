r"""Learned convex regularizers :math:`R_{\lambda,\mu}(x) = \frac{\lambda}{\mu} R(\mu x)` with :math:`\nabla R` an mGradNet.

With :math:`\nabla R` monotone (an mGradNet), :math:`R` is convex and the reconstruction
objective :math:`\frac12\|Ax - y\|^2 + R_{\lambda,\mu}(x)` is convex: gradient descent with
step :math:`1/L` converges to its global minimizer. :math:`\lambda > 0` sets the strength
and :math:`\mu > 0` the scale at which the learned profile acts, as in CRR-NN; both are
learnable. The gradient is :math:`\lambda \nabla R(\mu x)`, its Lipschitz constant at most
:math:`\lambda\mu L_R`.

:class:`RegularizerNetwork` is the module (network and :math:`\lambda, \mu`);
:class:`ConvexRegularizer` the estimator that trains it as a :math:`t`-step denoiser, tunes
its strength and ships pretrained weights.

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Prop 3.3, Cor 11.1.
    | A Neural-Network-Based Convex Regularizer for Inverse Problems (Goujon et al., 2023).
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .. import io
from .._estimator import Estimator
from .._validation import (
    check_choice,
    check_fit_settings,
    check_image,
    check_positive_int,
    check_positive_number,
)
from ..data.images import check_images
from ..nn.conv import ConvGradNet

__all__ = ["ConvexRegularizer", "RegularizerNetwork"]

_PRETRAINED = {"bsd": "crr_bsd.pt"}


def _check_net(net: Any) -> None:
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be an nn.Module, got {type(net).__name__}")
    if getattr(net, "in_channels", None) != 1:
        raise TypeError(
            f"net must be an image network of one input channel (in_channels=1, e.g. "
            f"ConvGradNet), got {type(net).__name__}"
        )
    if not getattr(net, "monotone", False):
        raise ValueError(
            f"net must be monotone (an mGradNet) for a convex regularizer; "
            f"{type(net).__name__} has monotone={getattr(net, 'monotone', None)}"
        )


@io.register("RegularizerNetwork")
class RegularizerNetwork(nn.Module):
    r"""A convex regularizer whose gradient is a monotone image GradNet (the module).

    Arguments:
        net: A monotone image gradient network (``net(x)`` the gradient, ``net.potential(x)``
            the value, ``net.lipschitz_bound()``, ``net.in_channels == 1``), e.g.
            :class:`~otgrad.nn.ConvGradNet`.
        lmbda: The initial strength :math:`\lambda > 0` (learned).
        mu: The initial scale :math:`\mu > 0` (learned).

    Example:
        >>> from otgrad.nn import ConvGradNet
        >>> reg = RegularizerNetwork(ConvGradNet((1, 4, 8), kernel_size=3), lmbda=2.0)
        >>> x = torch.rand(1, 1, 16, 16)
        >>> reg.grad(x).shape, reg.value(x).shape
        (torch.Size([1, 1, 16, 16]), torch.Size([1]))

    Raises:
        ValueError: If ``net`` is not monotone (the objective would not be convex).
    """

    def __init__(self, net: nn.Module, lmbda: float = 1.0, mu: float = 1.0):
        super().__init__()
        _check_net(net)
        self.net = net
        self.log_lmbda = nn.Parameter(
            torch.tensor(math.log(check_positive_number("lmbda", lmbda)))
        )
        self.log_mu = nn.Parameter(torch.tensor(math.log(check_positive_number("mu", mu))))

    def config(self) -> dict[str, Any]:
        r"""The constructor arguments (the current :math:`\lambda, \mu`; used by :mod:`otgrad.io`)."""
        return io.config_from_signature(self)

    @property
    def lmbda(self) -> float:
        r"""The strength :math:`\lambda`."""
        return float(self.log_lmbda.detach().exp())

    @property
    def mu(self) -> float:
        r"""The scale :math:`\mu`."""
        return float(self.log_mu.detach().exp())

    def set_strength(self, lmbda: float, mu: float | None = None) -> RegularizerNetwork:
        r"""Sets :math:`\lambda` (and :math:`\mu`) in place; returns ``self``."""
        with torch.no_grad():
            self.log_lmbda.fill_(math.log(check_positive_number("lmbda", lmbda)))
            if mu is not None:
                self.log_mu.fill_(math.log(check_positive_number("mu", mu)))
        return self

    def _check(self, x: Any, name: str = "x") -> Tensor:
        channels = getattr(self.net, "in_channels", 1)
        return check_image(x, name, channels, self.log_mu.dtype, self.log_mu.device)

    def grad(self, x: Tensor) -> Tensor:
        r"""Returns :math:`\nabla R_{\lambda,\mu}(x) = \lambda \nabla R(\mu x)`."""
        return self.value_and_grad(self._check(x), value=False)[1]

    def value(self, x: Tensor) -> Tensor:
        r"""Returns :math:`R_{\lambda,\mu}(x) = \frac{\lambda}{\mu} R(\mu x)`, shape ``(B,)``."""
        x = self._check(x)
        lam, mu = self.log_lmbda.exp(), self.log_mu.exp()
        return lam / mu * self.net.potential(mu * x)

    def value_and_grad(
        self, x: Tensor, value: bool = True, **options: Any
    ) -> tuple[Tensor | None, Tensor]:
        r"""Returns the value (or ``None``) and the gradient from one network pass (no checks).

        ``options`` go to the network's ``gradient_and_potential`` (e.g. a precomputed ``kernel``).
        """
        lam, mu = self.log_lmbda.exp(), self.log_mu.exp()
        if hasattr(self.net, "gradient_and_potential"):
            g, v = self.net.gradient_and_potential(mu * x, potential=value, **options)
        else:
            g = self.net(mu * x)
            v = self.net.potential(mu * x) if value else None
        return (lam / mu * v if value else None), lam * g

    def hvp(self, x: Tensor, v: Tensor) -> Tensor:
        r"""Returns :math:`\nabla^2 R_{\lambda,\mu}(x) v = \lambda\mu J(\mu x) v` (closed form)."""
        lam, mu = self.log_lmbda.exp(), self.log_mu.exp()
        return lam * mu * self.net.jvp(mu * self._check(x), v)

    def lipschitz_bound(self) -> float:
        r"""An upper bound :math:`\lambda\mu L_R` on the Lipschitz constant of the gradient."""
        return self.lmbda * self.mu * self.net.lipschitz_bound()

    def forward(self, x: Tensor) -> Tensor:
        return self.grad(x)


class ConvexRegularizer(Estimator):
    r"""A learned convex regularizer, trained as a :math:`t`-step denoiser (CRR-NN's recipe).

    ``fit(images)`` trains a :class:`RegularizerNetwork` on random noisy patches so that
    ``t_steps`` gradient steps on :math:`\frac12\|x - y\|^2 + R_{\lambda,\mu}(x)` denoise them;
    :meth:`tune` then sets :math:`\lambda, \mu` for a task on held-out images. The fitted
    regularizer plugs into :func:`~otgrad.inverse.reconstruct`, which converges to the global
    minimizer because the objective is convex. :meth:`pretrained` returns the shipped one.

    Arguments:
        net: A monotone image gradient network (deep-copied at ``fit``); default
            ``ConvGradNet()`` (CRR-NN's single-layer spline network on a 1-8-32
            multi-convolution).
        lmbda: The initial strength :math:`\lambda`.
        mu: The initial scale :math:`\mu`.
        sigma: The training noise level on the 0–255 scale.
        t_steps: The number :math:`t` of gradient steps of the denoiser.
        loss: The training loss between denoised and clean patches: ``"l1"`` (the mean
            absolute error, CRR-NN's) or ``"mse"``.
        iterations: The total number of Adam steps (cosine-decayed learning rate).
        epochs: The number of epochs (the iterations are split evenly; a checkpoint is
            written after each).
        batch_size: Patches per step.
        patch: The patch size.
        stride: Draw patches from a bank of all patches on this grid stride (see
            :func:`~otgrad.data.images.patch_sampler`; fast on a GPU).
        lr: The learning rate of the network (:math:`\lambda, \mu` use ``10 * lr``).
        time_limit: A time budget in seconds. Without a ``checkpoint``: a 10-step trial on a
            copy times a step and ``iterations`` is capped to what fits, so that the cosine
            learning-rate schedule completes (a hard stop at 1.5 times the budget guards
            against slowdowns). With a ``checkpoint``: the length of one session of a long
            run: the schedule stays that of ``iterations``, training stops at an epoch
            boundary before the limit, and ``fit`` again with the same arguments continues
            it (``history_.finished`` tells when it is done).
        checkpoint: A file for :func:`otgrad.train.fit`'s training state, written after
            every epoch; an interrupted ``fit`` with the same arguments resumes from it.
        dtype: ``torch.float32`` or ``torch.float64``.
        device: Where to train (default: CUDA if available).
        seed: Seeds the initialization, the patches and the noise.
        progress: Show a progress bar (default: when stderr is a terminal).

    Attributes:
        regularizer_: The fitted :class:`RegularizerNetwork`.
        strengths_: Tuned :math:`(\lambda, \mu)` per label (e.g. per noise level), filled by
            :meth:`tune` and by :meth:`pretrained`.
        history_: The training :class:`~otgrad.train.History` (after ``fit``).

    Example:
        >>> reg = ConvexRegularizer.pretrained("bsd", sigma=25)
        >>> x = torch.rand(1, 1, 16, 16)
        >>> reg.grad(x).shape
        torch.Size([1, 1, 16, 16])

    References:
        | A Neural-Network-Based Convex Regularizer for Inverse Problems (Goujon et al., 2023).
        | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Prop 3.3, Cor 11.1.
    """

    _module = "regularizer_"

    def __init__(
        self,
        net: nn.Module | None = None,
        lmbda: float = 1.0,
        mu: float = 1.0,
        *,
        sigma: float = 5.0,
        t_steps: int = 10,
        loss: str = "l1",
        iterations: int = 6000,
        epochs: int = 10,
        batch_size: int = 128,
        patch: int = 40,
        stride: int | None = None,
        lr: float = 1e-3,
        time_limit: float | None = None,
        checkpoint: str | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device | None = None,
        seed: int | None = None,
        progress: bool | None = None,
    ):
        if net is not None:
            _check_net(net)
        for name, value in (("lmbda", lmbda), ("mu", mu), ("sigma", sigma), ("lr", lr)):
            check_positive_number(name, value)
        check_positive_int(t_steps=t_steps, iterations=iterations, epochs=epochs)
        check_choice("loss", loss, ("l1", "mse"))
        check_positive_int(batch_size=batch_size, patch=patch)
        if stride is not None:
            check_positive_int(stride=stride)
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise TypeError(f"checkpoint must be a path string, got {type(checkpoint).__name__}")
        check_fit_settings(dtype, device, seed, time_limit, progress)
        self._store(locals())

    # ------------------------------------------------------------------ fitting
    def fit(self, images: list[np.ndarray]) -> ConvexRegularizer:
        r"""Trains the regularizer on random patches of ``images`` (2D arrays in
        :math:`[0, 1]`, e.g. :func:`~otgrad.data.images.load_image_set`).

        Returns:
            ``self``.
        """
        from .training import train_denoiser

        images = check_images(images)
        self.__dict__.pop("regularizer_", None)
        with self._seeded() as seed:
            net = self._copy_net(self.net) or ConvGradNet()
            module = RegularizerNetwork(net, self.lmbda, self.mu)
            module = module.to(device=self._device(), dtype=self.dtype)
            self.history_ = train_denoiser(module, images, self, seed)
        self.regularizer_, self.strengths_ = module, {}
        return self

    def tune(
        self,
        clean: list[Tensor],
        measured: list[Tensor],
        operator: Any = None,
        *,
        label: str | float | None = None,
        **options: Any,
    ) -> tuple[float, float, float]:
        r"""Tunes :math:`\lambda, \mu` on held-out images and keeps the best (see
        :func:`~otgrad.inverse.tune_strength`, which ``options`` go to).

        Arguments:
            clean: Held-out clean images ``(1, 1, H, W)`` (never the test set).
            measured: Their measurements.
            operator: The forward operator (default: denoising).
            label: Also record the result in :attr:`strengths_` under this label (e.g. the
                noise level), for :meth:`use_strength`.

        Returns:
            The best :math:`\lambda`, :math:`\mu` and the mean validation PSNR.
        """
        from .training import tune_strength

        result = tune_strength(self._fitted(), clean, measured, operator, **options)
        if label is not None:
            self.strengths_[_label(label)] = [result[0], result[1]]
        return result

    def use_strength(self, label: str | float) -> ConvexRegularizer:
        r"""Sets :math:`\lambda, \mu` to those recorded under ``label`` (e.g. ``sigma=15``'s
        ``15``) in :attr:`strengths_`; returns ``self``."""
        key = _label(label)
        if key not in self.strengths_:
            raise ValueError(
                f"label {label!r} has no recorded strength; known: {sorted(self.strengths_)}"
            )
        return self.set_strength(*self.strengths_[key])

    # ------------------------------------------------------------------ the regularizer
    @property
    def lmbda_(self) -> float:
        r"""The fitted strength :math:`\lambda`."""
        return self._fitted().lmbda

    @property
    def mu_(self) -> float:
        r"""The fitted scale :math:`\mu`."""
        return self._fitted().mu

    def set_strength(self, lmbda: float, mu: float | None = None) -> ConvexRegularizer:
        r"""Sets the fitted :math:`\lambda` (and :math:`\mu`) in place; returns ``self``."""
        self._fitted().set_strength(lmbda, mu)
        return self

    def grad(self, x: Tensor) -> Tensor:
        r"""Returns :math:`\nabla R_{\lambda,\mu}(x)` (see :meth:`RegularizerNetwork.grad`)."""
        return self._fitted().grad(x)

    def value(self, x: Tensor) -> Tensor:
        r"""Returns :math:`R_{\lambda,\mu}(x)`, shape ``(B,)``."""
        return self._fitted().value(x)

    def value_and_grad(
        self, x: Tensor, value: bool = True, **options: Any
    ) -> tuple[Tensor | None, Tensor]:
        r"""The value (or ``None``) and gradient in one pass, without checks (solvers' path)."""
        return self._fitted().value_and_grad(x, value, **options)

    def hvp(self, x: Tensor, v: Tensor) -> Tensor:
        r"""Returns :math:`\nabla^2 R_{\lambda,\mu}(x) v` in closed form."""
        return self._fitted().hvp(x, v)

    def lipschitz_bound(self) -> float:
        r"""An upper bound :math:`\lambda\mu L_R` on the Lipschitz constant of the gradient."""
        return self._fitted().lipschitz_bound()

    # ------------------------------------------------------------------ files
    def _fitted_state(self) -> dict[str, Any]:
        return {"strengths": self.strengths_}

    @classmethod
    def _params_from(cls, module: nn.Module, state: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(module, RegularizerNetwork):
            raise TypeError(f"the network is a {type(module).__name__}, not a RegularizerNetwork")
        return super()._params_from(module, state)

    def _restore(self, module: nn.Module, state: dict[str, Any]) -> None:
        strengths = state.get("strengths", {})
        if not isinstance(strengths, dict):
            raise TypeError("strengths must be a mapping")
        for key, value in strengths.items():
            if len(value) != 2 or not all(isinstance(v, (int, float)) and v > 0 for v in value):
                raise ValueError(f"the strength recorded for {key!r} is not two positive numbers")
        self.regularizer_, self.strengths_ = (
            module,
            {str(k): list(v) for k, v in strengths.items()},
        )

    @classmethod
    def pretrained(cls, name: str = "bsd", sigma: float = 25) -> ConvexRegularizer:
        r"""The regularizer trained on BSD400 patches that ships with otgrad, set for noise ``sigma``.

        One network (a CRR-NN-type single-layer spline mGradNet) serves every noise level;
        :math:`\lambda` and :math:`\mu` were tuned per level on held-out training images
        (never on the test images) and are kept in :attr:`strengths_`. See
        ``applications/inverse/README.md``.

        Arguments:
            name: ``"bsd"`` (natural grayscale images in :math:`[0, 1]`).
            sigma: The noise level on the 0–255 scale: 5, 15 or 25.

        Example:
            >>> reg = ConvexRegularizer.pretrained("bsd", sigma=25)
            >>> reg.lipschitz_bound() > 0
            True
        """
        if name not in _PRETRAINED:
            raise ValueError(f"name must be one of {sorted(_PRETRAINED)}, got {name!r}")
        ref = resources.files("otgrad.inverse").joinpath("weights", _PRETRAINED[name])
        with resources.as_file(ref) as path:
            reg = cls.load(path)
        if _label(sigma) not in reg.strengths_:
            raise ValueError(
                f"sigma must be one of {sorted(reg.strengths_, key=float)} for {name!r}, "
                f"got {sigma!r}"
            )
        return reg.use_strength(sigma)


def _label(label: str | float) -> str:
    if isinstance(label, (int, float)) and not isinstance(label, bool):
        return f"{float(label):g}"
    if isinstance(label, str):
        return label
    raise TypeError(f"label must be a number or a string, got {type(label).__name__}")
