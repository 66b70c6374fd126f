r"""The :class:`ScoreModel` estimator: fit a noise-conditional score model to samples,
then sample from it and evaluate its likelihood."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._estimator import Estimator
from .._validation import (
    as_samples,
    cast_samples,
    check_choice,
    check_fit_settings,
    check_positive_int,
    check_positive_number,
    check_seed,
)
from ..data.samples import scalar_standardization, standardization_from_metadata
from ..train import History
from .losses import score_matching_loss
from .models import _KINDS, NoiseConditionalScore, build_score_model
from .schedules import NoiseSchedule, VESchedule, make_schedule
from .sde import (
    annealed_langevin,
    check_box,
    grid_log_prob,
    ode_log_prob,
    predictor_corrector,
    probability_flow,
    reverse_sde,
)

__all__ = ["ScoreModel", "SAMPLERS"]

SAMPLERS = ("pc", "sde", "ode", "langevin", "mala")


def _check_samples(z: Tensor, method: str, eps: float, steps: int) -> None:
    r"""Raises a ``FloatingPointError`` naming the setting to change if a sampler diverged."""
    bad = int((~torch.isfinite(z)).any(-1).sum())
    if bad:
        fix = (
            f"eps={eps!r} is too large a step"
            if method in ("langevin", "mala")
            else (f"steps={steps} is too few" if method != "ode" else "the model is not stable")
        )
        raise FloatingPointError(
            f"sampling diverged: {bad} of {z.shape[0]} samples are NaN or infinite ({fix})"
        )


class ScoreModel(Estimator):
    r"""A score-based generative model whose score is exactly a gradient.

    The data are standardized (mean removed, one scalar scale); a noise-conditional
    model :math:`s(x, \sigma)` is trained by score matching over a noise schedule, with an
    exponential moving average of the weights. The default model,
    :class:`~otgrad.score.NoiseConditionalDeepGradNet`, is a GradNet at every noise level, so
    :meth:`energy` is its potential (a log-density up to a constant), ``method="mala"``
    can Metropolis-correct, and :meth:`log_prob` integrates the probability-flow ODE with
    the closed-form divergence.

    Arguments:
        net: ``"gradnet"`` (default, :class:`~otgrad.score.NoiseConditionalDeepGradNet`),
            ``"gradnet-2"`` (:class:`~otgrad.score.NoiseConditionalTwoLayerGradNet`),
            ``"gradnet-lse"`` (:class:`~otgrad.score.NoiseConditionalGradNet`), ``"mlp"``,
            ``"gradmlp"`` or a :class:`~otgrad.score.NoiseConditionalScore` instance.
        schedule: ``"ve"`` (default), ``"vp"`` or a :class:`~otgrad.score.NoiseSchedule`.
        objective: ``"dsm"`` (denoising, default), ``"ssm"`` (sliced) or ``"ism"``
            (implicit, with the exact trace).
        sigma_min, sigma_max: The VE noise range in standardized units (the data have unit
            variance): ``log_prob`` is the density of the data blurred by ``sigma_min``
            times the data scale. A few standard deviations suffice for ``sigma_max``
            (``docs/score.md``: 5 resolved the FFJORD rings better than 20).
        steps: Training steps.
        batch_size: Samples per step.
        lr: Adam's learning rate (cosine decay).
        ema: The decay of the weight average.
        time_limit: Stop training after this many seconds; the cosine learning rate
            then decays to 0 over the steps or the time, whichever ends first.
        dtype: ``torch.float32`` or ``torch.float64``.
        device: Where to train (default: CUDA if available).
        seed: Seeds initialization, batches and noise.
        progress: Show a progress bar (default: when stderr is a terminal).

    Example:
        >>> from otgrad.data import sample_toy2d
        >>> model = ScoreModel(steps=200, seed=0).fit(sample_toy2d("8gaussians", 5000))
        >>> model.sample(3, steps=50).shape
        (3, 2)

    References:
        | Score-Based Generative Modeling through Stochastic Differential Equations
          (Song et al., 2021)
        | Gradient Networks (Chaudhari, Pranav, Moura, 2025)
    """

    _module = "model_"

    def __init__(
        self,
        net: str | NoiseConditionalScore = "gradnet",
        schedule: str | NoiseSchedule = "ve",
        objective: str = "dsm",
        *,
        sigma_min: float = 0.01,
        sigma_max: float = 5.0,
        steps: int = 20000,
        batch_size: int = 512,
        lr: float = 2e-3,
        ema: float = 0.999,
        time_limit: float | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device | None = None,
        seed: int | None = None,
        progress: bool | None = None,
    ):
        if not isinstance(net, (str, NoiseConditionalScore)):
            raise TypeError(
                f"net must be one of {sorted(_KINDS)} or a NoiseConditionalScore, "
                f"got {type(net).__name__}"
            )
        if isinstance(net, str) and net not in _KINDS:
            raise ValueError(f"net must be one of {sorted(_KINDS)}, got {net!r}")
        if not isinstance(schedule, str):
            make_schedule(schedule)  # validates
        elif schedule not in ("ve", "vp"):
            raise ValueError(f"schedule must be 've', 'vp' or a NoiseSchedule, got {schedule!r}")
        score_matching_loss(objective)  # validates the name
        check_positive_number("sigma_min", sigma_min)
        check_positive_number("sigma_max", sigma_max)
        if not sigma_min < sigma_max:
            raise ValueError(f"sigma_min ({sigma_min}) must be below sigma_max ({sigma_max})")
        check_positive_number("lr", lr)
        check_positive_int(steps=steps, batch_size=batch_size)
        if not (isinstance(ema, float) and 0 < ema < 1):
            raise ValueError(f"ema must be a float in (0, 1), got {ema!r}")
        check_fit_settings(dtype, device, seed, time_limit, progress)
        self._store(locals())

    # ------------------------------------------------------------------ scaling
    def _to_model(self, t: Tensor, name: str = "X") -> Tensor:
        device, dtype = self._placement()
        return cast_samples((t - self.mean_) / self.scale_, device, dtype, name, scaled=True)

    def _from_model(self, t: Tensor) -> Tensor:
        return t.detach().to(device="cpu", dtype=torch.float64) * self.scale_ + self.mean_

    def _built_schedule(self) -> NoiseSchedule:
        if isinstance(self.schedule, str) and self.schedule == "ve":
            return VESchedule(self.sigma_min, self.sigma_max)
        return make_schedule(self.schedule)

    def _noise(self, sigma: Any, n: int) -> Tensor:
        if isinstance(sigma, bool):
            raise TypeError("sigma must be a positive float or an array of shape (n,)")
        if isinstance(sigma, (int, float)):
            sig = torch.full((n,), float(sigma), dtype=torch.float64)
        elif isinstance(sigma, (np.ndarray, Tensor)):
            sig = torch.as_tensor(sigma).detach().to(device="cpu", dtype=torch.float64)
            if sig.shape not in ((), (n,)):
                raise ValueError(
                    f"sigma must be a float or have shape ({n},), got {tuple(sig.shape)}"
                )
            sig = sig.expand(n)
        else:
            raise TypeError(
                f"sigma must be a positive float or an array, got {type(sigma).__name__}"
            )
        if not bool((torch.isfinite(sig) & (sig > 0)).all()):
            raise ValueError("sigma must be positive and finite")
        device, dtype = self._placement()
        return (sig / self.scale_).to(device=device, dtype=dtype)

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any) -> ScoreModel:
        r"""Trains the score model on samples ``X`` of shape ``(n, d)`` (NumPy or torch).

        Returns:
            ``self``.
        """
        x, _ = as_samples(X, "X", min_samples=2)
        d = x.shape[1]
        if isinstance(self.net, NoiseConditionalScore) and self.net.dim != d:
            raise ValueError(f"net has dim={self.net.dim} but X has {d} features")
        self.__dict__.pop("model_", None)
        with self._seeded() as seed:
            self.n_features_in_, self.schedule_ = d, self._built_schedule()
            self.mean_, self.scale_ = scalar_standardization(x)
            xs = self._to_model(x)
            if isinstance(self.net, str):
                model = build_score_model(self.net, d)
            else:
                model = self._copy_net(self.net)
            model = model.to(device=xs.device, dtype=self.dtype)
            start = time.perf_counter()
            self.history_: History = self._train(model, xs, seed)
            self.fit_seconds_ = time.perf_counter() - start
        self.model_ = model
        return self

    def _train(self, model: NoiseConditionalScore, xs: Tensor, seed: int) -> History:
        loss = score_matching_loss(self.objective)
        schedule, n, bs = self.schedule_, xs.shape[0], self.batch_size

        def sampler(gen: torch.Generator) -> list[Any]:
            return [xs[torch.randint(n, (bs,), generator=gen).to(xs.device)], gen]

        def loss_fn(m: NoiseConditionalScore, batch: Tensor, gen: torch.Generator) -> Tensor:
            return loss(m, batch, schedule, gen)

        return self._fit_steps(model, loss_fn, sampler, seed, 250, lr=self.lr, ema=self.ema)

    # ------------------------------------------------------------------ fields
    def score(self, X: Any, sigma: Any) -> Any:
        r""":math:`\nabla_x \log p_\sigma(x)` in data units (``sigma`` in data units: the
        data blurred by :math:`\mathcal{N}(0, \sigma^2 I)`), same kind as ``X``."""
        model = self._fitted()
        x, back = as_samples(X, "X", dim=self.n_features_in_)
        with torch.no_grad():
            s = model._score(self._to_model(x), self._noise(sigma, x.shape[0]))
        return back(s.to("cpu", torch.float64) / self.scale_)

    def energy(self, X: Any, sigma: Any) -> Any:
        r"""The energy :math:`E(x, \sigma) = -\log p_\sigma(x) + \text{const}` with
        :math:`\nabla_x E = -` :meth:`score` (conservative models only; the constant depends
        on :math:`\sigma`).

        Raises:
            ValueError: If the model is not conservative (``net="mlp"``).
        """
        model = self._fitted()
        if not model.conservative:
            raise ValueError(f"{type(model).__name__} is not conservative: it has no energy")
        x, back = as_samples(X, "X", dim=self.n_features_in_)
        with torch.no_grad():
            psi = model._potential(self._to_model(x), self._noise(sigma, x.shape[0]))
        return back(-psi.to("cpu", torch.float64) + x.shape[1] * math.log(self.scale_))

    # ------------------------------------------------------------------ sampling
    def sample(
        self,
        n: int,
        method: str = "sde",
        steps: int = 500,
        *,
        seed: int | None = None,
        eps: float = 2e-4,
        steps_per_level: int = 10,
        return_tensor: bool = False,
    ) -> Any:
        r"""Draws ``n`` samples (a NumPy array; a tensor with ``return_tensor``).

        Arguments:
            n: The number of samples.
            method: ``"sde"`` (reverse-SDE Euler–Maruyama, default), ``"pc"``
                (predictor–corrector: a Langevin step after each predictor step),
                ``"ode"`` (probability flow, ``torchdiffeq``), ``"langevin"`` (annealed Langevin, NCSN) or ``"mala"`` (annealed
                Metropolis-adjusted Langevin with the energy; conservative models only).
            steps: Time steps (``pc``, ``sde``), or the total Langevin steps
                (``langevin``, ``mala``: ``steps // steps_per_level`` noise levels).
            seed: Seeds the sampler.
            eps: The Langevin step at the smallest noise level (scaled by
                :math:`\sigma_i^2/\sigma_{\min}^2` at level :math:`i`).
            steps_per_level: Langevin steps per noise level.
        """
        model = self._fitted()
        check_positive_int(n=n, steps=steps)
        if method not in SAMPLERS:
            raise ValueError(f"method must be one of {SAMPLERS}, got {method!r}")
        gen = torch.Generator().manual_seed(
            check_seed(seed) if seed is not None else int(torch.randint(2**62, ()))
        )
        sch = self.schedule_
        device, dtype = self._placement()
        std = sch.prior_std(1.0)
        x = std * torch.randn(n, self.n_features_in_, generator=gen, dtype=dtype)
        x = x.to(device)
        if method == "pc":
            z = predictor_corrector(model, sch, x, steps, generator=gen)
        elif method == "sde":
            z = reverse_sde(model, sch, x, steps, generator=gen)
        elif method == "ode":
            z = probability_flow(model, sch, x)
        else:
            check_positive_int(steps_per_level=steps_per_level)
            check_positive_number("eps", eps)
            levels = max(1, steps // steps_per_level)
            ts = torch.linspace(1.0, sch.t_min, levels, dtype=dtype)
            sigmas = sch.noise_level(ts)
            z, self.acceptance_rate_ = annealed_langevin(
                model, x, sigmas, steps_per_level, eps, method == "mala", gen
            )
        _check_samples(z, method, eps, steps)
        out = self._from_model(z)
        return out if return_tensor else out.numpy()

    # ------------------------------------------------------------------ likelihood
    def log_prob(
        self,
        X: Any,
        method: str = "ode",
        *,
        sigma: float | None = None,
        trace: str = "exact",
        rtol: float = 1e-5,
        atol: float = 1e-5,
        bounds: tuple[float, float, float, float] | None = None,
        resolution: int = 512,
        batch_size: int = 10000,
    ) -> Any:
        r"""The log-density of the data blurred by :math:`\sigma_{\min}` (or ``sigma``) at ``X``.

        Arguments:
            X: Points, shape ``(n, d)``.
            method: ``"ode"`` (probability-flow ODE with ``torchdiffeq``) or ``"grid"``
                (two dimensions: the energy normalized on a grid; conservative models).
            sigma: The noise level in data units (default: the schedule's smallest). With
                ``"ode"`` it needs the VE schedule (the ODE then starts at ``sigma``).
            trace: The ODE divergence: ``"exact"`` (closed form for GradNets),
                ``"autograd"`` or ``"hutchinson"``.
            rtol, atol: The ODE tolerances.
            bounds: The grid box in data units (default: the data range padded by 10 %).
            resolution: Grid cells per side.
            batch_size: Points per ODE solve.

        Returns:
            The log-densities, shape ``(n,)``, same kind as ``X``.
        """
        model = self._fitted()
        check_choice("method", method, ("ode", "grid"))
        check_positive_int(batch_size=batch_size)
        x, back = as_samples(X, "X", dim=self.n_features_in_)
        d = self.n_features_in_
        z = self._to_model(x)
        level, schedule = self.sigma_at_min(), self.schedule_
        if sigma is not None:
            check_positive_number("sigma", sigma)
            level = float(sigma) / self.scale_
        if method == "ode":
            if sigma is not None:
                if not isinstance(schedule, VESchedule):
                    raise ValueError("log_prob(sigma=...) with method='ode' needs the VE schedule")
                if not level < schedule.sigma_max:
                    raise ValueError(
                        f"sigma must be below sigma_max ({schedule.sigma_max * self.scale_:.4g})"
                    )
                schedule = VESchedule(level, schedule.sigma_max)
            parts, self.nfe_ = [], 0
            for chunk in z.split(batch_size):
                lp, nfe = ode_log_prob(model, schedule, chunk, trace, rtol, atol)
                parts.append(lp)
                self.nfe_ = max(self.nfe_, nfe)
            lp = torch.cat(parts)
        elif method == "grid":
            if bounds is None:
                raise ValueError("method='grid' needs bounds=(x_min, x_max, y_min, y_max)")
            bounds = check_box(bounds)
            lo = torch.tensor([bounds[0], bounds[2]], dtype=torch.float64)
            hi = torch.tensor([bounds[1], bounds[3]], dtype=torch.float64)
            lo, hi = (lo - self.mean_) / self.scale_, (hi - self.mean_) / self.scale_
            box = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
            lp = grid_log_prob(model, z, level, box, resolution)
        return back(lp.to("cpu", torch.float64) - d * math.log(self.scale_))

    def sigma_at_min(self) -> float:
        r"""The smallest noise level of the schedule (standardized units)."""
        sch = self.__dict__.get("schedule_") or self._built_schedule()
        return float(sch.noise_level(torch.tensor(sch.t_min, dtype=torch.float64)))

    # ------------------------------------------------------------------ persistence
    def _fitted_state(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule_.config(),
            "mean": self.mean_.tolist(),
            "scale": self.scale_,
        }

    @classmethod
    def _params_from(cls, module: nn.Module, state: dict[str, Any]) -> dict[str, Any]:
        kinds = {k: name for name, k in _KINDS.items()}
        return {
            **super()._params_from(module, state),
            "net": kinds.get(type(module), "gradnet"),
            "schedule": make_schedule(state["schedule"]),
        }

    def _restore(self, module: nn.Module, state: dict[str, Any]) -> None:
        if not isinstance(module, NoiseConditionalScore):
            raise TypeError(f"the network is a {type(module).__name__}, not a score model")
        self.mean_, self.scale_ = standardization_from_metadata(
            state["mean"], state["scale"], module.dim
        )
        self.schedule_ = make_schedule(state["schedule"])
        self.model_, self.n_features_in_ = module, module.dim
