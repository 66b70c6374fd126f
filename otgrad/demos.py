r"""End-to-end demonstrations on built-in data (what ``otgrad demo`` and ``otgrad field-demo``
run): each fits a model, measures it, and writes a figure, the results and the model to a
folder."""

from __future__ import annotations

import json
import math
import os

import torch

__all__ = ["demo", "field_demo", "PAPER_RMSE_DB"]

#: The paper's Table 1 ("RMSE dB") after 200 epochs, mean of 5 seeds, for ``field_demo``.
PAPER_RMSE_DB = {"mgradnet-c": -24.08, "mgradnet-m": -23.57}


def demo(
    source: str = "gaussian",
    target: str = "8gaussians",
    steps: int = 1000,
    samples: int = 10_000,
    out: str = "otgrad-demo",
    seed: int = 0,
    device: str | None = None,
) -> dict:
    r"""Fits the optimal transport map between two built-in 2D distributions, end to end.

    Draws ``samples`` points of each, fits :class:`~otgrad.ot.BrenierMap` (an mGradNet,
    convex by construction, so the fitted map is the Brenier map once it pushes the source
    onto the target), measures :math:`W_2(T_\#\mu, \nu)` on 1000 fresh points against
    :math:`W_2(\mu, \nu)` and the sampling level :math:`W_2(\nu, \nu')`, and saves a
    figure (samples, displacement interpolation over the potential, pushed samples).

    Returns:
        The results (also written to ``out/results.json``).
    """
    from .data.toy2d import sample_toy2d
    from .ot import BrenierMap, GaussianMap, transport_cost, wasserstein2
    from .plotting import plot_transport

    os.makedirs(out, exist_ok=True)  # before the work: a bad folder fails at once
    X, Y = sample_toy2d(source, samples, seed), sample_toy2d(target, samples, seed + 1)
    est = BrenierMap(steps=steps, seed=seed, device=device).fit(X, Y)
    Xt, Yt = sample_toy2d(source, 1000, seed + 2), sample_toy2d(target, 1000, seed + 3)
    TX = est.transform(Xt)
    results = {
        "pair": f"{source} -> {target}",
        "samples": samples,
        "steps": est.history_.steps,
        "seconds": round(est.fit_seconds_, 2),
        "w2_mapped": wasserstein2(TX, Yt),
        "w2_linear": wasserstein2(GaussianMap().fit(X, Y).transform(Xt), Yt),
        "w2_source": wasserstein2(Xt, Yt),
        "w2_floor": wasserstein2(sample_toy2d(target, 1000, seed + 4), Yt),
        "transport_cost": transport_cost(Xt, TX),
        "dual_w2_squared": est.score(Xt, Yt),
    }
    fig = os.path.join(out, "demo.png")
    plot_transport(
        est, Xt, Yt, fig, title=f"{source} → {target}: W2(T#μ, ν) = {results['w2_mapped']:.3f}"
    )
    results["figure"] = fig
    est.save(os.path.join(out, "map.pt"))
    results["map"] = os.path.join(out, "map.pt")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def field_demo(
    seconds: float | None = 5.0,
    model: str = "mgradnet-c",
    epochs: int = 10_000,
    out: str = "otgrad-field-demo",
    seed: int = 0,
    device: str = "cpu",
) -> dict:
    r"""Fits an mGradNet to the paper's convex gradient field (eq. 47) for ``seconds`` seconds.

    Uses the paper's protocol (100k uniform training points on the unit square, MSE loss,
    Adam with learning rate 0.005, batch 1000, best-validation weights) until the time
    budget (``seconds``) or ``epochs`` runs out, then reports the test error on the
    100 × 100 grid in dB and saves a figure.

    Returns:
        The results (also written to ``out/results.json``).
    """
    from .data.fields import ConvexField, unit_grid
    from .nn import GradNetC, GradNetM
    from .plotting import plot_field_fit
    from .train import fit

    if model not in PAPER_RMSE_DB:
        raise ValueError(f"model must be one of {sorted(PAPER_RMSE_DB)}, got {model!r}")
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    field = ConvexField()
    x, y = field.sample(100_000, generator=gen)
    xv, yv = field.sample(10_000, generator=gen)
    x, y, xv, yv = (t.to(device) for t in (x, y, xv, yv))
    with torch.random.fork_rng(devices=[]):  # the initialization, without the global seed
        torch.manual_seed(seed)
        if model == "mgradnet-c":
            net = GradNetC(2, 7, layers=4, activation="tanh").to(device)
        else:
            net = GradNetM(2, 7, modules=4, activation="softmax").to(device)

    def mse(m, xb, yb):
        return ((m(xb) - yb) ** 2).sum(-1).mean()

    hist = fit(
        net, mse, (x, y), epochs=epochs, batch_size=1000, lr=0.005, val_data=(xv, yv),
        seed=seed, time_limit=seconds,
    )  # fmt: skip
    grid = unit_grid(100).to(device)
    with torch.no_grad():
        test = float(((net(grid) - field.gradient(grid)) ** 2).sum(-1).mean())
    fig = os.path.join(out, "demo.png")
    plot_field_fit(net, field, fig, title=f"{model}: test MSE {10 * math.log10(test):.2f} dB")
    results = {
        "model": model,
        "parameters": sum(p.numel() for p in net.parameters()),
        "epochs": len(hist.train_loss),
        "steps": hist.steps,
        "seconds": round(hist.seconds, 2),
        "test_mse": test,
        "test_mse_db": 10 * math.log10(test),
        "paper_rmse_db": 5 * math.log10(test),
        "paper_table1_rmse_db": PAPER_RMSE_DB[model],
        "monotone": net.monotone,
        "figure": fig,
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results
