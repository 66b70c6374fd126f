from __future__ import annotations

import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from otgrad.nn import GradNetC
from otgrad.train import fit, reuse_cpu_memory

from . import kill_worker


def mse(m, x, y):
    return ((m(x) - y) ** 2).sum(-1).mean()


def test_fit_decreases_the_loss_and_keeps_the_best_weights():
    torch.manual_seed(0)
    x = torch.randn(512, 2)
    y = 3 * x
    net = GradNetC(2, 8)
    before = float(mse(net, x, y).detach())
    hist = fit(net, mse, (x, y), epochs=20, batch_size=64, lr=0.01, val_data=(x, y), seed=0)
    assert hist.best_val == min(hist.val_loss)
    assert float(mse(net, x, y)) == pytest.approx(hist.best_val, rel=1e-5)
    assert hist.best_val < 0.1 * before


def test_fit_is_reproducible_with_a_seed():
    x = torch.randn(256, 2)
    y = x**3
    outs = []
    for _ in range(2):
        torch.manual_seed(1)
        net = GradNetC(2, 4)
        fit(net, mse, (x, y), epochs=3, batch_size=32, seed=5)
        outs.append(net(x))
    assert torch.equal(outs[0], outs[1])


def test_fit_argument_errors():
    net = GradNetC(2, 4)
    with pytest.raises(ValueError, match="share their first dimension"):
        fit(net, mse, (torch.randn(5, 2), torch.randn(4, 2)))
    with pytest.raises(ValueError, match="at least one"):
        fit(net, mse, ())
    x = torch.randn(8, 2)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        fit(net, mse, (x, x), epochs=0)
    with pytest.raises(ValueError, match="schedule"):
        fit(net, mse, (x, x), schedule="linear")
    with pytest.raises(ValueError, match="needs a time_limit"):
        fit(net, mse, (x, x), schedule="cosine-time")
    with pytest.raises(ValueError, match="checkpoint"):
        fit(net, mse, (x, x), schedule="cosine-time", time_limit=1.0, checkpoint="state.pt")
    with pytest.raises(ValueError, match="batch_size"):
        fit(net, mse, (x, x), batch_size=0)
    with pytest.raises(ValueError, match="val_data"):
        fit(net, mse, (x, x), val_data=(x, x[:3]))
    with pytest.raises(ValueError, match="steps_per_epoch"):
        fit(net, mse, lambda g: [x, x])
    with pytest.raises(ValueError, match="steps_per_epoch"):
        fit(net, mse, lambda g: [x, x], steps_per_epoch=0)


def test_ema_loads_the_average_of_the_iterates():
    # with plain SGD on a linear model, the EMA of the iterates is easy to recompute
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    y = x @ torch.tensor([[2.0, 0.0], [0.0, -1.0]])

    class Lin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(2, 2))

        def forward(self, x):
            return x @ self.w

    def loss(m, a, b):
        return ((m(a) - b) ** 2).sum(-1).mean()

    net, ref = Lin(), Lin()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    fit(net, loss, (x, y), epochs=5, batch_size=64, optimizer=opt, ema=0.9, seed=0)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.05)
    avg = ref.w.detach().clone()
    for _ in range(5):
        ref_opt.zero_grad()
        loss(ref, x, y).backward()
        ref_opt.step()
        avg = 0.9 * avg + 0.1 * ref.w.detach()
    torch.testing.assert_close(net.w.detach(), avg)
    assert not torch.allclose(avg, ref.w.detach())  # the average is not the last iterate
    with pytest.raises(ValueError, match="ema"):
        fit(net, loss, (x, y), ema=1.5)
    with pytest.raises(ValueError, match="val_data"):
        fit(net, loss, (x, y), ema=0.9, val_data=(x, y))


def test_non_finite_steps_are_skipped_and_leave_the_state_untouched():
    torch.manual_seed(0)
    x, y = torch.randn(64, 2), torch.randn(64, 2)
    net = GradNetC(2, 4)
    calls = {"n": 0}
    snapshots = []

    def flaky(m, xb, yb):
        calls["n"] += 1
        loss = mse(m, xb, yb)
        if calls["n"] in (3, 4):  # two bad steps in a row
            snapshots.append([p.detach().clone() for p in m.parameters()])
            return loss * float("nan")
        return loss

    hist = fit(net, flaky, (x, y), epochs=1, batch_size=8, seed=0)
    assert hist.skipped_steps == 2 and hist.steps == 6
    # the skipped steps changed nothing: the state before step 4 is the state before step 3
    assert all(torch.equal(a, b) for a, b in zip(*snapshots, strict=True))
    assert all(bool(torch.isfinite(p).all()) for p in net.parameters())

    with pytest.raises(FloatingPointError, match="3 training steps in a row"):
        fit(net, lambda m, xb, yb: mse(m, xb, yb) * float("inf"), (x, y), max_bad_steps=3)


def test_clip_grad_bounds_the_update():
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    net = GradNetC(2, 4)
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    fit(net, lambda m, xb: 1e6 * mse(m, xb, 0 * xb), (x,), epochs=1, batch_size=64,
        optimizer=opt, clip_grad=0.5)  # fmt: skip
    step = torch.cat(
        [(p.detach() - b).flatten() for p, b in zip(net.parameters(), before, strict=True)]
    )
    assert float(step.norm()) == pytest.approx(0.5, rel=1e-4)
    with pytest.raises(ValueError, match="clip_grad"):
        fit(net, mse, (x, x), clip_grad=0.0)
    with pytest.raises(ValueError, match="max_bad_steps"):
        fit(net, mse, (x, x), max_bad_steps=0)


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("mode", ["tensors", "sampler"])
def test_checkpoint_resume_is_bit_identical(tmp_path, mode):
    x = torch.randn(96, 2, generator=torch.Generator().manual_seed(0))
    y = x**3

    def noisy(m, xb, yb):  # uses the global generator too, like stochastic estimators
        return mse(m, xb + 0.01 * torch.randn_like(xb), yb)

    if mode == "tensors":
        data, extra = (x, y), dict(batch_size=16, val_data=(x, y))
    else:
        data = lambda g: [x[idx] for idx in [torch.randint(96, (16,), generator=g)]] + [y[:16]]  # noqa: E731
        extra = dict(steps_per_epoch=5, ema=0.9)

    def run(path=None, stop_after=None):
        torch.manual_seed(3)
        net = GradNetC(2, 4)

        def hook(epoch, hist):
            if stop_after is not None and epoch == stop_after:
                raise _Interrupt

        hist = fit(net, noisy, data, epochs=5, lr=0.01, schedule="cosine", seed=1,
                   checkpoint=path, on_epoch=hook, **extra)  # fmt: skip
        return net, hist

    reference, ref_hist = run()
    path = tmp_path / "state.pt"
    with pytest.raises(_Interrupt):
        run(path, stop_after=1)
    assert torch.load(path, weights_only=True)["format"] == "otgrad.fit/2"
    torch.manual_seed(123)  # the global generator is restored from the checkpoint
    resumed, hist = run(path)
    for p, q in zip(reference.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    assert (hist.train_loss, hist.val_loss, hist.steps) == (
        ref_hist.train_loss,
        ref_hist.val_loss,
        ref_hist.steps,
    )
    assert (hist.best_epoch, hist.best_val) == (ref_hist.best_epoch, ref_hist.best_val)

    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot resume"):
        run(path)


def test_time_limited_chunks_resume_bit_identically(tmp_path):
    """A checkpointed run under a time limit stops at epoch boundaries; calling fit again
    until the schedule is done gives the uninterrupted run's weights and history."""
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    y = x**3

    def slow(m, xb, yb):  # 10 ms per step: an epoch of 4 steps takes about 40 ms
        time.sleep(0.01)
        return mse(m, xb, yb)

    def run(path=None, limit=None):
        torch.manual_seed(3)
        net = GradNetC(2, 4)
        hist = fit(net, slow, (x, y), epochs=24, batch_size=16, lr=0.01, schedule="cosine",
                   seed=1, checkpoint=path, time_limit=limit)  # fmt: skip
        return net, hist

    reference, ref_hist = run()
    path, calls = tmp_path / "state.pt", 0
    while True:
        calls += 1
        resumed, hist = run(path, limit=0.3)
        done = torch.load(path, weights_only=True)["epoch"] + 1
        assert hist.seconds < 1.0  # stopped near the limit, at an epoch boundary
        assert hist.finished == (done == 24)
        if done == 24 or calls == 100:
            break
    assert calls > 1 and ref_hist.finished
    for p, q in zip(reference.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    assert (hist.train_loss, hist.steps) == (ref_hist.train_loss, ref_hist.steps)


def test_time_based_cosine_decays_by_the_time_limit():
    """With ``"cosine-time"``, a run cut by its time limit ends at a learning rate near 0
    (``"cosine"`` would still be near its start); a run well within its limit follows
    ``"cosine"``."""
    x = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = x**3

    def slow(m, xb, yb):  # 5 ms per step: about 60 of the 10,000 planned steps fit
        time.sleep(0.005)
        return mse(m, xb, yb)

    def run(loss, schedule, limit, epochs):
        torch.manual_seed(3)
        net = GradNetC(2, 4).double()
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        hist = fit(net, loss, (x, y), epochs=epochs, batch_size=16, optimizer=opt, seed=1,
                   schedule=schedule, time_limit=limit)  # fmt: skip
        return net, opt.param_groups[0]["lr"], hist

    _, lr_time, hist = run(slow, "cosine-time", 0.3, 2500)
    _, lr_steps, _ = run(slow, "cosine", 0.3, 2500)
    assert not hist.finished and 0 < hist.steps < 1000
    assert lr_time < 1e-4 < 0.009 < lr_steps
    timed, lr_time, _ = run(mse, "cosine-time", 1e6, 5)
    plain, lr_steps, _ = run(mse, "cosine", None, 5)
    assert lr_time == pytest.approx(0.0, abs=1e-12) and lr_steps == pytest.approx(0.0, abs=1e-12)
    for p, q in zip(timed.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)


def test_sigkill_and_resume_is_bit_identical(tmp_path):
    """A training process killed with SIGKILL mid-run resumes from its last checkpoint (saved
    atomically) and ends bit-identical to a run that was never interrupted."""
    path = tmp_path / "state.pt"
    cmd = [sys.executable, "-m", "tests.kill_worker", str(path)]
    proc = subprocess.Popen(cmd, cwd=Path(__file__).parent.parent)
    try:
        deadline = time.monotonic() + 120
        while not (path.exists() and torch.load(path, weights_only=True)["epoch"] >= 2):
            assert proc.poll() is None and time.monotonic() < deadline, "the worker stopped"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = torch.load(path, weights_only=True)["epoch"]
    assert 2 <= done < kill_worker.EPOCHS - 1  # killed mid-run
    resumed, hist = kill_worker.run(path)
    reference, ref_hist = kill_worker.run()
    for p, q in zip(reference.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    assert (hist.train_loss, hist.steps) == (ref_hist.train_loss, ref_hist.steps)


def test_compiled_step_matches_eager():
    x = torch.randn(256, 3, generator=torch.Generator().manual_seed(0))
    y = x**3
    states = []
    for compile in (False, True):
        torch.manual_seed(0)
        net = GradNetC(3, 8)
        hist = fit(net, mse, (x, y), epochs=2, batch_size=64, lr=1e-2, seed=0, compile=compile)
        states.append((net.state_dict(), hist.train_loss))
    (eager, loss_e), (compiled, loss_c) = states
    assert loss_c == pytest.approx(loss_e, rel=1e-5)
    for k in eager:
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-4, atol=1e-5, msg=k)
    with pytest.raises(TypeError, match="compile"):
        fit(GradNetC(3, 4), mse, (x, y), compile=1)


def test_bfloat16_autocast_trains_in_float32_and_keeps_logdet_and_inverse_exact():
    from otgrad.nn import GradNetM, StronglyConvex

    torch.manual_seed(0)
    x = torch.randn(512, 3)
    y = 2 * x + torch.tanh(x)
    net = StronglyConvex(GradNetM(3, 8, 4), 0.1)
    before = float(mse(net, x, y).detach())
    hist = fit(
        net, mse, (x, y), epochs=5, batch_size=128, lr=1e-2, seed=0, autocast=torch.bfloat16
    )
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert hist.train_loss[-1] < 0.5 * before
    # the forward pass really ran in bfloat16 ...
    with torch.no_grad():
        y = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(x)
            logdet, inverse = net.logdet(x), net.inverse(y)
        assert float((low.float() - y).abs().max()) > 1e-4
        # ... but log-determinants and inverses did not
        torch.testing.assert_close(logdet, net.logdet(x))
        torch.testing.assert_close(inverse, net.inverse(y))
    with pytest.raises(ValueError, match="autocast"):
        fit(net, mse, (x, y), autocast=torch.float16)


def test_batches_move_to_the_model_device_and_device_moves_the_model():
    x = torch.randn(64, 2)
    net = GradNetC(2, 4).double()
    fit(net.float(), mse, (x, 2 * x), epochs=1, batch_size=32, device="cpu", seed=0)
    assert next(net.parameters()).device.type == "cpu"


def test_diverged_parameters_are_restored_to_the_last_good_state():
    torch.manual_seed(0)
    x = torch.randn(128, 2)
    y = 2 * x
    net = GradNetC(2, 4)
    calls = []

    def loss(m, a, b):
        calls.append(1)
        if len(calls) == 6:  # a step blew the weights up (the loss itself is still finite)
            with torch.no_grad():
                m.weight.fill_(float("inf"))
            return (m.out_bias**2).sum() + 0.0 * m.weight.sum().detach()
        return mse(m, a, b)

    hist = fit(net, loss, (x, y), epochs=3, batch_size=32, lr=1e-2, seed=0)
    assert hist.restored == 1 and hist.skipped_steps == 1
    assert all(bool(torch.isfinite(p).all()) for p in net.parameters())
    assert hist.train_loss[-1] < hist.train_loss[0]


def test_reuse_cpu_memory_applies_on_glibc():
    applied = reuse_cpu_memory()
    assert isinstance(applied, bool)
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert applied and reuse_cpu_memory()  # idempotent
