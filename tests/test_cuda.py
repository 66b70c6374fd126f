"""CUDA correctness (skipped without a GPU): the same properties as on the CPU."""

from __future__ import annotations

import pytest
import torch

from otgrad import io
from otgrad.calculus import min_eigenvalue, symmetry_error
from otgrad.nn import GradNetC, GradNetM, SingleLayerGradNet, StronglyConvex, Sum

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

NETS = [
    lambda: GradNetC(5, 16, activation="wtanh"),
    lambda: GradNetM(5, 8, modules=3, activation="softmax"),
    lambda: GradNetM(5, 8, modules=3, activation="logcosh"),
    lambda: SingleLayerGradNet(5, 12, activation="softplus"),
    lambda: StronglyConvex(Sum([GradNetC(5, 8), GradNetM(5, 8)]), 0.2),
]


@pytest.mark.parametrize("make", NETS)
def test_cuda_matches_cpu_and_autograd(make):
    torch.manual_seed(0)
    cpu = make().double()
    gpu = make().double()
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.cuda()
    x = torch.randn(64, 5, dtype=torch.float64)
    xc = x.cuda()
    assert torch.allclose(gpu(xc).cpu(), cpu(x), atol=1e-12)
    assert torch.allclose(gpu.potential(xc).cpu(), cpu.potential(x), atol=1e-10)
    jac = gpu.jacobian(xc)
    auto = torch.func.vmap(torch.func.jacrev(lambda xi: gpu(xi[None])[0]))(xc)
    assert torch.allclose(jac, auto, atol=1e-10)
    assert float(symmetry_error(jac).max()) < 1e-10
    assert float(min_eigenvalue(jac).min()) > -1e-10
    assert torch.allclose(gpu.jacobian_trace(xc), auto.diagonal(dim1=-2, dim2=-1).sum(-1))
    xg = xc.clone().requires_grad_()
    (g,) = torch.autograd.grad(gpu.potential(xg).sum(), xg)
    assert torch.allclose(g, gpu(xc), atol=1e-8)


def test_cuda_logdet_inverse_and_io(tmp_path):
    torch.manual_seed(0)
    net = StronglyConvex(GradNetC(8, 32), 0.1).double().cuda()
    x = torch.randn(256, 8, dtype=torch.float64, device="cuda")
    ref = torch.linalg.slogdet(net.jacobian(x))[1]
    assert torch.allclose(net.logdet(x), ref, atol=1e-10)
    y = net(x)
    for method in ("newton", "newton-cg"):
        assert torch.allclose(net.inverse(y, tol=1e-12, method=method), x, atol=1e-8)
    io.save(net, tmp_path / "n.pt")
    back = io.load(tmp_path / "n.pt", map_location="cuda")
    assert back.out_bias.device.type == "cuda" if hasattr(back, "out_bias") else True
    assert torch.equal(back(x), net(x))


def test_cuda_device_mismatch_is_an_error():
    net = GradNetC(3, 4).cuda()
    with pytest.raises(ValueError, match="device"):
        net(torch.randn(2, 3))


def test_brenier_map_on_cuda_matches_the_cpu_fit():
    import numpy as np

    from applications.ot_maps.data import gaussian_pair
    from otgrad.ot import BrenierMap, l2_uvp

    data = gaussian_pair(4, 4096, 1024, seed=0)
    maps = {}
    for device in ("cpu", "cuda"):
        est = BrenierMap(steps=100, seed=0, dtype=torch.float64, device=device, progress=False)
        maps[device] = est.fit(data["X"], data["Y"])
    x = torch.as_tensor(data["X_test"][:100], device="cuda")
    out = maps["cuda"].transform(x)
    assert out.device.type == "cuda"  # the same kind, dtype and device out
    uvp = {
        k: l2_uvp(m.transform(data["X_test"]), data["T_test"], data["var"])
        for k, m in maps.items()
    }
    assert uvp["cuda"] < 2.0
    # same seed, same minibatches: the two fits agree up to floating-point reassociation
    assert abs(uvp["cuda"] - uvp["cpu"]) < 0.2
    np.testing.assert_allclose(
        maps["cuda"].inverse_transform(out.cpu().numpy()), data["X_test"][:100], atol=1e-6
    )


def test_score_model_on_cuda_matches_the_cpu_fit():
    import numpy as np

    from otgrad.data import sample_toy2d
    from otgrad.score import ScoreModel

    X = sample_toy2d("8gaussians", 4000, seed=0)
    fits = {
        d: ScoreModel(steps=100, seed=0, dtype=torch.float64, device=d, progress=False).fit(X)
        for d in ("cpu", "cuda")
    }
    x = torch.as_tensor(X[:50], device="cuda")
    out = fits["cuda"].score(x, 0.1)
    assert out.device.type == "cuda"
    # same seed, same batches and noise (drawn on the CPU): the fits agree closely
    np.testing.assert_allclose(out.cpu().numpy(), fits["cpu"].score(X[:50], 0.1), atol=1e-6)
    lp = {d: m.log_prob(X[:200]) for d, m in fits.items()}
    np.testing.assert_allclose(lp["cuda"], lp["cpu"], atol=1e-4)
    s = fits["cuda"].sample(100, "mala", steps=40, seed=0)
    assert s.shape == (100, 2) and np.isfinite(s).all()


def test_fit_on_cuda_moves_batches_and_follows_the_cpu_run():
    from otgrad.train import fit

    def mse(m, a, b):
        return ((m(a) - b) ** 2).sum(-1).mean()

    x = torch.randn(512, 3, dtype=torch.float64)  # stays in CPU memory
    y = x**3
    nets = []
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        net = GradNetC(3, 8).double()
        fit(net, mse, (x, y), epochs=3, batch_size=64, lr=1e-2, seed=0, device=device)
        nets.append(net)
    for (k, a), b in zip(nets[0].state_dict().items(), nets[1].state_dict().values(), strict=True):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-8, atol=1e-10, msg=k)


@pytest.mark.parametrize("compile", [True, "reduce-overhead"])
def test_compiled_cuda_step_matches_eager(compile):
    from otgrad.train import fit

    def mse(m, a, b):
        return ((m(a) - b) ** 2).sum(-1).mean()

    x = torch.randn(512, 3, device="cuda")
    y = torch.tanh(x)
    states = []
    for c in (False, compile):
        torch.manual_seed(0)
        net = GradNetC(3, 8).cuda()
        fit(net, mse, (x, y), epochs=2, batch_size=128, lr=1e-2, seed=0, compile=c)
        states.append(net.state_dict())
    for k in states[0]:
        torch.testing.assert_close(states[1][k], states[0][k], rtol=1e-4, atol=1e-5, msg=k)


def test_bfloat16_autocast_on_cuda_keeps_logdet_exact():
    from otgrad.train import fit

    def mse(m, a, b):
        return ((m(a) - b) ** 2).sum(-1).mean()

    torch.manual_seed(0)
    net = StronglyConvex(GradNetM(3, 8, 4), 0.1).cuda()
    x = torch.randn(512, 3, device="cuda")
    y = 2 * x + torch.tanh(x)
    hist = fit(
        net, mse, (x, y), epochs=5, batch_size=128, lr=1e-2, seed=0, autocast=torch.bfloat16
    )
    assert hist.train_loss[-1] < hist.train_loss[0]
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        ld = net.logdet(x)
    torch.testing.assert_close(ld, net.logdet(x).detach())


def test_a_cpu_training_session_continues_on_cuda(tmp_path):
    """A long run started on the CPU (checkpoint + time_limit sessions) continues on a GPU,
    and the image networks' hand-written backward passes match autograd there."""
    import numpy as np

    from otgrad.inverse import ConvexRegularizer
    from otgrad.nn import ConvGradNet, ConvGradNetM

    rng = np.random.default_rng(0)
    images = [rng.uniform(size=(48, 48)) for _ in range(3)]
    path = str(tmp_path / "state.pt")

    def regularizer(device):
        torch.manual_seed(0)
        net = ConvGradNet((1, 2, 4), kernel_size=3, knots=7)
        return ConvexRegularizer(net, sigma=25.0, t_steps=2, iterations=8, epochs=4,
                                 batch_size=4, patch=16, seed=0, progress=False,
                                 time_limit=1e-6, checkpoint=path, device=device)  # fmt: skip

    first = regularizer("cpu").fit(images)  # one epoch: a call always ends one
    assert not first.history_.finished and first.history_.steps == 2
    second = regularizer("cuda").fit(images)
    assert second.history_.steps == 4
    assert next(second.regularizer_.parameters()).is_cuda

    for net in (ConvGradNet((1, 3, 6), 3, layers=2, knots=9), ConvGradNetM((1, 3, 6), 2, 3)):
        net = net.double()
        x = torch.randn(2, 1, 9, 8, dtype=torch.float64)
        grads = []
        for device in ("cpu", "cuda"):
            net = net.to(device)
            xd = x.to(device).detach().requires_grad_()  # x itself on the CPU
            (net(xd) ** 2).sum().backward()
            grads.append([xd.grad.cpu()] + [p.grad.cpu() for p in net.parameters()])
            net.zero_grad()
        for a, b in zip(*grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
