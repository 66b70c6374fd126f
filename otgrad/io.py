r"""Saving and loading gradient networks safely.

A saved file holds a JSON-compatible configuration (the class name and constructor
arguments, nested for combinators) and the weights. Loading uses
``torch.load(weights_only=True)``, which never executes code from the file, and
rebuilds the network only from classes registered as
:class:`~otgrad.nn.GradientNetwork` subclasses or through :func:`register` (the heads'
model families, e.g. the noise-conditional score models).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from .nn.base import GradientNetwork

__all__ = ["save", "load", "load_estimator", "metadata_errors", "register", "FORMAT"]

FORMAT = "otgrad.network/1"

_REGISTERED: dict[str, type[nn.Module]] = {}


def register(cls: type[nn.Module]) -> type[nn.Module]:
    r"""Registers a module class for :func:`save` and :func:`load` (usable as a decorator).

    The class must rebuild from ``cls(**instance.config())`` with a JSON-compatible
    configuration. Only registered classes (and :class:`~otgrad.nn.GradientNetwork`
    subclasses) are ever instantiated by :func:`load`.
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module) and hasattr(cls, "config")):
        raise TypeError(f"register needs an nn.Module class with a config() method, got {cls!r}")
    _REGISTERED[cls.__name__] = cls
    return cls


def _serializable(value: Any) -> bool:
    return isinstance(value, GradientNetwork) or _REGISTERED.get(type(value).__name__) is type(
        value
    )


def _encode(value: Any) -> Any:
    if isinstance(value, nn.Module) and _serializable(value):
        return {"__network__": type(value).__name__, "config": _encode(value.config())}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot serialize configuration value of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__network__" in value:
            return _build(value["__network__"], value.get("config"))
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _build(name: Any, config: Any) -> nn.Module:
    cls = None
    if isinstance(name, str):
        cls = GradientNetwork.registry.get(name) or _REGISTERED.get(name)
    if cls is None:
        raise ValueError(f"corrupt checkpoint: unknown network class {name!r}")
    if not isinstance(config, dict):
        raise ValueError(f"corrupt checkpoint: the configuration of {name} is not a mapping")
    try:
        return cls(**_decode(config))
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"corrupt checkpoint: cannot rebuild {name} from its configuration: {e}"
        ) from e


def save(net: nn.Module, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
    r"""Saves a network's configuration and weights to ``path``.

    Arguments:
        net: The network (a :class:`~otgrad.nn.GradientNetwork` or a registered module).
        path: The destination file.
        metadata: JSON-compatible extra data (numbers, strings, lists, dicts) stored
            beside the network, e.g. an estimator's data scaling.

    Example:
        >>> from otgrad.nn import GradNetC
        >>> save(GradNetC(2, 8), "net.pt")  # doctest: +SKIP
    """
    if not (isinstance(net, nn.Module) and _serializable(net)):
        raise TypeError(
            f"net must be a GradientNetwork or a class registered with otgrad.io.register, "
            f"got {type(net).__name__}"
        )
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    payload = {
        "format": FORMAT,
        "metadata": _encode(metadata or {}),
        "network": _encode(net),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
    }
    torch.save(payload, path)


def load(
    path: str | os.PathLike,
    map_location: str | torch.device | None = "cpu",
    *,
    with_metadata: bool = False,
) -> nn.Module | tuple[nn.Module, dict[str, Any]]:
    r"""Loads a network saved by :func:`save`, without executing code from the file.

    Arguments:
        path: The file.
        map_location: Where to put the weights.
        with_metadata: Also return the ``metadata`` given to :func:`save`.

    Returns:
        The network, with the saved weights and dtype (and the metadata dict).

    Raises:
        ValueError: If the file is truncated, tampered with, or not an otgrad network.
    """
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # unpickling errors, truncated zip archives, ...
        raise ValueError(f"corrupt checkpoint {os.fspath(path)!r}: {type(e).__name__}: {e}") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"corrupt checkpoint {os.fspath(path)!r}: not an otgrad network file")
    spec, state = payload.get("network"), payload.get("state_dict")
    if not isinstance(spec, dict) or not isinstance(state, dict):
        raise ValueError(f"corrupt checkpoint {os.fspath(path)!r}: missing network or weights")
    net = _build(spec.get("__network__"), spec.get("config"))
    dtypes = {
        v.dtype for v in state.values() if isinstance(v, torch.Tensor) and v.is_floating_point()
    }
    if len(dtypes) == 1:
        net = net.to(dtypes.pop())
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as e:
        raise ValueError(
            f"corrupt checkpoint {os.fspath(path)!r}: weights do not match: {e}"
        ) from e
    for k, v in net.state_dict().items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ValueError(f"corrupt checkpoint {os.fspath(path)!r}: non-finite weights in {k}")
    net = net.to(map_location) if map_location is not None else net
    if not with_metadata:
        return net
    metadata = payload.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError(f"corrupt checkpoint {os.fspath(path)!r}: metadata is not a mapping")
    return net, metadata


@contextlib.contextmanager
def metadata_errors(path: str | os.PathLike, estimator: str) -> Iterator[None]:
    r"""Turns the ``KeyError``, ``TypeError`` and ``ValueError`` raised while reading an
    estimator's metadata into one ``ValueError`` naming the corrupt file."""
    try:
        yield
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"corrupt {estimator} file {os.fspath(path)!r}: {e}") from e


def load_estimator(
    path: str | os.PathLike, estimator: str, map_location: str | torch.device | None = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    r"""Loads the network and metadata of a file saved by an estimator named ``estimator``.

    Raises:
        ValueError: If the file is corrupt or was saved by something else.
    """
    net, meta = load(path, map_location=map_location, with_metadata=True)
    with metadata_errors(path, estimator):
        if meta.get("estimator") != estimator:
            raise KeyError("estimator")
    return net, meta
