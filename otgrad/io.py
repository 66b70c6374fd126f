r"""Saving and loading networks safely, and the one registry of savable classes.

A saved file holds a JSON-compatible configuration (the registered name of the class and
its constructor arguments, nested for combinators) and the weights. Loading uses
``torch.load(weights_only=True)``, which never executes code from the file, and rebuilds
the network only from classes registered with :func:`register`, each under a stable name
given in the module that defines it. A file is refused as corrupt, before anything is
built, when its SHA-256 checksum does not match its content (a flipped byte in a weight,
the configuration or the metadata) or its configuration nests deeper than a fixed bound;
the build itself stops when it would allocate far more than the weights the file holds.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
from torch import nn

from ._integrity import AllocationLimit, digest
from ._validation import check_device, check_output_path

__all__ = [
    "save",
    "load",
    "load_estimator",
    "metadata_errors",
    "register",
    "registered",
    "config_from_signature",
    "FORMAT",
]

FORMAT = "otgrad.network/2"

M = TypeVar("M", bound=type)

_REGISTRY: dict[str, type[nn.Module]] = {}
_NAMES: dict[type, str] = {}
_MAX_DEPTH = 100
# the modules that define otgrad's registered classes, imported before a lookup
_BUILTINS = ("otgrad.nn", "otgrad.score.models", "otgrad.flows.flow", "otgrad.inverse.regularizer")


def register(name: str) -> Callable[[M], M]:
    r"""A class decorator that registers a module class under ``name`` for :func:`save` and
    :func:`load`.

    The class must rebuild from ``cls(**instance.config())`` with a JSON-compatible
    configuration (nested registered modules allowed). Only registered classes are ever
    instantiated by :func:`load`. Register public classes only, in the module that defines
    them; the name is what saved files store, so keep it stable.

    Arguments:
        name: The stable name, e.g. ``"GradNetC"``.

    Raises:
        ValueError: If ``name`` is taken by another class, the class is already registered
            under another name, or the class is private (its name starts with ``_``).
        TypeError: If the decorated object is not an ``nn.Module`` class with ``config()``.

    Example:
        A new architecture registers itself where it is defined (see the docs page
        "Writing a new architecture")::

            @otgrad.io.register("mylab.ScaledIdentity")
            class ScaledIdentity(GradientNetwork):
                ...
    """
    if not isinstance(name, str) or not name or name.startswith("_"):
        raise ValueError(f"name must be a non-empty string not starting with '_', got {name!r}")

    def decorate(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module) and hasattr(cls, "config")):
            raise TypeError(
                f"register needs an nn.Module class with a config() method, got {cls!r}"
            )
        if cls.__name__.startswith("_"):
            raise ValueError(f"{cls.__qualname__} is private: register public classes only")
        old = _REGISTRY.get(name)
        if old is not None and old is not cls and not _same_definition(old, cls):
            raise ValueError(
                f"the name {name!r} is already registered for {old.__module__}.{old.__qualname__}"
            )
        if _NAMES.get(cls, name) != name:
            raise ValueError(f"{cls.__qualname__} is already registered as {_NAMES[cls]!r}")
        if old is not None:
            _NAMES.pop(old, None)
        _REGISTRY[name], _NAMES[cls] = cls, name
        return cls

    return decorate


def _same_definition(a: type, b: type) -> bool:
    # the same class defined again by a module reload
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def _import_builtins() -> None:
    for name in _BUILTINS:
        importlib.import_module(name)


def registered() -> dict[str, type[nn.Module]]:
    r"""A copy of the registry: stable name to class, for otgrad's classes and every class
    registered so far.

    Example:
        >>> from otgrad.nn import GradNetC
        >>> registered()["GradNetC"] is GradNetC
        True
    """
    _import_builtins()
    return dict(_REGISTRY)


def config_from_signature(module: nn.Module) -> dict[str, Any]:
    r"""The constructor arguments of ``module``, read from the attributes named after the
    parameters of its ``__init__`` (the default ``config()`` of otgrad's modules).

    A class whose attribute has another name than its argument lists it in a class
    attribute ``_config_attributes = {"argument": "attribute"}``.

    Raises:
        TypeError: If an argument has no attribute (store it, or override ``config()``).
    """
    cls = type(module)
    aliases = getattr(cls, "_config_attributes", {})
    out = {}
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        attr = aliases.get(p.name, p.name)
        if attr not in module.__dict__ and not hasattr(module, attr):
            raise TypeError(
                f"{cls.__name__} stores no attribute {attr!r} for its argument {p.name!r}: "
                "store it under that name, map it in _config_attributes, or override config()"
            )
        out[p.name] = getattr(module, attr)
    return out


def _serializable(value: Any) -> bool:
    return type(value) in _NAMES


def _encode(value: Any) -> Any:
    if isinstance(value, nn.Module) and _serializable(value):
        return {"__network__": _NAMES[type(value)], "config": _encode(value.config())}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, nn.ModuleList)):
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


def _nesting(value: Any) -> int:
    r"""How deeply lists and dicts nest in ``value`` (counted without recursion)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        v, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= _MAX_DEPTH and isinstance(v, (dict, list)):
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def _build(name: Any, config: Any) -> nn.Module:
    if isinstance(name, str) and name not in _REGISTRY:
        _import_builtins()
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"corrupt checkpoint: unknown network class {name!r}")
    if not isinstance(config, dict):
        raise ValueError(f"corrupt checkpoint: the configuration of {name} is not a mapping")
    try:
        return cls(**_decode(config))
    except (TypeError, ValueError) as e:
        if str(e).startswith("corrupt checkpoint"):
            raise
        raise ValueError(
            f"corrupt checkpoint: cannot rebuild {name} from its configuration: {e}"
        ) from e


def save(net: nn.Module, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
    r"""Saves a network's configuration and weights to ``path``.

    Arguments:
        net: The network (an instance of a class registered with :func:`register`).
        path: The destination file.
        metadata: JSON-compatible extra data (numbers, strings, lists, dicts) stored
            beside the network, e.g. an estimator's data scaling.

    Example:
        >>> from otgrad.nn import GradNetC
        >>> save(GradNetC(2, 8), "net.pt")  # doctest: +SKIP
    """
    if not (isinstance(net, nn.Module) and _serializable(net)):
        raise TypeError(
            f"net must be an instance of a class registered with otgrad.io.register, got "
            f"{type(net).__name__} (register it with @otgrad.io.register('a stable name'))"
        )
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    check_output_path(path)
    spec, meta = _encode(net), _encode(metadata or {})
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    payload = {"format": FORMAT, "metadata": meta, "network": spec, "state_dict": state}
    torch.save({**payload, "sha256": digest(spec, meta, state)}, path)


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
        ValueError: If the file is truncated, changed after it was saved (its checksum does
            not match), not an otgrad network, or its configuration is beyond sane sizes.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    check_device(map_location, "map_location")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # unpickling errors, truncated zip archives, ...
        raise ValueError(f"corrupt checkpoint {os.fspath(path)!r}: {type(e).__name__}: {e}") from e
    spec, state = _verified(payload, os.fspath(path))
    size = sum(v.numel() for v in state.values())
    with AllocationLimit(elements=8 * size + 2**20, modules=2 * size + 1000):
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


def _verified(payload: Any, path: str) -> tuple[dict, dict]:
    r"""The configuration and weights of a loaded file, once its format and checksum hold."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"corrupt checkpoint {path!r}: not an otgrad network file ({FORMAT})")
    spec, state = payload.get("network"), payload.get("state_dict")
    if not isinstance(spec, dict) or not isinstance(state, dict):
        raise ValueError(f"corrupt checkpoint {path!r}: missing network or weights")
    if _nesting([spec, payload.get("metadata")]) > _MAX_DEPTH:
        raise ValueError(
            f"corrupt checkpoint {path!r}: the content nests deeper than {_MAX_DEPTH}"
        )
    try:
        expected = digest(spec, payload.get("metadata"), state)
    except (TypeError, ValueError) as e:
        raise ValueError(f"corrupt checkpoint {path!r}: {e}") from e
    if payload.get("sha256") != expected:
        raise ValueError(
            f"corrupt checkpoint {path!r}: the SHA-256 checksum does not match the content "
            "(the file was changed after it was saved)"
        )
    return spec, state


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
