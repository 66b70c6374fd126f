r"""The training loop shared by every estimator and study.

:func:`fit` runs minibatch first-order optimization, either over tensors held in memory
(shuffled epochs) or over a sampler that draws a fresh batch at every step, with an
optional validation set (keeping the best weights, as in the paper's protocol), an
optional cosine learning-rate schedule, a wall-clock budget, and a tqdm progress bar
when stderr is a terminal. :func:`refine` polishes a trained model with full-batch
L-BFGS (a second-order method: for networks of a few hundred parameters it reaches
far lower losses than Adam in seconds).

Scale: ``fit`` places batches on the model's device, can compile the step with
:func:`torch.compile` (CUDA graphs with ``compile="reduce-overhead"``), run the forward
pass in bfloat16 autocast, and trains data-parallel over :mod:`torch.distributed`
(:class:`~torch.nn.parallel.DistributedDataParallel`) when launched by ``torchrun``::

    torchrun --nproc_per_node=4 my_script.py   # every fit() in it runs on 4 processes

Every process draws the same global batch and takes its share of it, so a run on
:math:`N` processes follows the single-process run with the same global batch.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import math
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

__all__ = [
    "fit",
    "refine",
    "History",
    "init_distributed",
    "world",
    "is_main_process",
    "default_device",
]

Sampler = Callable[[torch.Generator], Sequence[Tensor]]


@dataclass
class History:
    r"""What :func:`fit` did: per-epoch mean training loss, validation loss, and the best epoch."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = math.inf
    steps: int = 0
    seconds: float = 0.0
    skipped_steps: int = 0
    restored: int = 0


def _check_tensors(data: Sequence[Tensor], name: str) -> list[Tensor]:
    data = list(data)
    if not data:
        raise ValueError(f"{name} must hold at least one tensor")
    n = data[0].shape[0]
    if n == 0 or any(t.shape[0] != n for t in data):
        raise ValueError(f"{name} tensors must be non-empty and share their first dimension")
    return data


def init_distributed() -> bool:
    r"""Initializes :mod:`torch.distributed` from ``torchrun``'s environment, if needed.

    Does nothing when the process group already exists or when the process was not
    launched by ``torchrun`` (no ``WORLD_SIZE`` above 1 in the environment). The backend
    is NCCL when CUDA is available, else gloo; each process then uses the GPU
    ``LOCAL_RANK`` (see :func:`default_device`). The group is destroyed when the
    interpreter exits.

    Returns:
        Whether a process group of more than one process is active.
    """
    if not dist.is_available():
        return False
    if not dist.is_initialized():
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return False
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
        # tear the group down before the interpreter exits (a gloo or NCCL thread left
        # running at exit aborts the process: "terminate called without an active exception")
        atexit.register(_destroy_process_group)
    return dist.get_world_size() > 1


def _destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def world() -> tuple[int, int]:
    r"""Returns ``(rank, world_size)`` of this process (``(0, 1)`` outside
    :mod:`torch.distributed`)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    r"""Whether this process should log and write files (rank 0, or not distributed)."""
    return world()[0] == 0


def default_device() -> torch.device:
    r"""The device estimators train on by default: the GPU ``LOCAL_RANK`` (set by
    ``torchrun``, else 0) when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


class _Objective(nn.Module):
    r"""``loss_fn(model, *batch)`` as a module, so that :class:`DistributedDataParallel`
    and :func:`torch.compile` see one forward pass whatever methods the loss calls."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., Tensor]):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, *batch: Tensor) -> Tensor:
        return self.loss_fn(self.model, *batch)


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return torch.device("cpu") if p is None else p.device


_FORMAT = "otgrad.fit/1"


def _save_state(path, epoch, model, opt, sched, gens, averaged, best_state, hist) -> None:
    gen, local_gen = gens
    state = {
        "format": _FORMAT,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": None if sched is None else sched.state_dict(),
        "generator": gen.get_state(),
        "local_generator": local_gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "averaged": averaged,
        "best_state": best_state,
        "history": asdict(hist),
    }
    tmp = f"{os.fspath(path)}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: an interrupted save leaves the previous checkpoint


def _resume(path, model, opt, sched, gens, averaged, hist) -> tuple[int, dict | None]:
    gen, local_gen = gens
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError("not a training checkpoint of otgrad.train.fit")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if (sched is None) != (state["scheduler"] is None):
            raise ValueError("the learning-rate schedule differs from the checkpoint's")
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        if "local_generator" in state:
            local_gen.set_state(state["local_generator"])
        torch.set_rng_state(state["torch_rng"])
        if (averaged is None) != (state["averaged"] is None):
            raise ValueError("ema differs from the checkpoint's")
        if averaged is not None:
            with torch.no_grad():
                for a, b in zip(averaged, state["averaged"], strict=True):
                    a.copy_(b)
        for k, v in state["history"].items():
            setattr(hist, k, v)
        return int(state["epoch"]) + 1, state["best_state"]
    except (KeyError, TypeError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise ValueError(f"cannot resume from {os.fspath(path)!r}: {e}") from e


def fit(
    model: nn.Module,
    loss_fn: Callable[..., Tensor],
    data: Sequence[Tensor] | Sampler,
    *,
    epochs: int = 10,
    batch_size: int = 1000,
    steps_per_epoch: int | None = None,
    lr: float = 1e-3,
    schedule: str | None = None,
    val_data: Sequence[Tensor] | None = None,
    seed: int | None = None,
    time_limit: float | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    progress: bool | None = None,
    ema: float | None = None,
    on_epoch: Callable[[int, History], None] | None = None,
    clip_grad: float | None = None,
    max_bad_steps: int = 10,
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    compile: bool | str = False,
    autocast: torch.dtype | None = None,
    distributed: bool | None = None,
) -> History:
    r"""Trains ``model`` by minibatch Adam on ``loss_fn(model, *batch)``.

    Arguments:
        model: The module to train (its parameters are updated in place).
        loss_fn: ``(model, *tensors) -> scalar loss``, a mean over the samples of the
            batch (data-parallel training averages it over processes).
        data: Tensors sharing their first dimension (samples), shuffled into minibatches
            of ``batch_size`` each epoch; or a sampler ``generator -> tensors`` that
            draws a fresh batch at each of the ``steps_per_epoch`` steps of an epoch.
            They may live on another device than the model (e.g. a large set in CPU
            memory): each batch is moved to the model's device.
        epochs: The number of epochs (validation happens after each).
        batch_size: The minibatch size (for tensors); with several processes, the
            global batch, split between them.
        steps_per_epoch: The steps per epoch (required with a sampler).
        lr: The learning rate of the default Adam optimizer.
        schedule: ``None`` (constant) or ``"cosine"`` (decay to 0 over all steps).
        val_data: Validation tensors; when given, the weights with the lowest validation
            loss (evaluated after each epoch) are restored at the end.
        seed: Seeds the shuffling or the sampler (a private ``torch.Generator``).
        time_limit: Stops after this many seconds (checked after each step).
        optimizer: An optimizer to use instead of Adam (fused on CUDA).
        progress: Show a progress bar (default: when stderr is a terminal; never on
            processes other than rank 0).
        ema: A decay in :math:`(0, 1)`: keep an exponential moving average of the
            parameters (updated after every step) and load it into ``model`` at the end
            (the standard for score models). Not combined with ``val_data``.
        on_epoch: Called as ``on_epoch(epoch, history)`` after each epoch, on every
            process (guard file writes with :func:`is_main_process`).
        clip_grad: Clip the gradients' global norm to this value before each step.
        max_bad_steps: A step whose loss (or, with ``clip_grad``, gradient norm) is NaN or
            infinite is skipped, leaving the parameters and the optimizer's state as they
            were; if the parameters themselves are no longer finite, the model and the
            optimizer go back to the last good state (taken at an epoch's end, at most once
            a second; ``History.restored`` counts these). This many bad steps in a row raise a
            ``FloatingPointError``.
        checkpoint: A file holding the whole training state (weights, optimizer, schedule,
            random generators, weight average, best weights, history), written after every
            epoch (by rank 0). If it exists when ``fit`` starts, training resumes after
            its last epoch; on CPU the resumed run is bit-identical to an uninterrupted
            one (in one process; data-parallel runs resume exactly except for random
            numbers drawn from the global generator inside ``loss_fn``). Loaded with ``torch.load(weights_only=True)``: it never executes code.
        device: Moves the model there first (default: leave it where it is).
        compile: Compile the loss and its backward with :func:`torch.compile`; a string
            is the compile mode (``"reduce-overhead"`` uses CUDA graphs: keep the batch
            shape fixed). The optimizer step and the checks stay eager.
        autocast: ``torch.bfloat16`` runs the loss's forward pass under
            :func:`torch.autocast` (parameters, gradients and the optimizer stay in their
            dtype). Log-determinants and inverse maps of :mod:`otgrad.nn` always run in
            full precision.
        distributed: Train data-parallel over the processes of :mod:`torch.distributed`
            (default: when a process group of several processes is active, or when
            launched by ``torchrun``, see :func:`init_distributed`). Every process draws
            the same global batch (same seed, broadcast from rank 0) and computes the
            loss on its share; :class:`~torch.nn.parallel.DistributedDataParallel`
            averages the gradients. A final batch with fewer samples than processes is
            skipped. The global random generator of rank :math:`r` is reseeded from the
            run's seed and :math:`r`, so that noise drawn inside ``loss_fn`` differs
            between processes.

    Returns:
        The :class:`History` of the run.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if schedule not in (None, "cosine"):
        raise ValueError(f"schedule must be None or 'cosine', got {schedule!r}")
    if callable(data):
        if steps_per_epoch is None or steps_per_epoch < 1:
            raise ValueError("steps_per_epoch must be a positive integer with a sampler")
        tensors, n = None, 0
    else:
        tensors = _check_tensors(data, "data")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        n = tensors[0].shape[0]
        steps_per_epoch = math.ceil(n / batch_size)
    if val_data is not None:
        val_data = _check_tensors(val_data, "val_data")
    if clip_grad is not None and not (
        isinstance(clip_grad, (int, float)) and not isinstance(clip_grad, bool) and clip_grad > 0
    ):
        raise ValueError(f"clip_grad must be a positive number, got {clip_grad!r}")
    if isinstance(max_bad_steps, bool) or not isinstance(max_bad_steps, int) or max_bad_steps < 1:
        raise ValueError(f"max_bad_steps must be a positive integer, got {max_bad_steps!r}")
    if ema is not None:
        if not (isinstance(ema, float) and 0.0 < ema < 1.0):
            raise ValueError(f"ema must be a float in (0, 1), got {ema!r}")
        if val_data is not None:
            raise ValueError("ema and val_data cannot be combined; pick one way to choose weights")
    if not isinstance(compile, (bool, str)):
        raise TypeError(f"compile must be a bool or a torch.compile mode, got {compile!r}")
    if autocast not in (None, torch.bfloat16):
        raise ValueError(
            f"autocast must be None or torch.bfloat16, got {autocast!r} (float16 would need "
            "loss scaling, which fit does not do)"
        )
    if device is not None:
        model.to(device)
    target = _model_device(model)
    if distributed is None:
        distributed = init_distributed()
    rank, size = world() if distributed else (0, 1)
    if distributed and size == 1 and not (dist.is_available() and dist.is_initialized()):
        raise ValueError("distributed=True needs torch.distributed (launch with torchrun)")
    params = [p for p in model.parameters() if p.requires_grad]
    averaged = [p.detach().clone() for p in params] if ema is not None else None
    # without a seed, draw one from the global generator (never reseed it: torch.seed()
    # would discard the user's torch.manual_seed); all processes use rank 0's
    if seed is None:
        seed = int(torch.randint(2**62, ()))
    if size > 1:
        box = torch.tensor([seed], dtype=torch.int64, device=_collective_device(target))
        dist.broadcast(box, 0)
        seed = int(box)
        torch.manual_seed(_process_seed(seed, rank))
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    # a sampler that passes the generator on (to draw noise in loss_fn) gets a per-process one
    local_gen = torch.Generator(device="cpu")
    local_gen.manual_seed(_process_seed(seed, rank))
    # on a GPU, Adam's single fused kernel (a launch-bound step of a small network)
    fused = True if target.type == "cuda" else None
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr, fused=fused)
    sched = None
    if schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)

    objective: nn.Module = _Objective(model, loss_fn)
    if size > 1:
        objective = DistributedDataParallel(
            objective, device_ids=[target.index] if target.type == "cuda" else None
        )
    if compile:
        objective = torch.compile(objective, mode=None if compile is True else compile)
    plain = size == 1 and not compile and autocast is None  # the default path: no wrapper
    move = tensors is None or any(t.device != target for t in tensors)
    amp = (
        torch.autocast(target.type, dtype=autocast)
        if autocast is not None
        else contextlib.nullcontext()
    )

    def batches() -> Iterator[tuple[list[Tensor], int]]:
        # (this process's share of the global batch, the global batch size)
        if tensors is None:
            for _ in range(steps_per_epoch):
                batch = list(data(gen))
                k_all = batch[0].shape[0]
                if size > 1:
                    batch = [_share(t, rank, size, local_gen) for t in batch]
                yield batch, k_all
        else:
            perm = torch.randperm(n, generator=gen).to(tensors[0].device)
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                k_all = idx.shape[0]
                if size > 1:
                    idx = idx.tensor_split(size)[rank]
                yield [t[idx] for t in tensors], k_all

    show = (sys.stderr.isatty() if progress is None else progress) and rank == 0
    hist = History()
    best_state = None
    first = 0
    if checkpoint is not None and os.path.exists(checkpoint):
        first, best_state = _resume(
            checkpoint, model, opt, sched, (gen, local_gen), averaged, hist
        )
        if size > 1:  # the checkpoint holds rank 0's generators: decorrelate the processes
            torch.manual_seed(_process_seed(seed, rank, first))
            local_gen.manual_seed(_process_seed(seed, rank, first))
    start = time.perf_counter()
    bar = tqdm(total=epochs, initial=first, disable=not show, desc="fit")
    stop, bad = False, 0
    good = _snapshot(model, opt)  # the last state with finite parameters (epoch ends)
    good_time = time.perf_counter()
    for epoch in range(first, epochs):
        total, count = 0.0, 0
        model.train()
        for batch, k_all in batches():
            if k_all < size:  # too small to give every process a share (all skip it)
                continue
            if move:
                batch = [_to(t, target) if isinstance(t, Tensor) else t for t in batch]
            k = batch[0].shape[0]
            if plain:
                loss = loss_fn(model, *batch)
            else:
                with amp:
                    loss = objective(*batch)
            if size > 1:
                value = _all_sum(float(loss.detach()) * k, target) / k_all
                if k * size != k_all:  # unequal shares: weight by the share's size
                    loss = loss * (k * size / k_all)
            else:
                value = float(loss.detach())
            opt.zero_grad(set_to_none=True)
            ok = math.isfinite(value)
            if ok:
                loss.backward()
                if clip_grad is not None:
                    norm = torch.nn.utils.clip_grad_norm_(params, clip_grad)
                    ok = bool(torch.isfinite(norm))
            if not ok:  # skip the step: parameters and optimizer state stay as they were
                opt.zero_grad(set_to_none=True)
                hist.skipped_steps += 1
                bad += 1
                if not all(bool(torch.isfinite(p).all()) for p in params):
                    # the parameters themselves diverged: back to the last good state
                    model.load_state_dict(good[0])
                    opt.load_state_dict(good[1])
                    hist.restored += 1
                if bad >= max_bad_steps:
                    raise FloatingPointError(
                        f"{bad} training steps in a row had a non-finite loss or gradient "
                        f"(last loss {value}) at step {hist.steps}; lower the learning rate, "
                        "set clip_grad, or check the data"
                    )
                continue
            bad = 0
            opt.step()
            if averaged is not None:
                with torch.no_grad():
                    torch._foreach_lerp_(averaged, [p.detach() for p in params], 1.0 - ema)
            if sched is not None:
                sched.step()
            total += value * k_all
            count += k_all
            hist.steps += 1
            if time_limit is not None:
                late = time.perf_counter() - start > time_limit
                if size > 1:  # stop together
                    late = _all_sum(float(late), target) > 0
                if late:
                    stop = True
                    break
        hist.train_loss.append(total / max(count, 1))
        if val_data is not None:
            model.eval()
            with torch.no_grad(), amp:
                val = float(loss_fn(model, *[_to(t, target) for t in val_data]))
            hist.val_loss.append(val)
            if val < hist.best_val:
                hist.best_val, hist.best_epoch = val, epoch
                best_state = copy.deepcopy(model.state_dict())
        # refresh the good state at most once a second: a copy per short epoch would cost
        if time.perf_counter() - good_time > 1.0 and all(
            bool(torch.isfinite(p).all()) for p in params
        ):
            good, good_time = _snapshot(model, opt), time.perf_counter()
        bar.update(1)
        bar.set_postfix(loss=f"{hist.train_loss[-1]:.3e}")
        if checkpoint is not None and rank == 0:
            _save_state(
                checkpoint, epoch, model, opt, sched, (gen, local_gen), averaged, best_state, hist
            )
        if on_epoch is not None:
            on_epoch(epoch, hist)
        if stop:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    if averaged is not None:
        with torch.no_grad():
            for p, a in zip(params, averaged, strict=True):
                p.copy_(a)
    model.eval()
    hist.seconds = time.perf_counter() - start
    return hist


def _share(t: Any, rank: int, size: int, local_gen: torch.Generator) -> Any:
    if isinstance(t, Tensor):
        return t.tensor_split(size)[rank]
    return local_gen if isinstance(t, torch.Generator) else t


def _process_seed(seed: int, rank: int, epoch: int = 0) -> int:
    # a seed per (run, process, resumed epoch)
    return (seed * 1_000_003 + epoch * 7919 + rank + 1) % 2**63


def _snapshot(model: nn.Module, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    return copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())


def _to(t: Tensor, device: torch.device) -> Tensor:
    return t if t.device == device else t.to(device, non_blocking=True)


def _collective_device(device: torch.device) -> torch.device:
    # NCCL reduces CUDA tensors only; gloo takes CPU tensors
    return device if dist.get_backend() == "nccl" else torch.device("cpu")


def _all_sum(value: float, device: torch.device) -> float:
    box = torch.tensor([value], dtype=torch.float64, device=_collective_device(device))
    dist.all_reduce(box)
    return float(box)


def refine(
    model: nn.Module,
    loss_fn: Callable[..., Tensor],
    data: Sequence[Tensor],
    *,
    iterations: int = 500,
    val_data: Sequence[Tensor] | None = None,
    rounds: int = 10,
    tolerance: float = 1e-12,
) -> History:
    r"""Polishes a model with full-batch L-BFGS (strong-Wolfe line search).

    Runs ``rounds`` rounds of ``iterations // rounds`` L-BFGS iterations on the whole of
    ``data``; after each round the validation loss is recorded and the best weights
    are kept (and restored at the end). A round whose loss is not finite restores the
    best weights and stops.

    Arguments:
        model: The module to refine (in place).
        loss_fn: ``(model, *tensors) -> scalar loss``.
        data: The full training set.
        iterations: The total number of L-BFGS iterations.
        val_data: Validation tensors (default: ``data``).
        rounds: The number of validation checkpoints.
        tolerance: L-BFGS's gradient and change tolerance.

    Returns:
        A :class:`History` with one entry per round.
    """
    data = _check_tensors(data, "data")
    val_data = data if val_data is None else _check_tensors(val_data, "val_data")
    per_round = max(1, iterations // rounds)
    opt = torch.optim.LBFGS(
        model.parameters(),
        lr=1.0,
        max_iter=per_round,
        history_size=50,
        tolerance_grad=tolerance,
        tolerance_change=tolerance,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, *data)
        loss.backward()
        return loss

    def validate() -> float:
        with torch.no_grad():
            return float(loss_fn(model, *val_data))

    hist = History(best_val=validate(), best_epoch=-1)
    best_state = copy.deepcopy(model.state_dict())
    start = time.perf_counter()
    for r in range(rounds):
        loss = float(opt.step(closure).detach())
        val = validate()
        hist.train_loss.append(loss)
        hist.val_loss.append(val)
        hist.steps += per_round
        if not (math.isfinite(loss) and math.isfinite(val)):
            break
        if val < hist.best_val:
            hist.best_val, hist.best_epoch = val, r
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    hist.seconds = time.perf_counter() - start
    return hist
