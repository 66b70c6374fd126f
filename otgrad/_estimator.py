r"""The estimator base shared by the task heads (private).

It follows the conventions of scikit-learn and POT: every hyperparameter is an argument of
``__init__`` stored unchanged under its own name (so ``get_params``, ``set_params``,
:func:`sklearn.base.clone` and ``repr`` work), ``fit(...)`` returns ``self``, fitted
attributes end in ``_``, and an unfitted estimator raises :class:`NotFittedError`.
Randomness comes from ``seed`` only: :meth:`Estimator._seeded` runs the fit with the global
generators forked and seeded, so that two fits with the same seed are identical and the
caller's random state is left as it was. A user-supplied network is deep-copied at ``fit``.
:meth:`Estimator.save` / :meth:`Estimator.load` store the fitted module with
:mod:`otgrad.io`, the JSON-compatible hyperparameters and the fitted state.

Writing a new head: subclass :class:`Estimator`, set :attr:`Estimator._module` to the name
of the fitted module's attribute, implement ``fit`` with :meth:`Estimator._seeded`, and
:meth:`Estimator._fitted_state` / :meth:`Estimator._restore` for what ``save`` keeps besides
the module (see the docs page "Writing a new head").
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import os
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from . import io
from ._validation import check_device, check_seed
from .train import History, default_device, fit

__all__ = ["Estimator", "NotFittedError"]

E = TypeVar("E", bound="Estimator")

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_CHUNK = 65536


class NotFittedError(RuntimeError, AttributeError):
    r"""Raised when a method that needs a fitted estimator is called before ``fit``."""


class Estimator:
    r"""Base class of the task heads (:class:`~otgrad.ot.BrenierMap`,
    :class:`~otgrad.score.ScoreModel`, :class:`~otgrad.flows.ConvexPotentialFlow`,
    :class:`~otgrad.inverse.ConvexRegularizer`)."""

    #: The attribute that holds the fitted module (saved by :meth:`save`).
    _module: ClassVar[str] = "net_"

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        return [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def _store(self, arguments: dict[str, Any]) -> None:
        r"""Stores the constructor's arguments unchanged under their own names; ``arguments``
        is the constructor's ``locals()`` (checked before this call)."""
        for name in self._param_names():
            setattr(self, name, arguments[name])

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        r"""The hyperparameters, as given to ``__init__`` (scikit-learn's convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self: E, **params: Any) -> E:
        r"""Sets hyperparameters (checked as ``__init__`` checks them); returns ``self``."""
        names = self._param_names()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no parameters {unknown}; valid: {names}")
        merged = {**self.get_params(deep=False), **params}
        type(self)(**merged)  # the constructor's checks
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        items = []
        for name, value in self.get_params(deep=False).items():
            default = defaults[name].default
            if default is inspect.Parameter.empty or not _same(value, default):
                items.append(f"{name}={_short(value)}")
        return f"{type(self).__name__}({', '.join(items)})"

    # ------------------------------------------------------------------ fitting helpers
    def _device(self) -> torch.device:
        r"""Where to fit: the ``device`` hyperparameter, else :func:`~otgrad.train.default_device`."""
        return check_device(getattr(self, "device", None)) or default_device()

    def _placement(self) -> tuple[torch.device, torch.dtype]:
        r"""The device and dtype of the fitted module, else those the fit will use."""
        module = self.__dict__.get(self._module)
        p = None if module is None else next(module.parameters(), None)
        if p is None:
            return self._device(), getattr(self, "dtype", torch.float32)
        return p.device, p.dtype

    @contextlib.contextmanager
    def _seeded(self) -> Iterator[int]:
        r"""Runs a fit under the global generators seeded from ``seed`` and restores them.

        Yields:
            The fit's seed (drawn from the global generator when ``seed`` is ``None``).
        """
        seed = check_seed(getattr(self, "seed", None))
        if seed is None:
            seed = int(torch.randint(2**62, ()))
        device = self._device()
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield seed

    def _fit_steps(
        self, module: nn.Module, loss_fn: Callable, sampler: Callable, seed: int,
        per_epoch: int, **options: Any,
    ) -> History:  # fmt: skip
        r"""Trains ``module`` for ``self.steps`` steps of ``sampler`` with a cosine learning
        rate through :func:`otgrad.train.fit` (epochs of ``per_epoch`` steps; ``options`` go
        to ``fit``, e.g. ``lr``), within ``self.time_limit``: with a time limit, the rate
        decays over the steps or the time, whichever ends first (``"cosine-time"``)."""
        per_epoch = min(self.steps, per_epoch)
        schedule = "cosine" if self.time_limit is None else "cosine-time"
        return fit(
            module, loss_fn, sampler, epochs=math.ceil(self.steps / per_epoch),
            steps_per_epoch=per_epoch, schedule=schedule, seed=seed,
            time_limit=self.time_limit, progress=self.progress, **options,
        )  # fmt: skip

    @staticmethod
    def _copy_net(net: nn.Module | None) -> nn.Module | None:
        r"""A deep copy of a user-supplied network: ``fit`` never trains the caller's object."""
        return None if net is None else copy.deepcopy(net)

    def _fitted(self) -> Any:
        r"""The fitted module; :class:`NotFittedError` before ``fit``."""
        module = self.__dict__.get(self._module)
        if module is None:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet; call fit(...) first (or load a "
                "saved one)"
            )
        return module

    @staticmethod
    def _chunks(t: Tensor, fn: Callable[[Tensor], Tensor], size: int = _CHUNK) -> Tensor:
        r"""``fn`` applied to ``t`` in chunks of ``size`` rows, concatenated."""
        return torch.cat([fn(c) for c in t.split(size)]) if len(t) > size else fn(t)

    # ------------------------------------------------------------------ persistence
    def _fitted_state(self) -> dict[str, Any]:
        r"""The fitted attributes, besides the module, that :meth:`save` keeps (JSON)."""
        return {}

    @classmethod
    def _params_from(cls, module: nn.Module, state: dict[str, Any]) -> dict[str, Any]:
        r"""Hyperparameters implied by a loaded module and fitted state (e.g. the dimension
        or the dtype); the saved hyperparameters take precedence."""
        p = next(module.parameters(), None)
        return {} if p is None or "dtype" not in cls._param_names() else {"dtype": p.dtype}

    def _restore(self, module: nn.Module, state: dict[str, Any]) -> None:
        r"""Sets the fitted attributes from a loaded module and :meth:`_fitted_state`'s dict.

        Raises ``KeyError``, ``TypeError`` or ``ValueError`` on a corrupt state.
        """
        setattr(self, self._module, module)

    def save(self, path: str | os.PathLike) -> None:
        r"""Saves the fitted estimator: its module's configuration and weights, its
        hyperparameters and its fitted state (loaded by :meth:`load`, safely)."""
        module = self._fitted()
        params = {k: _encode_param(v) for k, v in self.get_params(deep=False).items()}
        meta = {
            "estimator": type(self).__name__,
            "params": {k: v for k, v in params.items() if v is not _SKIP},
            "fitted": self._fitted_state(),
        }
        io.save(module, path, metadata=meta)

    @classmethod
    def load(
        cls: type[E], path: str | os.PathLike, map_location: str | torch.device | None = "cpu"
    ) -> E:
        r"""Loads an estimator saved by :meth:`save` (never executes code from the file).

        Arguments:
            path: The file.
            map_location: Where to put the fitted module (also the loaded estimator's
                ``device``).

        Raises:
            ValueError: If the file is corrupt or was saved by another estimator.
        """
        module, meta = io.load_estimator(path, cls.__name__, map_location)
        with io.metadata_errors(path, cls.__name__):
            state = meta.get("fitted", meta)
            params = {k: _decode_param(v) for k, v in meta.get("params", {}).items()}
            params = {**cls._params_from(module, state), **params}
            if "device" in cls._param_names() and map_location is not None:
                params["device"] = str(map_location)
            est = cls(**params)
            est._restore(module, state)
        return est


_SKIP = object()


def _encode_param(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return str(value)
    return _SKIP  # modules and other objects: the fitted module carries them


def _decode_param(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) != {"dtype"} or value["dtype"] not in _DTYPES:
            raise ValueError(f"unknown parameter value {value!r}")
        return _DTYPES[value["dtype"]]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"unknown parameter value {value!r}")


def _same(a: Any, b: Any) -> bool:
    try:
        return a is b or (type(a) is type(b) and bool(a == b))
    except Exception:  # tensors, modules: compare by identity only
        return False


def _short(value: Any) -> str:
    if isinstance(value, nn.Module):
        return f"{type(value).__name__}(...)"
    return repr(value)
