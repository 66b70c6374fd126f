r"""What :mod:`otgrad.io` checks before it trusts a file: a checksum of its content, and a
bound on what rebuilding the saved network may allocate.

A byte changed anywhere in a saved network (a weight, the configuration, the metadata)
changes its SHA-256 digest, stored in the file by :func:`otgrad.io.save` and compared by
:func:`otgrad.io.load`. A configuration edited to huge sizes (``dim = hidden = 10**7``, or
``10**7`` layers) would allocate without bound while the network is rebuilt;
:class:`AllocationLimit` stops the build at the first tensor or submodule creation that
would go beyond a small multiple of the weights the file holds (rebuilding any otgrad
network creates at most about twice its weights in tensor elements, and fewer submodules
than weights).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from torch.nn.modules.module import register_module_module_registration_hook
from torch.overrides import TorchFunctionMode

__all__ = ["digest", "AllocationLimit"]

# the tensor constructors whose size comes from their arguments (the others copy a tensor)
_FACTORIES = frozenset(
    "empty zeros ones full rand randn randint normal eye arange linspace logspace randperm "
    "empty_strided new_empty new_zeros new_ones new_full".split()
)


def digest(spec: Any, metadata: Any, state: dict[str, torch.Tensor]) -> str:
    r"""The SHA-256 digest of a saved network: its encoded configuration ``spec``, its
    ``metadata`` and every tensor of ``state`` (name, dtype, shape and bytes)."""
    h = hashlib.sha256()
    h.update(json.dumps([spec, metadata], sort_keys=True).encode())
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} is a {type(t).__name__}, not a tensor")
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class AllocationLimit(TorchFunctionMode):
    r"""A context in which tensor constructors may create at most ``elements`` elements in
    all, and at most ``modules`` submodules may be registered; the creation that would go
    beyond raises ``ValueError`` before allocating.

    Arguments:
        elements: The number of tensor elements allowed.
        modules: The number of submodule registrations allowed.
    """

    def __init__(self, elements: int, modules: int):
        super().__init__()
        self.limits, self.used = (
            {"elements": elements, "modules": modules},
            dict.fromkeys(("elements", "modules"), 0),
        )

    def __enter__(self) -> AllocationLimit:
        self._hook = register_module_module_registration_hook(
            lambda *_: self._use("modules", 1, "a submodule")
        )
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._hook.remove()
        super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", None)
        if name in _FACTORIES:
            try:  # the size the call asks for, from a tensor without storage
                numel = func(*args, **{**kwargs, "device": "meta"}).numel()
            except (TypeError, RuntimeError, ValueError):
                numel = 0  # an unusual signature: the call itself reports its errors
            self._use("elements", numel, f"{name}() of {numel} elements")
        return func(*args, **kwargs)

    def _use(self, kind: str, amount: int, what: str) -> None:
        self.used[kind] += amount
        if self.used[kind] > self.limits[kind]:
            raise ValueError(
                f"rebuilding the network would create over {self.limits[kind]} {kind} "
                f"(at {what}); the file holds far fewer weights"
            )
