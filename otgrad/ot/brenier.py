r"""The Brenier map estimator: optimal transport maps as mGradNets.

By Brenier's theorem the optimal transport map for the quadratic cost between
:math:`\mu` (absolutely continuous) and :math:`\nu` is the unique gradient of a convex
function that pushes :math:`\mu` onto :math:`\nu`. An mGradNet is such a gradient for every
value of its parameters, so fitting the push-forward is enough: no cycle-consistency
penalty, no second network, no convexity regularizer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._estimator import Estimator
from .._validation import (
    as_samples,
    cast_samples,
    check_choice,
    check_fit_settings,
    check_optional_positive,
    check_positive_int,
)
from ..data.samples import scalar_standardization, standardization_from_metadata
from ..nn import GradientNetwork, GradNetM, SingleLayerGradNet, StronglyConvex, Sum
from ..nn.base import unconstrain
from ..train import History
from .gaussian import GaussianMap
from .losses import MongeAmpere, SemiDual, barycentric_loss, emd_loss, sinkhorn_loss

__all__ = ["BrenierMap", "default_network", "LOSSES"]

LOSSES = ("semidual", "sinkhorn", "emd", "barycentric", "monge-ampere")


def default_network(
    dim: int, hidden: int | None = None, modules: int | None = None, mu: float = 1e-3
) -> StronglyConvex:
    r"""The default Brenier potential: a PSD affine map plus an mGradNet-M, made
    :math:`\mu`-strongly convex.

    .. math:: \nabla\psi(x) = W_0^\top \operatorname{diag}(\alpha)(W_0 x + b_0)
        + \sum_{m} a_m W_m^\top \operatorname{softmax}(\beta_m(W_m x + b_m)) + \mu x

    The affine part (a linear single-layer mGradNet, eq. 7) can hold the Gaussian (Bures)
    map exactly; the modules (Cor 12.1) add the nonlinear part; the sum is monotone
    (Cor 3.1) and strongly monotone (Prop 3.1), so the inverse map exists everywhere.

    Arguments:
        dim: The dimension :math:`d`.
        hidden: The width of each softmax module (default :math:`\max(2d, 8)` for
            :math:`d \le 16`, else :math:`\max(d, 32)`).
        modules: The number of modules (default 32 for :math:`d \le 16`, else 16).
        mu: The strong-convexity modulus.

    Example:
        >>> net = default_network(3)
        >>> net.monotone, net.strong_convexity
        (True, 0.001)
    """
    small = dim <= 16  # the W2-benchmark runs preferred many narrow modules in low d
    if hidden is None:
        hidden = max(2 * dim, 8) if small else max(dim, 32)
    if modules is None:
        modules = 32 if small else 16
    linear = SingleLayerGradNet(dim, dim, activation="linear")
    residual = GradNetM(dim, hidden, modules, activation="softmax")
    with torch.no_grad():  # start close to the affine part: the modules add 1 % of the identity
        residual.raw_a.copy_(unconstrain(residual.a() * 0.01, True))
    return StronglyConvex(Sum([linear, residual]), mu)


_CHUNK = 65536
_MOMENT_SAMPLES = 200_000
_STREAM_SAMPLES = 65536


class _Stream:
    r"""A sampler ``fn(n, generator)`` of fresh samples ``(n, d)`` (NumPy or torch)."""

    def __init__(self, fn: Callable[[int, torch.Generator], Any], name: str):
        self.fn, self.name = fn, name

    def draw(self, n: int, gen: torch.Generator, dim: int | None = None) -> Tensor:
        r"""``n`` checked draws as a float64 CPU tensor."""
        t, _ = as_samples(self.fn(n, gen), f"the output of the sampler {self.name}", dim=dim)
        if t.shape[0] != n:
            raise ValueError(
                f"the sampler {self.name} must return n={n} samples, got {t.shape[0]}"
            )
        return t


def _subsample(t: Tensor, seed: int | None) -> Any:
    r"""At most :data:`_MOMENT_SAMPLES` rows of ``t`` (all if fewer), as a float64 array."""
    if len(t) > _MOMENT_SAMPLES:
        gen = torch.Generator().manual_seed(0 if seed is None else seed)
        t = t[torch.randperm(len(t), generator=gen)[:_MOMENT_SAMPLES].to(t.device)]
    return t.double().cpu().numpy()


def _check_log_density(fn: Any, x: Tensor, name: str) -> None:
    r"""Checks that ``fn`` maps float64 points ``(k, d)`` to ``k`` finite log-densities at
    the first source samples, where the Monge–Ampère fit starts (near the identity): a NaN
    or infinite value there would make every step's loss non-finite."""
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    probe = x[:256].clone()
    out = fn(probe)
    if not isinstance(out, Tensor) or out.shape != (probe.shape[0],):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"{name} must return a tensor of shape (n,) for n points, got {got}")
    bad = int((~torch.isfinite(out)).sum())
    if bad:
        raise ValueError(
            f"{name} is NaN or infinite at {bad} of the first {probe.shape[0]} source "
            "samples (where the fit starts); it must be finite there"
        )


def _set_affine(net: GradientNetwork, A: Tensor, c: Tensor) -> bool:
    r"""Sets the affine part of a :func:`default_network` to :math:`x \mapsto A x + c`
    (minus the module and :math:`\mu` contributions at 0); returns whether it could."""
    if not (
        isinstance(net, StronglyConvex)
        and isinstance(net.net, Sum)
        and isinstance(net.net.nets[0], SingleLayerGradNet)
        and net.net.nets[0].config()["activation"] == "linear"
        and net.net.nets[0].hidden == net.dim
    ):
        return False
    lin, rest = net.net.nets[0], list(net.net.nets[1:])
    with torch.no_grad():
        x0 = torch.zeros(1, net.dim, dtype=A.dtype, device=A.device)
        jac_rest = sum((r._dense_jacobian(x0)[0] for r in rest), torch.zeros_like(A))
        f_rest = sum((r._forward(x0)[0] for r in rest), torch.zeros_like(c))
        target = A - jac_rest - net.mu * torch.eye(net.dim, dtype=A.dtype, device=A.device)
        evals, evecs = torch.linalg.eigh((target + target.mT) / 2)
        evals = evals.clamp_min(1e-3 * float(evals.abs().max().clamp_min(1e-12)))
        lin.weight.copy_(evecs.mT)
        lin.raw_alpha.copy_(unconstrain(evals, True))
        lin.bias.zero_()
        lin.out_bias.copy_(c - f_rest)
    return True


class BrenierMap(Estimator):
    r"""Fits the optimal transport map between two sample sets with an mGradNet.

    The map is :math:`T = \nabla\psi` with :math:`\psi` convex by construction, so the
    fitted map is the Brenier (:math:`W_2`-optimal) map as soon as it pushes the source
    onto the target. Data are centered and scaled by a scalar per set (which keeps the
    Jacobian symmetric positive definite); the network works in those coordinates.

    Arguments:
        net: A monotone :class:`~otgrad.nn.GradientNetwork` (strongly monotone for the
            semi-dual and for :meth:`inverse_transform`); default :func:`default_network`.
        loss: ``"semidual"`` (default, exact conjugate; see :class:`~otgrad.ot.losses.SemiDual`),
            ``"sinkhorn"``, ``"emd"``, ``"barycentric"`` (minibatch losses by POT) or
            ``"monge-ampere"`` (needs ``target_log_prob`` in :meth:`fit`).
        init: ``"gaussian"`` starts the default network at the Bures map between the
            sample moments (the linear baseline; moments of a random subset of
            :math:`2 \cdot 10^5` samples for larger sets); ``"identity"`` near the identity.
        steps: The number of Adam steps.
        batch_size: The minibatch size (source and target).
        lr: The Adam learning rate, decayed to 0 by a cosine schedule (default
            :math:`3 \cdot 10^{-2}` for :math:`d \le 16`, else :math:`10^{-2}`).
        epsilon: The entropic regularization of ``"sinkhorn"``, relative to the scaled data
            (default :math:`0.05 d`).
        inverse_steps: The maximal Newton iterations per step for the semi-dual's
            conjugate points (relative tolerance :math:`10^{-3}` in float32); each target
            keeps its last point as the next warm start, so most converge in one or two.
        amortize: For the semi-dual: learn a second mGradNet :math:`\hat x(y) \approx
            \nabla\psi^*(y)` beside the map, by regression onto the conjugate points solved
            at each step (started at the inverse Gaussian map), and warm-start every solve
            from its prediction (with a fixed target set: from the better of the prediction
            and the point stored at the target's last visit); see
            :class:`~otgrad.ot.losses.SemiDual` and Amos (2023). The fitted one also starts
            :meth:`inverse_transform`'s Newton iterations (``conjugate_net_``). Default: on
            for a target sampler, off for a target set, where the stored points are the
            better starts (W2 benchmark, d = 32: median relative residual of the stored
            points 0.02–0.1 against 0.2 for the prediction).
        time_limit: Stops training after this many seconds; the cosine learning rate
            then decays to 0 over the steps or the time, whichever ends first.
        dtype: The network's dtype (``torch.float32`` or ``torch.float64``).
        device: Where to train (default: the CUDA device ``LOCAL_RANK`` if CUDA is
            available, else CPU; see :func:`~otgrad.train.default_device`).
        seed: Seeds the network's initialization and the minibatches.
        progress: Show a progress bar (default: when stderr is a terminal).
        compile: Compile the training step's loss and backward with
            :func:`torch.compile` (a string is the compile mode); see
            :func:`otgrad.train.fit`.

    Under ``torchrun --nproc_per_node=N`` the fit is data-parallel
    (:func:`otgrad.train.fit`): every process draws the same ``batch_size`` samples and
    trains on its :math:`1/N` share. For the semi-dual this is the single-process fit
    with the same batch, except that each process warm-starts only the conjugate points
    it visited; the minibatch losses (``"sinkhorn"``, ``"emd"``, ``"barycentric"``)
    couple each process's share with its share of the target batch.

    Attributes:
        net_: The fitted network (in scaled coordinates).
        conjugate_net_: The amortizer of the semi-dual fit, :math:`\approx (\nabla\psi)^{-1}`
            in scaled coordinates (``None`` for the other losses, without ``amortize``, and
            after :meth:`load`: it is not saved; the inverse then starts from the target
            points).
        conjugate_solves_: For the semi-dual, per training step, the number of conjugate
            points still iterating at each Newton iteration (its length: the iterations; its
            sum: the work in point-iterations).
        history_: The :class:`~otgrad.train.History` of the fit.
        fit_seconds_: The wall-clock fit time.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(512, 2))
        >>> Y = X @ np.array([[2.0, 0.5], [0.5, 1.0]]) + 3
        >>> T = BrenierMap(steps=50, seed=0).fit(X, Y)
        >>> T.transform(X[:3]).shape
        (3, 2)

    References:
        | Polar factorization and monotone rearrangement of vector-valued functions
          (Brenier, 1991)
        | Gradient Networks (Chaudhari, Pranav, Moura, 2025)
    """

    def __init__(
        self,
        net: GradientNetwork | None = None,
        loss: str = "semidual",
        *,
        init: str = "gaussian",
        steps: int = 2000,
        batch_size: int = 1024,
        lr: float | None = None,
        epsilon: float | None = None,
        inverse_steps: int = 10,
        amortize: bool | None = None,
        time_limit: float | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device | None = None,
        seed: int | None = None,
        progress: bool | None = None,
        compile: bool | str = False,
    ):
        if net is not None:
            if not isinstance(net, GradientNetwork):
                raise TypeError(f"net must be a GradientNetwork, got {type(net).__name__}")
            if not net.monotone:
                raise ValueError(
                    f"net must be monotone (an mGradNet) to be a Brenier map; "
                    f"{type(net).__name__} has monotone=False"
                )
        check_choice("loss", loss, LOSSES)
        check_choice("init", init, ("gaussian", "identity"))
        check_positive_int(steps=steps, batch_size=batch_size, inverse_steps=inverse_steps)
        check_optional_positive(lr=lr, epsilon=epsilon)
        check_fit_settings(dtype, device, seed, time_limit, progress)
        if amortize is not None and not isinstance(amortize, bool):
            raise TypeError(f"amortize must be a bool or None, got {amortize!r}")
        if not isinstance(compile, (bool, str)):
            raise TypeError(f"compile must be a bool or a torch.compile mode, got {compile!r}")
        self._store(locals())

    # ------------------------------------------------------------------ scaling
    def _scaled(self, t: Tensor, which: str) -> Tensor:
        m, s = (self.mean_x_, self.scale_x_) if which == "x" else (self.mean_y_, self.scale_y_)
        device, dtype = self._placement()
        # in chunks: no float64 temporary of the whole set (10^6 x 64 samples: 512 MB)
        name = which.upper()
        parts = [cast_samples((c - m) / s, device, dtype, name, True) for c in t.split(_CHUNK)]
        return torch.cat(parts) if len(parts) != 1 else parts[0]

    def _unscaled(self, t: Tensor, which: str) -> Tensor:
        m, s = (self.mean_x_, self.scale_x_) if which == "x" else (self.mean_y_, self.scale_y_)
        return t.to(device="cpu", dtype=torch.float64) * s + m

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: Any,
        Y: Any = None,
        *,
        target_log_prob: Callable[[Tensor], Tensor] | None = None,
        source_log_prob: Callable[[Tensor], Tensor] | None = None,
    ) -> BrenierMap:
        r"""Fits :math:`T` such that :math:`T_\# X \approx Y`.

        Arguments:
            X: Source samples, shape ``(n, d)`` (NumPy or torch), or a sampler
                ``X(n, generator)`` that returns ``n`` fresh samples (drawn with the
                ``torch.Generator`` it is given, for reproducibility): a new batch at every
                step, and :math:`2^{16}` first draws for the scaling and the Gaussian start.
            Y: Target samples, shape ``(m, d)``, or a sampler; optional for
                ``"monge-ampere"``.
            target_log_prob: For ``"monge-ampere"``: :math:`\log q`, a differentiable map of
                float64 tensors ``(n, d) -> (n,)`` in the original coordinates.
            source_log_prob: For ``"monge-ampere"`` (optional): :math:`\log p`.

        Returns:
            ``self``.
        """
        self.__dict__.pop("net_", None)
        self.conjugate_net_, self.conjugate_solves_ = None, []
        with self._seeded() as seed:
            X, Y, x, y = self._first_draws(X, Y, seed)
            self._check_data(x, y, target_log_prob, source_log_prob)
            self.n_features_in_ = x.shape[1]
            self.mean_x_, self.scale_x_ = scalar_standardization(x, "X")
            self.mean_y_, self.scale_y_ = (
                scalar_standardization(x, "X") if y is None else scalar_standardization(y, "Y")
            )
            xs = self._scaled(x, "x")
            ys = self._scaled(y, "y") if y is not None else None
            del x, y  # the float64 copies; training only needs the scaled sets
            net, x0, gaussian = self._initial_network(xs, ys)
            # the training data: the scaled sets, or the samplers (scaled draws)
            xs = self._scaled_stream(X, "x") if isinstance(X, _Stream) else xs
            ys = self._scaled_stream(Y, "y") if isinstance(Y, _Stream) else ys
            x0 = x0 if isinstance(ys, Tensor) else None
            loss_fn = self._loss(xs, ys, x0, gaussian, target_log_prob, source_log_prob)
            del x0  # the semi-dual keeps its own copy (the warm starts)
            start = time.perf_counter()
            self.history_: History = self._train(net, loss_fn, xs, ys, seed)
            self.fit_seconds_ = time.perf_counter() - start
        self.net_ = net
        return self

    @staticmethod
    def _first_draws(X: Any, Y: Any, seed: int) -> tuple[Any, Any, Tensor, Tensor | None]:
        r"""Sample sets as float64 tensors; samplers as streams and their first
        :data:`_STREAM_SAMPLES` draws (for the scaling and the Gaussian start)."""
        gen = torch.Generator().manual_seed(seed)
        X = _Stream(X, "X") if callable(X) else as_samples(X, "X", min_samples=2)[0]
        x = X.draw(_STREAM_SAMPLES, gen) if isinstance(X, _Stream) else X
        if Y is not None:
            Y = _Stream(Y, "Y") if callable(Y) else as_samples(Y, "Y", min_samples=2)[0]
        y = Y.draw(_STREAM_SAMPLES, gen) if isinstance(Y, _Stream) else Y
        return X, Y, x, y

    def _scaled_stream(self, stream: _Stream, which: str) -> Callable[..., Tensor]:
        def draw(n: int, gen: torch.Generator) -> Tensor:
            return self._scaled(stream.draw(n, gen, self.n_features_in_), which)

        return draw

    def _check_data(self, x: Tensor, y: Tensor | None, target_log_prob, source_log_prob) -> None:
        d = x.shape[1]
        if self.loss == "monge-ampere":
            if target_log_prob is None:
                raise ValueError("loss='monge-ampere' needs target_log_prob")
            _check_log_density(target_log_prob, x, "target_log_prob")
            if source_log_prob is not None:
                _check_log_density(source_log_prob, x, "source_log_prob")
        else:
            if y is None:
                raise ValueError(f"loss={self.loss!r} needs target samples Y")
            if target_log_prob is not None or source_log_prob is not None:
                raise ValueError("target_log_prob/source_log_prob are for loss='monge-ampere'")
        if y is not None and y.shape[1] != d:
            raise ValueError(f"Y must have {d} features, got {y.shape[1]}")
        if self.net is not None and self.net.dim != d:
            raise ValueError(f"net has dim={self.net.dim} but X has {d} features")

    def _initial_network(self, xs: Tensor, ys: Tensor | None) -> tuple[GradientNetwork, Any, Any]:
        r"""The network to train (a copy of ``net``, or :func:`default_network`), started at the
        Gaussian map with ``init="gaussian"``, the conjugate points of that start and the
        Gaussian map (``None`` where not used)."""
        d, device, dtype = xs.shape[1], xs.device, self.dtype
        net = self._copy_net(self.net) or default_network(d)
        net = net.to(device=device, dtype=dtype)
        if self.init != "gaussian" or ys is None:
            return net, None, None
        # the moments of at most 2 * 10^5 samples of each set (the full sets if smaller)
        gm = GaussianMap().fit(_subsample(xs, self.seed), _subsample(ys, self.seed))
        A = torch.as_tensor(gm.A_, dtype=dtype, device=device)
        if not _set_affine(net, A, torch.as_tensor(gm.b_, dtype=dtype, device=device)):
            return net, None, None
        x0 = [gm.inverse_transform(c.double().cpu()).to(c) for c in ys.split(_CHUNK)]
        return net, torch.cat(x0), gm

    def _train(self, net, loss_fn, xs: Any, ys: Any, seed: int) -> History:
        bs = self.batch_size

        def pick(data: Any, gen: torch.Generator) -> Tensor:
            # indices into a set (the loss gathers them), or a fresh scaled draw
            if data is None:
                return torch.zeros(1, dtype=torch.long)
            if isinstance(data, Tensor):
                return torch.randint(len(data), (min(bs, len(data)),), generator=gen).to(
                    data.device
                )
            return data(bs, gen)

        def sampler(gen: torch.Generator) -> list[Tensor]:
            return [pick(xs, gen), pick(ys, gen)]

        lr = self.lr if self.lr is not None else (3e-2 if self.n_features_in_ <= 16 else 1e-2)
        return self._fit_steps(net, loss_fn, sampler, seed, 100, lr=lr, compile=self.compile)

    def _amortizer(self, d: int, device: Any, gaussian: Any) -> GradientNetwork:
        r"""The conjugate-point model: a small :func:`default_network`, started at the
        inverse of the Gaussian map when there is one."""
        net = default_network(d, modules=4).to(device=device, dtype=self.dtype)
        if gaussian is not None:
            A = torch.linalg.inv(torch.as_tensor(gaussian.A_, dtype=torch.float64))
            b = -A @ torch.as_tensor(gaussian.b_, dtype=torch.float64)
            _set_affine(net, A.to(device=device, dtype=self.dtype), b.to(device, self.dtype))
        return net

    def _loss(self, xs, ys, x0, gaussian, target_log_prob, source_log_prob):
        d, device = self.n_features_in_, self._placement()[0]

        def rows(data: Any, batch: Tensor) -> Tensor:  # a set's rows, or the drawn batch
            return data[batch] if isinstance(data, Tensor) else batch

        if self.loss == "semidual":
            tol = 1e-3 if self.dtype == torch.float32 else 1e-8
            fixed = isinstance(ys, Tensor)
            amortizer = None
            if self.amortize if self.amortize is not None else not fixed:
                amortizer = self._amortizer(d, device, gaussian)
            self.conjugate_net_ = amortizer
            semi = SemiDual(
                ys if fixed else None, tol=tol, max_iter=self.inverse_steps, x0=x0,
                amortizer=amortizer,
            )  # fmt: skip
            self.conjugate_solves_ = semi.iterations
            return lambda net, bx, by: semi(net, rows(xs, bx), by)
        if self.loss == "sinkhorn":
            eps = self.epsilon if self.epsilon is not None else 0.05 * d
            return lambda net, bx, by: sinkhorn_loss(net, rows(xs, bx), rows(ys, by), eps)
        if self.loss == "emd":
            return lambda net, bx, by: emd_loss(net, rows(xs, bx), rows(ys, by))
        if self.loss == "barycentric":
            return lambda net, bx, by: barycentric_loss(net, rows(xs, bx), rows(ys, by))
        # Monge–Ampère in scaled coordinates: the densities of the scaled variables.
        mx, sx, my, sy = self.mean_x_, self.scale_x_, self.mean_y_, self.scale_y_

        def log_q(u: Tensor) -> Tensor:
            v = u.double().cpu() * sy + my
            return (target_log_prob(v) + d * math.log(sy)).to(u)

        log_p = None
        if source_log_prob is not None:

            def log_p(u: Tensor) -> Tensor:
                v = u.double().cpu() * sx + mx
                return (source_log_prob(v) + d * math.log(sx)).to(u)

        ma = MongeAmpere(log_q, log_p)
        return lambda net, bx, by: ma(net, rows(xs, bx))

    # ------------------------------------------------------------------ using the map
    def transform(self, X: Any) -> Any:
        r"""Maps source points: :math:`T(x) = \nabla\psi(x)`, shape ``(n, d)``."""
        net = self._fitted()
        x, back = as_samples(X, "X", dim=self.n_features_in_)
        with torch.no_grad():
            out = self._chunks(self._scaled(x, "x"), net)
        return back(self._unscaled(out, "y"))

    def inverse_transform(self, Y: Any, tol: float | None = None) -> Any:
        r"""Maps target points back: :math:`T^{-1}(y) = \nabla\psi^*(y)`, by Newton's method.

        Well defined because the network is strongly convex; raises
        :class:`~otgrad.calculus.InverseError` if the tolerance (default :math:`10^{-5}`
        in float32, :math:`10^{-10}` in float64, relative to the scaled data) is missed.
        """
        self._fitted()
        y, back = as_samples(Y, "Y", dim=self.n_features_in_)
        return back(self._inverse_scaled(y, tol))

    def _inverse_scaled(self, y: Tensor, tol: float | None = None) -> Tensor:
        tol = tol if tol is not None else (1e-5 if self.dtype == torch.float32 else 1e-10)
        start = self.__dict__.get("conjugate_net_")

        def solve(c: Tensor) -> Tensor:
            with torch.no_grad():
                x0 = None if start is None else start(c)
            return self.net_.inverse(c, tol, x0=x0)

        out = self._chunks(self._scaled(y, "y"), solve)
        return self._unscaled(out, "x")

    def _conjugate_scaled(self, y: Tensor) -> Tensor:
        x = self._inverse_scaled(y)
        return (x * y).sum(-1) - self._potential_scaled(x)

    def _potential_scaled(self, x: Tensor) -> Tensor:
        # psi(x) = sx * sy * phi((x - mx) / sx) + <my, x>
        with torch.no_grad():
            phi = self._chunks(self._scaled(x, "x"), self.net_.potential)
        return phi.double().cpu() * (self.scale_x_ * self.scale_y_) + x @ self.mean_y_

    def potential(self, X: Any) -> Any:
        r"""The convex potential :math:`\psi(x)` with :math:`T = \nabla\psi`, shape ``(n,)``
        (defined up to an additive constant)."""
        self._fitted()
        x, back = as_samples(X, "X", dim=self.n_features_in_)
        return back(self._potential_scaled(x))

    def conjugate_potential(self, Y: Any) -> Any:
        r"""The convex conjugate :math:`\psi^*(y) = \langle x, y\rangle - \psi(x)` at
        :math:`x = T^{-1}(y)`, shape ``(m,)``; :math:`\nabla\psi^* = T^{-1}`."""
        self._fitted()
        y, back = as_samples(Y, "Y", dim=self.n_features_in_)
        return back(self._conjugate_scaled(y))

    def score(self, X: Any, Y: Any) -> float:
        r"""The dual estimate of :math:`W_2^2` between ``X`` and ``Y`` (higher is better).

        .. math:: \mathbb{E}\|x\|^2 + \mathbb{E}\|y\|^2 - 2\big(\mathbb{E}\,\psi(x) +
            \mathbb{E}\,\psi^*(y)\big) \le W_2^2(X, Y)

        For every convex :math:`\psi` this is a lower bound on the squared Wasserstein
        distance between the two sample sets (Fenchel–Young), equal to it when
        :math:`\nabla\psi` is their optimal map: the estimator maximizes it, so held-out
        sets measure the fit without a reference map.
        """
        self._fitted()
        x, _ = as_samples(X, "X", dim=self.n_features_in_)
        y, _ = as_samples(Y, "Y", dim=self.n_features_in_)
        psi = self._potential_scaled(x).mean()
        conj = self._conjugate_scaled(y).mean()
        return float(x.pow(2).sum(-1).mean() + y.pow(2).sum(-1).mean() - 2 * (psi + conj))

    # ------------------------------------------------------------------ persistence
    def _fitted_state(self) -> dict[str, Any]:
        return {
            "mean_x": self.mean_x_.tolist(),
            "scale_x": self.scale_x_,
            "mean_y": self.mean_y_.tolist(),
            "scale_y": self.scale_y_,
        }

    def _restore(self, module: torch.nn.Module, state: dict[str, Any]) -> None:
        if not isinstance(module, GradientNetwork):
            raise TypeError(f"the network is a {type(module).__name__}, not a GradientNetwork")
        d = module.dim
        self.mean_x_, self.scale_x_ = standardization_from_metadata(
            state["mean_x"], state["scale_x"], d
        )
        self.mean_y_, self.scale_y_ = standardization_from_metadata(
            state["mean_y"], state["scale_y"], d
        )
        self.net_, self.n_features_in_ = module, d
        self.conjugate_net_, self.conjugate_solves_ = None, []  # not saved
