"""A checkpointed training run for tests/test_train.py's kill-and-resume test: run in-process,
and as ``python -m tests.kill_worker CHECKPOINT`` (a process the test kills with SIGKILL)."""

from __future__ import annotations

import sys
import time

import torch

from otgrad.nn import GradNetC
from otgrad.train import History, fit

EPOCHS = 30


def run(checkpoint=None, pause: float = 0.0) -> tuple[GradNetC, History]:
    """Trains a small network for ``EPOCHS`` epochs, sleeping ``pause`` seconds after each
    (to give the test time to kill the process between checkpoints)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic in the killed process and in the test's
    try:
        return _train(checkpoint, pause)
    finally:
        torch.set_num_threads(threads)


def _train(checkpoint, pause: float) -> tuple[GradNetC, History]:
    torch.manual_seed(3)
    x = torch.randn(96, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    net = GradNetC(2, 4).double()

    def noisy(m, xb, yb):  # uses the global generator, like stochastic estimators
        return ((m(xb + 0.01 * torch.randn_like(xb)) - yb) ** 2).sum(-1).mean()

    hist = fit(
        net, noisy, (x, x**3), epochs=EPOCHS, batch_size=16, lr=0.01, schedule="cosine",
        seed=1, checkpoint=checkpoint, on_epoch=lambda e, h: time.sleep(pause), progress=False,
    )  # fmt: skip
    return net, hist


if __name__ == "__main__":
    run(sys.argv[1], pause=0.2)
