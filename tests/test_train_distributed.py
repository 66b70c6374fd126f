"""Data-parallel training: two gloo processes on the CPU follow the single-process run
with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from otgrad import train

from .ddp_worker import CASES

ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed gloo"
)


def run_two_processes(case: str, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",  # as a module from the repository root: tests/ot must not shadow POT's ot
        "tests.ddp_worker",
        case,
        str(out),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return torch.load(out, weights_only=True)


@pytest.mark.parametrize("case", ["tensors", "sampler"])
def test_two_processes_match_one(tmp_path, case):
    two = run_two_processes(case, tmp_path / "two.pt")
    one = CASES[case]()
    assert (one["world"], two["world"]) == (1, 2)
    # each process computed the loss on its half of the global batch
    assert (one["largest_batch"], two["largest_batch"]) == (
        (45, 23) if case == "tensors" else (64, 32)
    )
    assert one["loss"] == pytest.approx(two["loss"], rel=1e-10)
    assert one["skipped"] == two["skipped"]
    if case == "tensors":
        assert one["skipped"] == 3  # sample 7 poisons one batch per epoch, in both runs
    for k, v in one["state"].items():
        torch.testing.assert_close(two["state"][k], v, rtol=1e-10, atol=1e-12, msg=k)


def test_time_based_cosine_agrees_across_processes(tmp_path):
    """The processes run at different paces, yet share the learning rate (the mean of their
    clocks): their replicas stay identical, and the rate reaches 0 at the time limit."""
    rank0 = run_two_processes("timed", tmp_path / "two.pt")
    rank1 = torch.load(tmp_path / "two.pt.rank1", weights_only=True)
    assert rank0["steps"] == rank1["steps"] > 10
    assert rank0["lr"] == rank1["lr"] < 1e-4
    for k, v in rank0["state"].items():
        assert torch.equal(rank1["state"][k], v), k


def test_brenier_map_on_two_processes(tmp_path):
    two = run_two_processes("brenier", tmp_path / "two.pt")
    one = CASES["brenier"]()
    # the only difference: each process warm-starts the conjugate points it visited
    torch.testing.assert_close(two["map"], one["map"], rtol=0, atol=1e-5)
    assert two["loss"] == pytest.approx(one["loss"], abs=1e-6)


def test_single_process_helpers():
    assert train.world() == (0, 1)
    assert train.is_main_process()
    assert train.init_distributed() is False
    assert train.default_device().type in ("cpu", "cuda")
    net = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="torchrun"):
        train.fit(net, lambda m, x: m(x).sum(), (torch.randn(4, 2),), distributed=True)


def test_cli_map_under_torchrun_reports_and_saves_once(tmp_path):
    import numpy as np

    x = np.random.default_rng(0).normal(size=(600, 2))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", 2 * x + 1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "otgrad.cli", "map", str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]
    cmd += ["--steps", "20", "--batch-size", "128", "--device", "cpu"]
    cmd += ["--out", str(tmp_path / "map.pt")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    assert r.stdout.count("fitted in") == 1 and r.stdout.count("saved:") == 1
    assert (tmp_path / "map.pt").exists()
