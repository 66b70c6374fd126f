"""A hostile user's sweep: every case gets a clear error that names the argument (or, where
the input is legitimate, a correct result). A case that returns silently fails its test,
and so does any other exception than the one in the table (a raw traceback)."""

from __future__ import annotations

import functools
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from otgrad import io, train
from otgrad.cli import main
from otgrad.flows import ConvexPotentialFlow
from otgrad.inverse import (
    Blur,
    ConvexRegularizer,
    Denoising,
    Inpainting,
    Tomography,
    reconstruct,
)
from otgrad.nn import ConvGradNet, GradNetC, GradNetM, StronglyConvex
from otgrad.ot import BrenierMap, GaussianMap
from otgrad.score import NoiseConditionalGradNet, ScoreModel

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 2))
Y = X @ np.array([[1.5, 0.3], [0.3, 0.8]]) + 1.0
NAN = float("nan")
CUDA = torch.cuda.is_available()


@functools.cache
def brenier() -> BrenierMap:
    net = StronglyConvex(GradNetM(2, 4, 2), 0.1)
    return BrenierMap(net, steps=4, seed=0, progress=False).fit(X, Y)


@functools.cache
def flow() -> ConvexPotentialFlow:
    return ConvexPotentialFlow(2, net=[GradNetM(2, 4, 2)], steps=4, seed=0, progress=False).fit(X)


@functools.cache
def score() -> ScoreModel:
    net = NoiseConditionalGradNet(2, 4, 2)
    return ScoreModel(net, steps=4, batch_size=32, seed=0, progress=False).fit(X)


@functools.cache
def regularizer() -> ConvexRegularizer:
    return ConvexRegularizer.pretrained("bsd", 25)


def image(size: int = 16) -> torch.Tensor:
    return torch.rand(1, 1, size, size, generator=torch.Generator().manual_seed(0))


def flip_a_weight_byte(path: Path) -> Path:
    """Flips one bit inside the first stored tensor of a saved file (no other change)."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        entry = next(i for i in z.infolist() if "/data/" in i.filename and i.file_size >= 4)
    local = entry.header_offset  # the local header's name and extra lengths, then the data
    start = local + 30 + int.from_bytes(raw[local + 26 : local + 28], "little")
    start += int.from_bytes(raw[local + 28 : local + 30], "little")
    raw[start + entry.file_size // 2] ^= 0x10
    flipped = path.with_name("flipped-" + path.name)
    flipped.write_bytes(raw)
    return flipped


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    paths = {name: d / f"{name}.npy" for name in ("x", "y", "empty", "one_d")}
    np.save(paths["x"], X)
    np.save(paths["y"], Y)
    np.save(paths["empty"], np.zeros((0, 2)))
    np.save(paths["one_d"], np.zeros(5))
    (d / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    paths["corrupt"] = d / "corrupt.npy"
    for name, est in (("map", brenier), ("flow", flow), ("score", score)):
        paths[name] = d / f"{name}.pt"
        est().save(paths[name])
        paths[f"flipped_{name}"] = flip_a_weight_byte(paths[name])
    paths["net"] = d / "net.pt"
    io.save(GradNetC(2, 4), paths["net"])
    paths["flipped_net"] = flip_a_weight_byte(paths["net"])
    paths["dir"] = d
    return paths


@dataclass
class Case:
    call: Callable[[dict[str, Path]], Any]
    error: type[BaseException]
    match: str


def _resume_with_another_optimizer(files):
    net, x = GradNetC(2, 4), torch.randn(32, 2)
    path = files["dir"] / "adam.ckpt"
    path.unlink(missing_ok=True)

    def loss(m, b):
        return (m(b) ** 2).mean()

    train.fit(net, loss, [x], epochs=1, batch_size=16, checkpoint=path, progress=False)
    sgd = torch.optim.SGD(net.parameters(), lr=0.1)
    train.fit(net, loss, [x], epochs=2, batch_size=16, checkpoint=path, optimizer=sgd)


def _nan_loss(files):
    def loss(m, b):
        return (m(b) ** 2).mean() * NAN

    train.fit(GradNetC(2, 4), loss, [torch.randn(32, 2)], epochs=2, batch_size=16)


LIBRARY = {
    # ------------------------------------------------------------- networks and files
    "net inverse tol=nan": Case(
        lambda f: StronglyConvex(GradNetC(2, 4), 0.1).inverse(torch.zeros(3, 2), tol=NAN),
        ValueError, "tol",
    ),
    "net inverse max_iter=0": Case(
        lambda f: StronglyConvex(GradNetC(2, 4), 0.1).inverse(torch.zeros(3, 2), max_iter=0),
        ValueError, "max_iter",
    ),
    "load a flipped weight byte": Case(lambda f: io.load(f["flipped_net"]), ValueError, "checksum"),
    "load a missing file": Case(lambda f: io.load(f["dir"] / "none.pt"), FileNotFoundError, "none.pt"),
    "load path=123": Case(lambda f: io.load(123), TypeError, "path"),
    "load a non-checkpoint": Case(lambda f: io.load(f["x"]), ValueError, "corrupt checkpoint"),
    "load map_location='bogus'": Case(
        lambda f: io.load(f["net"], map_location="bogus"), ValueError, "map_location"
    ),
    "save an unregistered module": Case(
        lambda f: io.save(torch.nn.Linear(2, 2), f["dir"] / "l.pt"), TypeError, "register"
    ),
    "save into a missing folder": Case(
        lambda f: io.save(GradNetC(2, 4), f["dir"] / "no" / "n.pt"), ValueError, "path"
    ),
    # ------------------------------------------------------------- training loop
    "fit resumed with another optimizer": Case(_resume_with_another_optimizer, ValueError, "optimizer"),
    "fit whose every loss is NaN": Case(_nan_loss, FloatingPointError, "loss_fn"),
    "fit seed='abc'": Case(
        lambda f: train.fit(GradNetC(2, 4), lambda m, b: m(b).sum(), [torch.zeros(4, 2)], seed="abc"),
        TypeError, "seed",
    ),
    "fit seed=2**70": Case(
        lambda f: train.fit(GradNetC(2, 4), lambda m, b: m(b).sum(), [torch.zeros(4, 2)], seed=2**70),
        ValueError, "seed",
    ),
    "fit checkpoint in a missing folder": Case(
        lambda f: train.fit(
            GradNetC(2, 4), lambda m, b: m(b).sum(), [torch.zeros(4, 2)],
            checkpoint=f["dir"] / "no" / "c.ckpt",
        ),
        ValueError, "checkpoint",
    ),
    "fit loss_fn returning a float": Case(
        lambda f: train.fit(GradNetC(2, 4), lambda m, b: 1.0, [torch.zeros(4, 2)], epochs=1),
        TypeError, "loss_fn",
    ),
    "fit loss_fn returning a vector": Case(
        lambda f: train.fit(GradNetC(2, 4), lambda m, b: m(b), [torch.zeros(4, 2)], epochs=1),
        ValueError, "loss_fn",
    ),
    "fit batch_size=0": Case(
        lambda f: train.fit(GradNetC(2, 4), lambda m, b: m(b).sum(), [torch.zeros(4, 2)], batch_size=0),
        ValueError, "batch_size",
    ),
    "fit lr=nan": Case(
        lambda f: train.fit(GradNetC(2, 4), lambda m, b: m(b).sum(), [torch.zeros(4, 2)], lr=NAN),
        ValueError, "lr",
    ),
}  # fmt: skip
if not CUDA:
    LIBRARY["load map_location='cuda' without CUDA"] = Case(
        lambda f: io.load(f["net"], map_location="cuda"), ValueError, "map_location"
    )
    LIBRARY["fit device='cuda' without CUDA"] = Case(
        lambda f: train.fit(
            GradNetC(2, 4), lambda m, b: m(b).sum(), [torch.zeros(4, 2)], device="cuda"
        ),
        ValueError,
        "device",
    )

BRENIER = {
    "constant source": Case(
        lambda f: BrenierMap(steps=2).fit(np.ones((50, 2)), Y), ValueError, "X is constant"
    ),
    "constant target": Case(
        lambda f: BrenierMap(steps=2).fit(X, np.ones((50, 2))), ValueError, "Y is constant"
    ),
    "Gaussian map from a constant source": Case(
        lambda f: GaussianMap().fit(np.ones((50, 2)), Y), ValueError, "X has a singular covariance"
    ),
    "Gaussian map from a source on a line": Case(
        lambda f: GaussianMap().fit(np.c_[X[:, 0], 2 * X[:, 0]], Y), ValueError, "X has a singular"
    ),
    "source with a constant feature": Case(
        lambda f: BrenierMap(steps=2).fit(np.c_[X[:, 0], np.ones(200)], Y), ValueError, "X has a singular"
    ),
    "NaN source": Case(lambda f: BrenierMap(steps=2).fit(X * NAN, Y), ValueError, "X contains NaN"),
    "target of another dimension": Case(
        lambda f: BrenierMap(steps=2).fit(X, np.ones((50, 3))), ValueError, "Y must have 2"
    ),
    "one sample": Case(lambda f: BrenierMap(steps=2).fit(X[:1], Y), ValueError, "X has 1 sample"),
    "integer data": Case(
        lambda f: BrenierMap(steps=2).fit(np.ones((5, 2), dtype=int), Y), TypeError, "X"
    ),
    "monge-ampere target NaN": Case(
        lambda f: BrenierMap(loss="monge-ampere", steps=2).fit(
            X, target_log_prob=lambda y: y.sum(-1) * NAN
        ),
        ValueError, "target_log_prob",
    ),
    "monge-ampere target of the wrong shape": Case(
        lambda f: BrenierMap(loss="monge-ampere", steps=2).fit(X, target_log_prob=lambda y: y),
        ValueError, "target_log_prob",
    ),
    "monge-ampere target not callable": Case(
        lambda f: BrenierMap(loss="monge-ampere", steps=2).fit(X, target_log_prob=3.0),
        TypeError, "target_log_prob",
    ),
    "monge-ampere source NaN": Case(
        lambda f: BrenierMap(loss="monge-ampere", steps=2).fit(
            X, target_log_prob=lambda y: -(y**2).sum(-1), source_log_prob=lambda x: x[:, 0] * NAN
        ),
        ValueError, "source_log_prob",
    ),
    "inverse_transform tol=nan": Case(
        lambda f: brenier().inverse_transform(Y[:5], tol=NAN), ValueError, "tol"
    ),
    "inverse_transform tol=-1": Case(
        lambda f: brenier().inverse_transform(Y[:5], tol=-1.0), ValueError, "tol"
    ),
    "transform beyond float32": Case(
        lambda f: brenier().transform(X[:5] * 1e60), ValueError, "X has values beyond"
    ),
    "transform with 3 features": Case(
        lambda f: brenier().transform(np.ones((5, 3))), ValueError, "X must have 2"
    ),
    "transform before fit": Case(
        lambda f: BrenierMap().transform(X), RuntimeError, "not fitted"
    ),
    "loss='bogus'": Case(lambda f: BrenierMap(loss="bogus"), ValueError, "loss"),
    "steps=0": Case(lambda f: BrenierMap(steps=0), ValueError, "steps"),
    "batch_size=-1": Case(lambda f: BrenierMap(batch_size=-1), ValueError, "batch_size"),
    "lr=nan": Case(lambda f: BrenierMap(lr=NAN), ValueError, "lr"),
    "epsilon=-1": Case(lambda f: BrenierMap(epsilon=-1.0), ValueError, "epsilon"),
    "time_limit=-1": Case(lambda f: BrenierMap(time_limit=-1.0), ValueError, "time_limit"),
    "net not a gradient network": Case(
        lambda f: BrenierMap(net=torch.nn.Linear(2, 2)), TypeError, "net"
    ),
    "load a flipped weight byte": Case(
        lambda f: BrenierMap.load(f["flipped_map"]), ValueError, "checksum"
    ),
    "load a flow file": Case(lambda f: BrenierMap.load(f["flow"]), ValueError, "corrupt"),
    "save into a missing folder": Case(
        lambda f: brenier().save(f["dir"] / "no" / "m.pt"), ValueError, "does not exist"
    ),
}  # fmt: skip

FLOW = {
    "constant data": Case(
        lambda f: ConvexPotentialFlow(2, steps=2).fit(np.ones((50, 2))), ValueError, "X is constant"
    ),
    "one constant feature": Case(
        lambda f: ConvexPotentialFlow(2, steps=2).fit(np.c_[X[:, 0], np.ones(200)]),
        ValueError, r"constant in feature\(s\) \[1\]",
    ),
    "data beyond float32": Case(
        lambda f: ConvexPotentialFlow(2, steps=2).fit(X * 1e200), ValueError, "X has values beyond"
    ),
    "data whose variance overflows float64": Case(
        lambda f: ConvexPotentialFlow(2, steps=2, dtype=torch.float64).fit(X * 1e200),
        ValueError, "X is too large",
    ),
    "inverse_transform tol=nan": Case(
        lambda f: flow().inverse_transform(X[:5], tol=NAN), ValueError, "tol"
    ),
    "inverse_transform max_iter=0": Case(
        lambda f: flow().inverse_transform(X[:5], max_iter=0), ValueError, "max_iter"
    ),
    "log_prob with 3 features": Case(
        lambda f: flow().log_prob(np.ones((5, 3))), ValueError, "X must have 2"
    ),
    "log_prob of NaN": Case(lambda f: flow().log_prob(X * NAN), ValueError, "X contains NaN"),
    "sample n=-1": Case(lambda f: flow().sample(-1), ValueError, "n"),
    "flow network inverse tol=nan": Case(
        lambda f: flow().flow_.inverse(torch.zeros(3, 2), tol=NAN), ValueError, "tol"
    ),
    "sample tol=nan": Case(lambda f: flow().sample(3, tol=NAN), ValueError, "tol"),
    "sample seed='abc'": Case(lambda f: flow().sample(3, seed="abc"), TypeError, "seed"),
    "dim=0": Case(lambda f: ConvexPotentialFlow(0), ValueError, "dim"),
    "blocks=0": Case(lambda f: ConvexPotentialFlow(2, blocks=0), ValueError, "blocks"),
    "logdet='bogus'": Case(lambda f: ConvexPotentialFlow(2, logdet="bogus"), ValueError, "logdet"),
    "val_fraction=1.5": Case(
        lambda f: ConvexPotentialFlow(2, val_fraction=1.5), ValueError, "val_fraction"
    ),
    "cg_tol=nan": Case(lambda f: ConvexPotentialFlow(2, cg_tol=NAN), ValueError, "cg_tol"),
    "fit data of another dimension": Case(
        lambda f: ConvexPotentialFlow(3, steps=2).fit(X), ValueError, "X must have 3"
    ),
    "load a flipped weight byte": Case(
        lambda f: ConvexPotentialFlow.load(f["flipped_flow"]), ValueError, "checksum"
    ),
}  # fmt: skip

SCORE = {
    "constant data": Case(
        lambda f: ScoreModel(steps=2).fit(np.ones((50, 2))), ValueError, "X is constant"
    ),
    "langevin eps=1e6 diverges": Case(
        lambda f: score().sample(8, method="langevin", steps=20, eps=1e6, seed=0),
        FloatingPointError, "eps",
    ),
    "langevin eps=-1": Case(
        lambda f: score().sample(8, method="langevin", steps=20, eps=-1.0), ValueError, "eps"
    ),
    "langevin eps=nan": Case(
        lambda f: score().sample(8, method="langevin", steps=20, eps=NAN), ValueError, "eps"
    ),
    "sample n=0": Case(lambda f: score().sample(0), ValueError, "n"),
    "sample steps=0": Case(lambda f: score().sample(4, steps=0), ValueError, "steps"),
    "sample method='bogus'": Case(lambda f: score().sample(4, method="bogus"), ValueError, "method"),
    "sample seed='abc'": Case(lambda f: score().sample(4, seed="abc"), TypeError, "seed"),
    "log_prob rtol=-1": Case(lambda f: score().log_prob(X[:4], rtol=-1.0), ValueError, "rtol"),
    "log_prob atol=nan": Case(lambda f: score().log_prob(X[:4], atol=NAN), ValueError, "atol"),
    "log_prob batch_size=0": Case(
        lambda f: score().log_prob(X[:4], batch_size=0), ValueError, "batch_size"
    ),
    "log_prob trace='bogus'": Case(
        lambda f: score().log_prob(X[:4], trace="bogus"), ValueError, "trace"
    ),
    "log_prob method='bogus'": Case(
        lambda f: score().log_prob(X[:4], method="bogus"), ValueError, "method"
    ),
    "log_prob sigma=-1": Case(lambda f: score().log_prob(X[:4], sigma=-1.0), ValueError, "sigma"),
    "log_prob grid bounds reversed": Case(
        lambda f: score().log_prob(X[:4], method="grid", bounds=(1, 0, 0, 1)), ValueError, "bounds"
    ),
    "log_prob grid bounds of 3 numbers": Case(
        lambda f: score().log_prob(X[:4], method="grid", bounds=(0, 1, 0)), ValueError, "bounds"
    ),
    "log_prob grid bounds NaN": Case(
        lambda f: score().log_prob(X[:4], method="grid", bounds=(0, NAN, 0, 1)),
        ValueError, "bounds",
    ),
    "log_prob grid resolution=0": Case(
        lambda f: score().log_prob(X[:4], method="grid", bounds=(-3, 3, -3, 3), resolution=0),
        ValueError, "resolution",
    ),
    "score sigma=nan": Case(lambda f: score().score(X[:4], NAN), ValueError, "sigma"),
    "score sigma of the wrong shape": Case(
        lambda f: score().score(X[:4], np.ones(3)), ValueError, "sigma"
    ),
    "sigma_min above sigma_max": Case(
        lambda f: ScoreModel(sigma_min=1.0, sigma_max=0.5), ValueError, "sigma"
    ),
    "ema=1": Case(lambda f: ScoreModel(ema=1.0), ValueError, "ema"),
    "objective='bogus'": Case(lambda f: ScoreModel(objective="bogus"), ValueError, "objective"),
    "load a flipped weight byte": Case(
        lambda f: ScoreModel.load(f["flipped_score"]), ValueError, "checksum"
    ),
}  # fmt: skip

INVERSE = {
    "bounds reversed": Case(
        lambda f: reconstruct(image(), Denoising(), regularizer(), bounds=(1, 0)), ValueError, "bounds"
    ),
    "tol=nan": Case(
        lambda f: reconstruct(image(), Denoising(), regularizer(), tol=NAN), ValueError, "tol"
    ),
    "max_iter=0": Case(
        lambda f: reconstruct(image(), Denoising(), regularizer(), max_iter=0), ValueError, "max_iter"
    ),
    "an operator without A": Case(
        lambda f: reconstruct(image(), object(), regularizer()), TypeError, "operator"
    ),
    "a gradient network as regularizer": Case(
        lambda f: reconstruct(image(), Denoising(), GradNetC(2, 4)), TypeError, "regularizer"
    ),
    "NaN measurement": Case(
        lambda f: reconstruct(image() * NAN, Denoising(), regularizer()), ValueError, "y"
    ),
    "measurement of the wrong size": Case(
        lambda f: reconstruct(image(8), Blur((16, 16)), regularizer()), ValueError, "y"
    ),
    "x0 of the wrong size": Case(
        lambda f: reconstruct(image(), Denoising(), regularizer(), x0=image(8)), ValueError, "x0"
    ),
    "Tomography angles=[nan]": Case(lambda f: Tomography(16, angles=[NAN]), ValueError, "angles"),
    "Tomography angles=[]": Case(lambda f: Tomography(16, angles=[]), ValueError, "angles"),
    "Tomography angles=True": Case(lambda f: Tomography(16, angles=True), TypeError, "angles"),
    "Tomography angles='abc'": Case(lambda f: Tomography(16, angles="abc"), TypeError, "angles"),
    "Tomography size=0": Case(lambda f: Tomography(0), ValueError, "size"),
    "Blur shape=16": Case(lambda f: Blur(16), TypeError, "shape"),
    "Blur sigma=inf": Case(lambda f: Blur((16, 16), sigma=math.inf), ValueError, "sigma"),
    "Blur NaN kernel": Case(
        lambda f: Blur((16, 16), kernel=torch.full((3, 3), NAN)), ValueError, "kernel"
    ),
    "Blur kernel larger than the image": Case(
        lambda f: Blur((4, 4), kernel=torch.ones(5, 5)), ValueError, "kernel"
    ),
    "Inpainting mask of 0.5": Case(
        lambda f: Inpainting(torch.full((8, 8), 0.5)), ValueError, "mask"
    ),
    "Inpainting 3-D mask": Case(lambda f: Inpainting(torch.ones(1, 8, 8)), ValueError, "mask"),
    "pretrained('bogus')": Case(lambda f: ConvexRegularizer.pretrained("bogus"), ValueError, "name"),
    "pretrained sigma=nan": Case(lambda f: ConvexRegularizer.pretrained("bsd", NAN), ValueError, "sigma"),
    "use_strength of an unknown label": Case(
        lambda f: regularizer().use_strength("bogus"), ValueError, "label"
    ),
    "set_strength lmbda=-1": Case(lambda f: regularizer().set_strength(-1.0), ValueError, "lmbda"),
    "fit no images": Case(
        lambda f: ConvexRegularizer(ConvGradNet((1, 2), 3, knots=5)).fit([]), ValueError, "images"
    ),
    "fit a NaN image": Case(
        lambda f: ConvexRegularizer(ConvGradNet((1, 2), 3, knots=5)).fit([np.full((40, 40), NAN)]),
        ValueError, "image",
    ),
    "fit a 1-D image": Case(
        lambda f: ConvexRegularizer(ConvGradNet((1, 2), 3, knots=5)).fit([np.ones(40)]),
        ValueError, "image",
    ),
    "regularizer of a non-image network": Case(
        lambda f: ConvexRegularizer(GradNetC(2, 4)), TypeError, "net"
    ),
}  # fmt: skip

# the settings every head shares, on every head
SHARED = [
    ("seed='abc'", {"seed": "abc"}, TypeError, "seed"),
    ("seed=2**70", {"seed": 2**70}, ValueError, "seed"),
    ("seed=-1", {"seed": -1}, ValueError, "seed"),
    ("time_limit=nan", {"time_limit": NAN}, ValueError, "time_limit"),
    ("dtype=torch.int32", {"dtype": torch.int32}, TypeError, "dtype"),
    ("device='gpu'", {"device": "gpu"}, ValueError, "device"),
    ("progress='yes'", {"progress": "yes"}, TypeError, "progress"),
]
if not CUDA:
    SHARED.append(("device='cuda' without CUDA", {"device": "cuda"}, ValueError, "device"))
HEADS = [
    (BRENIER, BrenierMap),
    (FLOW, functools.partial(ConvexPotentialFlow, 2)),
    (SCORE, ScoreModel),
    (INVERSE, ConvexRegularizer),
]
for table, make in HEADS:
    for name, kwargs, error, match in SHARED:
        table[name] = Case(lambda f, make=make, kwargs=kwargs: make(**kwargs), error, match)

TABLES = {"library": LIBRARY, "ot": BRENIER, "flows": FLOW, "score": SCORE, "inverse": INVERSE}
CASES = [(f"{t}: {name}", case) for t, table in TABLES.items() for name, case in table.items()]


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_hostile_input_gets_a_clear_error(case, files):
    with pytest.raises(case.error, match=case.match):
        case.call(files)


def test_huge_data_is_standardized_not_overflowed():
    """Samples of magnitude 1e200 (their variance overflows float64) fit the same map as the
    same samples at unit scale."""
    a = BrenierMap(steps=3, seed=0, progress=False).fit(X, Y).transform(X[:20])
    b = (
        BrenierMap(steps=3, seed=0, progress=False)
        .fit(X * 1e200, Y * 1e200)
        .transform(X[:20] * 1e200)
    )
    assert np.isfinite(b).all()
    np.testing.assert_allclose(b / 1e200, a, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------- the CLI
CLI = {
    "output file of another kind": (["map", "{x}", "{y}", "--output", "{dir}/out.txt"], "out.txt"),
    "output into a missing folder": (["map", "{x}", "{y}", "--output", "{dir}/no/o.npy"], "does not exist"),
    "saved map into a missing folder": (["map", "{x}", "{y}", "--out", "{dir}/no/m.pt"], "does not exist"),
    "missing --load file": (["map", "--load", "{dir}/none.pt", "--apply", "{x}"], "does not exist"),
    "flipped --load file": (["map", "--load", "{flipped_map}", "--apply", "{x}"], "checksum"),
    "--load a flow as a map": (["map", "--load", "{flow}", "--apply", "{x}"], "corrupt"),
    "empty source": (["map", "{empty}", "{y}", "--steps", "2"], "at least 2"),
    "1-D source": (["map", "{one_d}", "{y}", "--steps", "2"], "2-D"),
    "corrupt source": (["map", "{corrupt}", "{y}", "--steps", "2"], "cannot read SOURCE"),
    "missing source": (["map", "{dir}/none.npy", "{y}", "--steps", "2"], "none.npy"),
    "seed='abc'": (["map", "{x}", "{y}", "--seed", "abc"], "--seed"),
    "seed=2**70": (["map", "{x}", "{y}", "--seed", str(2**70)], "--seed"),
    "steps=0": (["map", "{x}", "{y}", "--steps", "0"], "--steps"),
    "score --sample 0": (["score", "{x}", "--sample", "0"], "--sample"),
    "score flipped --load": (["score", "--load", "{flipped_score}", "--sample", "4"], "checksum"),
    "score --load without a request": (["score", "--load", "{score}"], "--sample"),
    "flow --sample with --log-prob": (["flow", "{x}", "--sample", "5", "--log-prob", "{x}"], "--log-prob"),
    "flow DATA and --load": (["flow", "{x}", "--load", "{flow}", "--sample", "3"], "not both"),
    "flow constant data": (["flow", "{dir}/const.npy", "--steps", "2"], "constant"),
    "reconstruct an 8-bit image": (["reconstruct", "{dir}/bytes.npy"], "divide"),
    "reconstruct a NaN image": (["reconstruct", "{dir}/nan_image.npy"], "NaN"),
    "reconstruct --sigma nan": (["reconstruct", "{dir}/image.npy", "--sigma", "nan"], "sigma"),
    "reconstruct a mask of another size": (
        ["reconstruct", "{dir}/image.npy", "--task", "inpaint", "--mask", "{x}"], "mask",
    ),
    "reconstruct a missing image": (["reconstruct", "{dir}/none.npy"], "none.npy"),
    "reconstruct into a missing folder": (["reconstruct", "{x}", "--output", "{dir}/no/r.npy"], "does not exist"),
}  # fmt: skip
if not CUDA:
    CLI["device cuda without CUDA"] = (["map", "{x}", "{y}", "--device", "cuda"], "device")


@pytest.mark.parametrize("argv, message", list(CLI.values()), ids=list(CLI))
def test_cli_hostile_input_exits_with_a_message(argv, message, files, capsys):
    np.save(files["dir"] / "const.npy", np.ones((40, 2)))
    np.save(files["dir"] / "image.npy", RNG.uniform(size=(16, 16)))
    np.save(files["dir"] / "bytes.npy", RNG.integers(0, 256, size=(16, 16), dtype=np.uint8))
    np.save(files["dir"] / "nan_image.npy", np.full((16, 16), NAN))
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    out = capsys.readouterr()
    text = exit_.value.code if isinstance(exit_.value.code, str) else out.err
    assert exit_.value.code not in (0, None)
    assert message in text, text
    assert "fitted in" not in out.out  # refused before any work


def test_cli_map_writes_the_transported_points_to_output(files, capsys):
    dest = files["dir"] / "mapped.csv"
    assert (
        main(["map", str(files["x"]), str(files["y"]), "--steps", "2", "--output", str(dest)]) == 0
    )
    assert dest.is_file() and np.loadtxt(dest, delimiter=",").shape == X.shape
    assert str(dest) in capsys.readouterr().out
