r"""otgrad — gradient networks for optimal transport and generative modeling.

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, IEEE Trans. Signal Processing 73, 2025).
"""

__version__ = "0.1.0"

from . import calculus, io, nn, ot  # noqa: E402

__all__ = ["__version__", "calculus", "io", "nn", "ot"]
