r"""Input checks shared by the whole library (private).

Every public entry point validates its arguments with these functions, so that bad input
gets a ``TypeError`` or ``ValueError`` naming the argument and what was expected. Tensor
checks are split in two: shape, dtype and device checks always run; value checks (NaN,
infinity) need a device-to-host synchronization and can be switched off with
:func:`set_validation` (they are skipped inside ``torch.compile`` and ``torch.func``
transforms, where they cannot run).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "set_validation",
    "validation",
    "validating",
    "traced",
    "check_input",
    "check_image",
    "check_positive_int",
    "check_positive_number",
    "check_optional_positive",
    "check_choice",
    "check_dtype",
    "check_device",
    "check_seed",
    "check_output_path",
    "check_fit_settings",
    "as_samples",
    "cast_samples",
]

_VALIDATE = True
_FLOAT_NUMPY = (np.float16, np.float32, np.float64)
_MAX_SEED = 2**63 - 1


def set_validation(enabled: bool) -> None:
    r"""Turns the value checks (NaN, infinity) of the public methods on or off.

    Shape, dtype and device checks always run. Value checks need a device-to-host
    synchronization; the training loop of a well-checked data set may switch them off.
    """
    global _VALIDATE
    _VALIDATE = bool(enabled)


@contextlib.contextmanager
def validation(enabled: bool) -> Iterator[None]:
    r"""A context manager that sets :func:`set_validation` and restores it on exit."""
    global _VALIDATE
    old = _VALIDATE
    _VALIDATE = bool(enabled)
    try:
        yield
    finally:
        _VALIDATE = old


def validating() -> bool:
    r"""Whether value checks are on (see :func:`set_validation`)."""
    return _VALIDATE


def traced(x: Tensor) -> bool:
    r"""Whether ``x`` is being traced by ``torch.compile`` or a ``torch.func`` transform
    (value checks would break them)."""
    return torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(x)


def check_input(
    x: Any,
    name: str,
    dim: int,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> Tensor:
    r"""Validates a ``(*, dim)`` floating tensor and returns it unchanged.

    Raises:
        TypeError: If ``x`` is not a tensor, not floating, or has another dtype than ``dtype``.
        ValueError: If ``x`` has no dimension, a last dimension other than ``dim``, no
            element, another device than ``device``, or (with validation on) NaN or infinity.
    """
    shape_ok = isinstance(x, Tensor) and x.dim() > 0 and x.shape[-1] == dim
    return _check_tensor(x, name, f"(batch, {dim})", shape_ok, dtype, device)


def check_image(
    x: Any,
    name: str,
    channels: int,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> Tensor:
    r"""Validates a ``(B, channels, H, W)`` floating image batch and returns it unchanged.

    Raises:
        TypeError: If ``x`` is not a floating tensor, or has another dtype than ``dtype``.
        ValueError: If ``x`` is not 4-dimensional with ``channels`` channels, is empty, is
            on another device than ``device``, or (with validation on) holds NaN or infinity.
    """
    shape_ok = isinstance(x, Tensor) and x.dim() == 4 and x.shape[1] == channels
    return _check_tensor(x, name, f"(batch, {channels}, height, width)", shape_ok, dtype, device)


def _check_tensor(
    x: Any,
    name: str,
    shape: str,
    shape_ok: bool,
    dtype: torch.dtype | None,
    device: torch.device | None,
) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape {shape}, got {type(x).__name__}; "
            "convert it with torch.as_tensor(...) first"
        )
    if not shape_ok:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the network's parameters are {dtype}; "
            f"convert one of them (e.g. {name}.to({dtype}) or net.to({x.dtype}))"
        )
    if device is not None and x.device != device:
        raise ValueError(
            f"{name} is on device {x.device} but the network is on {device}; move one of them"
        )
    if _VALIDATE and not traced(x) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_positive_int(**values: Any) -> None:
    r"""Raises a ``ValueError`` naming the first argument that is not a positive integer."""
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def check_positive_number(name: str, value: Any) -> float:
    r"""Returns ``value`` as a float; a ``ValueError`` naming ``name`` unless it is a
    positive finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def check_optional_positive(**values: Any) -> None:
    r"""Like :func:`check_positive_number` for each keyword, letting ``None`` through."""
    for name, v in values.items():
        if v is not None:
            check_positive_number(name, v)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    r"""Returns ``value``; a ``ValueError`` naming ``name`` unless it is one of ``choices``."""
    if isinstance(value, str) or value is None or isinstance(value, (int, float)):
        if value in choices:
            return value
    raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def check_dtype(dtype: Any, name: str = "dtype") -> torch.dtype:
    r"""Returns ``dtype``; a ``TypeError`` unless it is ``torch.float32`` or ``torch.float64``."""
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def check_device(device: Any, name: str = "device") -> torch.device | None:
    r"""Returns ``device`` as a :class:`torch.device` (``None`` stays ``None``).

    Raises:
        TypeError: If ``device`` is not a string or a :class:`torch.device`.
        ValueError: If it cannot be parsed, or names a CUDA device this machine lacks.
    """
    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name} must be a string or a torch.device, got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"{name} {device!r} is not a device: {e}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} is {device!r} but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"{name} is {device!r} but this machine has {torch.cuda.device_count()} "
                "CUDA devices"
            )
    return dev


def check_seed(seed: Any, name: str = "seed") -> int | None:
    r"""Returns ``seed`` (``None`` stays ``None``); a ``TypeError``/``ValueError`` unless it is
    an integer in :math:`[0, 2^{63})`."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name} must be an integer or None, got {type(seed).__name__}")
    if not 0 <= int(seed) <= _MAX_SEED:
        raise ValueError(f"{name} must be in [0, 2**63), got {seed}")
    return int(seed)


def check_fit_settings(
    dtype: Any, device: Any, seed: Any, time_limit: Any = None, progress: Any = None
) -> None:
    r"""Checks the settings every estimator shares: ``dtype`` (float32 or float64), ``device``
    (available), ``seed`` (an integer in :math:`[0, 2^{63})` or ``None``), ``time_limit``
    (positive or ``None``) and ``progress`` (a bool or ``None``)."""
    check_dtype(dtype)
    check_device(device)
    check_seed(seed)
    check_optional_positive(time_limit=time_limit)
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool or None, got {type(progress).__name__}")


def check_output_path(path: str | os.PathLike, name: str = "path") -> str:
    r"""Returns ``path`` as a string; a ``ValueError`` unless its folder exists and is
    writable (checked before long work starts, so that no result is lost at the end)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {type(path).__name__}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{name} {path!r}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{name} {path!r}: the folder {folder!r} is not writable")
    if os.path.isdir(path):
        raise ValueError(f"{name} {path!r} is a folder, not a file")
    return path


def as_samples(
    x: Any,
    name: str,
    dim: int | None = None,
    min_samples: int = 1,
) -> tuple[Tensor, Callable[[Tensor], Any]]:
    r"""Checks a sample set of shape ``(n, d)`` and converts it to a float64 CPU tensor.

    Arguments:
        x: A NumPy array or a torch tensor of floating dtype, shape ``(n, d)``.
        name: The argument's name, used in error messages.
        dim: The required number of columns :math:`d` (any if ``None``).
        min_samples: The minimal number of rows.

    Returns:
        The samples as a float64 CPU tensor, and a function that converts a result tensor
        back to the input's kind (NumPy or torch), dtype and device.

    Raises:
        TypeError: If ``x`` is not an array or tensor of floating dtype.
        ValueError: If ``x`` is not 2-D, has too few rows, the wrong number of columns,
            or non-finite values.
    """
    t, back = _as_tensor(x, name)
    if t.dim() != 2:
        raise ValueError(f"{name} must have shape (n_samples, n_features), got {tuple(t.shape)}")
    if t.shape[0] < min_samples:
        raise ValueError(f"{name} has {t.shape[0]} samples; at least {min_samples} are needed")
    if dim is not None and t.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} features, got {t.shape[1]}")
    t = t.to(device="cpu", dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).any(-1).sum())
        raise ValueError(f"{name} contains NaN or infinite values (in {bad} rows)")
    return t, back


def cast_samples(
    t: Tensor, device: torch.device | None, dtype: torch.dtype, name: str, scaled: bool = False
) -> Tensor:
    r"""``t`` (finite float64 values) on ``device`` in ``dtype``.

    Raises:
        ValueError: If a value is beyond the range of ``dtype`` (``scaled``: after the fit's
            standardization), instead of becoming an infinity that turns results into NaN.
    """
    out = t.to(device=device, dtype=dtype)
    if not bool(torch.isfinite(out).all()):
        where = " after the fit's scaling" if scaled else ""
        raise ValueError(
            f"{name} has values beyond the range of {dtype} (up to {float(t.abs().max()):.3g}"
            f"{where}); use dtype=torch.float64"
        )
    return out


def _as_tensor(x: Any, name: str) -> tuple[Tensor, Callable[[Tensor], Any]]:
    if isinstance(x, np.ndarray):
        if x.dtype.type not in _FLOAT_NUMPY:
            raise TypeError(
                f"{name} must have a floating dtype, got {x.dtype}; convert it explicitly "
                "(e.g. x.astype(np.float64))"
            )
        dtype = x.dtype
        return torch.from_numpy(
            np.ascontiguousarray(x)
        ), lambda t: t.detach().cpu().numpy().astype(dtype, copy=False)
    if isinstance(x, Tensor):
        if not x.dtype.is_floating_point:
            raise TypeError(
                f"{name} must have a floating dtype, got {x.dtype}; convert it explicitly "
                "(e.g. x.double())"
            )
        dtype, device = x.dtype, x.device
        return x.detach(), lambda t: t.detach().to(dtype=dtype, device=device)
    raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(x).__name__}")
