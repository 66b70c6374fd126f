"""Training runs shared by tests/test_train_distributed.py: run in-process (one process)
and under ``torchrun --nproc_per_node=2`` (gloo, CPU) by ``torchrun ... -m tests.ddp_worker CASE OUT``."""

from __future__ import annotations

import sys
import time

import torch

from otgrad.nn import GradNetC
from otgrad.ot import BrenierMap
from otgrad.train import fit, is_main_process, world

SEEN: list[int] = []  # the batch sizes the loss saw in this process


def _data(seed: int = 0, n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return x, x**3 + 0.1 * x


def _mse(net, x, y):
    SEEN.append(x.shape[0])
    return ((net(x) - y) ** 2).sum(-1).mean()


def _result(net, hist) -> dict:
    return {
        "state": net.state_dict(),
        "loss": hist.train_loss,
        "skipped": hist.skipped_steps,
        "world": world()[1],
        "largest_batch": max(SEEN),
    }


def tensors_case() -> dict:
    """Shuffled tensors, a global batch of 45 (unequal shares 23/22, a last batch of 20),
    a cosine schedule, clipping, and one poisoned sample whose batches every run skips."""
    SEEN.clear()
    x, y = _data()
    y[7] = float("nan")
    torch.manual_seed(0)
    net = GradNetC(3, 8).double()
    hist = fit(
        net,
        _mse,
        (x, y),
        epochs=3,
        batch_size=45,
        lr=1e-2,
        schedule="cosine",
        clip_grad=10.0,
        seed=3,
    )
    return _result(net, hist)


def sampler_case() -> dict:
    """A sampler drawing a fresh global batch of 64 at every step."""
    SEEN.clear()
    x, y = _data(1)

    def sampler(gen):
        idx = torch.randint(len(x), (64,), generator=gen)
        return [x[idx], y[idx]]

    torch.manual_seed(1)
    net = GradNetC(3, 8).double()
    hist = fit(net, _mse, sampler, epochs=2, steps_per_epoch=10, lr=1e-2, seed=4)
    return _result(net, hist)


def brenier_case() -> dict:
    """BrenierMap (semi-dual) fit; only the conjugate points' warm starts differ."""
    x, _ = _data(2, 400)
    y = 2.0 * x + torch.tanh(x)
    est = BrenierMap(steps=40, batch_size=128, seed=0, dtype=torch.float64, device="cpu")
    est.fit(x.numpy(), y.numpy())
    probe = _data(3, 50)[0]
    return {"map": torch.as_tensor(est.transform(probe.numpy())), "loss": est.history_.train_loss}


def timed_case() -> dict:
    """A cosine learning rate that follows the clock, on processes of unequal pace (rank r
    sleeps (r + 1) ms per step): every process must use the same learning rate."""
    x, y = _data(4)
    rank = world()[0]

    def slow(net, xb, yb):
        time.sleep(0.001 * (rank + 1))
        return _mse(net, xb, yb)

    torch.manual_seed(2)
    net = GradNetC(3, 8).double()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    hist = fit(net, slow, (x, y), epochs=10**4, batch_size=50, optimizer=opt, seed=5,
               schedule="cosine-time", time_limit=1.0)  # fmt: skip
    return {"state": net.state_dict(), "lr": opt.param_groups[0]["lr"], "steps": hist.steps}


CASES = {
    "tensors": tensors_case,
    "sampler": sampler_case,
    "brenier": brenier_case,
    "timed": timed_case,
}

if __name__ == "__main__":
    case, out = sys.argv[1], sys.argv[2]
    result = CASES[case]()
    torch.save(result, out if is_main_process() else f"{out}.rank{world()[0]}")
