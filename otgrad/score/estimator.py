r"""The :class:`ScoreModel` estimator: fit a noise-conditional score model to samples,
then sample from it and evaluate its likelihood."""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import io
from ..data.samples import as_samples, scalar_standardization, standardization_from_metadata
from ..nn.base import check_positive_int, check_positive_number
from ..train import History, default_device, fit
from .losses import score_matching_loss
from .models import NoiseConditionalScore, build_score_model
from .schedules import NoiseSchedule, VESchedule, make_schedule
from .sde import (
    annealed_langevin,
    grid_log_prob,
    ode_log_prob,
    predictor_corrector,
    probability_flow,
    reverse_sde,
)

__all__ = ["ScoreModel", "SAMPLERS"]

SAMPLERS = ("pc", "sde", "ode", "langevin", "mala")


class ScoreModel:
    r"""A score-based generative model whose score is exactly a gradient.

    The data are standardized (mean removed, one scalar scale); a noise-conditional
    model :math:`s(x, \sigma)` is trained by score matching over a noise schedule, with an
    exponential moving average of the weights. The default model,
    :class:`~otgrad.score.NoiseConditionalGradNet`, is a GradNet at every noise level, so
    :meth:`energy` is its potential (a log-density up to a constant), ``method="mala"``
    can Metropolis-correct, and :meth:`log_prob` integrates the probability-flow ODE with
    the closed-form divergence.

    Arguments:
        net: ``"gradnet"`` (default), ``"mlp"``, ``"gradmlp"`` or a
            :class:`~otgrad.score.NoiseConditionalScore` instance.
        schedule: ``"ve"`` (default), ``"vp"`` or a :class:`~otgrad.score.NoiseSchedule`.
        objective: ``"dsm"`` (denoising, default), ``"ssm"`` (sliced) or ``"ism"``
            (implicit, with the exact trace).
        sigma_min, sigma_max: The VE noise range in standardized units (the data have unit
            variance): ``log_prob`` is the density of the data blurred by ``sigma_min``
            times the data scale.
        steps: Training steps.
        batch_size: Samples per step.
        lr: Adam's learning rate (cosine decay).
        ema: The decay of the weight average.
        time_limit: Stop training after this many seconds.
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

    def __init__(
        self,
        net: str | NoiseConditionalScore = "gradnet",
        schedule: str | NoiseSchedule = "ve",
        objective: str = "dsm",
        *,
        sigma_min: float = 0.01,
        sigma_max: float = 20.0,
        steps: int = 5000,
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
                f"net must be 'gradnet', 'mlp', 'gradmlp' or a NoiseConditionalScore, "
                f"got {type(net).__name__}"
            )
        if isinstance(net, str) and net not in ("gradnet", "mlp", "gradmlp"):
            raise ValueError(f"net must be 'gradnet', 'mlp' or 'gradmlp', got {net!r}")
        score_matching_loss(objective)  # validates the name
        check_positive_number("sigma_min", sigma_min)
        check_positive_number("sigma_max", sigma_max)
        check_positive_number("lr", lr)
        if time_limit is not None:
            check_positive_number("time_limit", time_limit)
        check_positive_int(steps=steps, batch_size=batch_size)
        if not (isinstance(ema, float) and 0 < ema < 1):
            raise ValueError(f"ema must be a float in (0, 1), got {ema!r}")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        if isinstance(schedule, str) and schedule == "ve":
            schedule = VESchedule(sigma_min, sigma_max)
        self.schedule = make_schedule(schedule)
        self.net, self.objective = net, objective
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.steps, self.batch_size, self.lr, self.ema = steps, batch_size, float(lr), ema
        self.time_limit, self.dtype, self.seed, self.progress = time_limit, dtype, seed, progress
        self.device = torch.device(device) if device is not None else default_device()

    # ------------------------------------------------------------------ scaling
    def _to_model(self, t: Tensor) -> Tensor:
        return ((t - self.mean_) / self.scale_).to(device=self.device, dtype=self.dtype)

    def _from_model(self, t: Tensor) -> Tensor:
        return t.detach().to(device="cpu", dtype=torch.float64) * self.scale_ + self.mean_

    def _fitted(self) -> NoiseConditionalScore:
        if not hasattr(self, "model_"):
            raise RuntimeError("ScoreModel is not fitted; call fit(X) first")
        return self.model_

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
        return (sig / self.scale_).to(device=self.device, dtype=self.dtype)

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
        if self.seed is not None:
            torch.manual_seed(self.seed)
        self.n_features_in_ = d
        self.mean_, self.scale_ = scalar_standardization(x)
        xs = self._to_model(x)
        model = build_score_model(self.net, d) if isinstance(self.net, str) else self.net
        model = model.to(device=self.device, dtype=self.dtype)
        loss = score_matching_loss(self.objective)
        schedule, n, bs = self.schedule, xs.shape[0], self.batch_size

        def sampler(gen: torch.Generator) -> list[Any]:
            return [xs[torch.randint(n, (bs,), generator=gen).to(self.device)], gen]

        def loss_fn(m: NoiseConditionalScore, batch: Tensor, gen: torch.Generator) -> Tensor:
            return loss(m, batch, schedule, gen)

        per_epoch = min(self.steps, 250)
        start = time.perf_counter()
        self.history_: History = fit(
            model,
            loss_fn,
            sampler,
            epochs=math.ceil(self.steps / per_epoch),
            steps_per_epoch=per_epoch,
            lr=self.lr,
            schedule="cosine",
            seed=self.seed,
            time_limit=self.time_limit,
            progress=self.progress,
            ema=self.ema,
        )
        self.fit_seconds_ = time.perf_counter() - start
        self.model_ = model
        return self

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
        method: str = "pc",
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
            method: ``"pc"`` (predictor–corrector, default), ``"sde"`` (reverse-SDE
                Euler–Maruyama), ``"ode"`` (probability flow, ``torchdiffeq``),
                ``"langevin"`` (annealed Langevin, NCSN) or ``"mala"`` (annealed
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
            seed if seed is not None else int(torch.randint(2**62, ()))
        )
        sch = self.schedule
        std = sch.prior_std(1.0)
        x = std * torch.randn(n, self.n_features_in_, generator=gen, dtype=self.dtype)
        x = x.to(self.device)
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
            ts = torch.linspace(1.0, sch.t_min, levels, dtype=self.dtype)
            sigmas = sch.noise_level(ts)
            z, self.acceptance_rate_ = annealed_langevin(
                model, x, sigmas, steps_per_level, eps, method == "mala", gen
            )
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
        x, back = as_samples(X, "X", dim=self.n_features_in_)
        d = self.n_features_in_
        z = self._to_model(x)
        level, schedule = self.sigma_at_min(), self.schedule
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
            lo = torch.tensor([bounds[0], bounds[2]], dtype=torch.float64)
            hi = torch.tensor([bounds[1], bounds[3]], dtype=torch.float64)
            lo, hi = (lo - self.mean_) / self.scale_, (hi - self.mean_) / self.scale_
            box = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
            lp = grid_log_prob(model, z, level, box, resolution)
        else:
            raise ValueError(f"method must be 'ode' or 'grid', got {method!r}")
        return back(lp.to("cpu", torch.float64) - d * math.log(self.scale_))

    def sigma_at_min(self) -> float:
        r"""The smallest noise level of the schedule (standardized units)."""
        return float(
            self.schedule.noise_level(torch.tensor(self.schedule.t_min, dtype=torch.float64))
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        r"""Saves the fitted model (network, weights, schedule and data scaling)."""
        model = self._fitted()
        meta = {
            "estimator": "ScoreModel",
            "schedule": self.schedule.config(),
            "objective": self.objective,
            "mean": self.mean_.tolist(),
            "scale": self.scale_,
        }
        io.save(model, path, metadata=meta)

    @classmethod
    def load(
        cls, path: str | os.PathLike, device: str | torch.device | None = "cpu"
    ) -> ScoreModel:
        r"""Loads a model saved by :meth:`save` (never executes code from the file).

        Raises:
            ValueError: If the file is corrupt or not a saved :class:`ScoreModel`.
        """
        model, meta = io.load_estimator(path, "ScoreModel", device)
        with io.metadata_errors(path, "ScoreModel"):
            if not isinstance(model, NoiseConditionalScore):
                raise TypeError(f"the network is a {type(model).__name__}, not a score model")
            mean, scale = standardization_from_metadata(meta["mean"], meta["scale"], model.dim)
            schedule = make_schedule(meta["schedule"])
        dtype = next(model.parameters()).dtype
        est = cls(model, schedule, meta.get("objective", "dsm"), dtype=dtype, device=device)
        est.model_, est.n_features_in_, est.mean_, est.scale_ = model, model.dim, mean, scale
        return est
