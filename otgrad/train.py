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
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler
from tqdm.auto import tqdm

from ._validation import (
    check_choice,
    check_device,
    check_optional_positive,
    check_output_path,
    check_positive_int,
    check_positive_number,
    check_seed,
)

__all__ = [
    "fit",
    "refine",
    "History",
    "reuse_cpu_memory",
    "init_distributed",
    "world",
    "is_main_process",
    "default_device",
]

Sampler = Callable[[torch.Generator], Sequence[Tensor]]


@dataclass
class History:
    r"""What :func:`fit` did: per-epoch mean training loss, validation loss, the best epoch,
    the steps taken and whether every epoch ran (``finished``: ``False`` when the time limit
    stopped the run)."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = math.inf
    steps: int = 0
    seconds: float = 0.0
    skipped_steps: int = 0
    restored: int = 0
    finished: bool = False


def _check_tensors(data: Sequence[Tensor], name: str) -> list[Tensor]:
    data = list(data)
    if not data:
        raise ValueError(f"{name} must hold at least one tensor")
    n = data[0].shape[0]
    if n == 0 or any(t.shape[0] != n for t in data):
        raise ValueError(f"{name} tensors must be non-empty and share their first dimension")
    return data


def reuse_cpu_memory() -> bool:
    r"""Makes glibc's ``malloc`` keep freed memory for reuse instead of handing it back to
    the operating system (no ``mmap`` for large blocks, a 1 GiB trim threshold).

    A training step on the CPU frees and reallocates tensors of tens of megabytes; by
    default each is a fresh ``mmap`` whose pages are faulted in and zeroed again at every
    step, which can take more time than the arithmetic. Measured on the convex
    regularizer's training step (batch 128, :math:`t = 10`, two cores): 2.4 to 1.8 s at 32
    channels, 9.5 to 3.6 s at 64. The cost is that the process keeps its peak memory. It
    affects the whole process; the environment variables ``MALLOC_MMAP_MAX_=0
    MALLOC_TRIM_THRESHOLD_=1073741824`` do the same from the start.

    Returns:
        Whether the setting was applied (``False`` where the C library is not glibc).
    """
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    trim, mmap_max = -1, -4  # M_TRIM_THRESHOLD, M_MMAP_MAX
    return bool(mallopt(trim, ctypes.c_int(2**30))) and bool(mallopt(mmap_max, ctypes.c_int(0)))


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
    r"""Tears the process group down, after all processes arrive (a process that destroys
    its group while another still talks to it can abort), waiting at most a minute."""
    if not dist.is_initialized():
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=60))
        else:
            dist.barrier()
    except RuntimeError:  # another process failed: tear down anyway
        pass
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
        schedule: ``None`` (constant), ``"cosine"`` (decay to 0 over all steps) or
            ``"cosine-time"`` (decay to 0 over the steps or ``time_limit``, whichever
            ends first: the progress at a step is the larger of the fraction of steps
            and the fraction of the time limit used, so that a run cut by the clock
            still ends at a small learning rate; needs ``time_limit`` and no
            ``checkpoint``. A run that keeps at least an even pace through its steps
            follows ``"cosine"``).
        val_data: Validation tensors; when given, the weights with the lowest validation
            loss (evaluated after each epoch) are restored at the end.
        seed: Seeds the shuffling or the sampler (a private ``torch.Generator``).
        time_limit: Stops after this many seconds (checked before each step). With a
            ``checkpoint``, the run stops at an epoch boundary, before an epoch that would
            not end in time (judged by the last one's duration): call ``fit`` again with
            the same arguments to continue, bit-identically to an uninterrupted run (an
            epoch cut short all the same is not written to the checkpoint, and is
            repeated whole; the first epoch of a call is never cut, so that every call
            makes progress).
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
            ``FloatingPointError``, as does a run in which every step was bad.
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
    config = _Config(
        data=data,
        epochs=epochs,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        lr=lr,
        schedule=schedule,
        val_data=val_data,
        seed=seed,
        time_limit=time_limit,
        optimizer=optimizer,
        progress=progress,
        ema=ema,
        on_epoch=on_epoch,
        clip_grad=clip_grad,
        max_bad_steps=max_bad_steps,
        checkpoint=checkpoint,
        device=device,
        compile=compile,
        autocast=autocast,
        distributed=distributed,
    )
    run = _setup(model, loss_fn, _check_fit_args(config))
    first = _start(run)
    with _progress_bar(run, first) as bar:
        done = first  # epochs complete
        for epoch in range(first, run.config.epochs):
            began = time.perf_counter()
            # with a checkpoint, a call's first epoch always ends (each call makes progress)
            cut = _train_epoch(run, cuttable=run.config.checkpoint is None or epoch > first)
            _end_epoch(run, epoch, bar, complete=not cut)
            done += not cut
            # with a checkpoint, stop at this boundary if an epoch like the last would not fit
            last = time.perf_counter() - began if run.config.checkpoint is not None else 0.0
            if cut or _out_of_time(run, ahead=last):
                break
        run.hist.finished = done == run.config.epochs
    return _finish(run)


class _Objective(nn.Module):
    r"""``loss_fn(model, *batch)`` as a module, so that :class:`DistributedDataParallel`
    and :func:`torch.compile` see one forward pass whatever methods the loss calls."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., Tensor]):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, *batch: Tensor) -> Tensor:
        return self.loss_fn(self.model, *batch)


@dataclass(frozen=True)
class _Config:
    r"""The arguments of :func:`fit` other than the model and the loss (see its docstring).

    After :func:`_check_fit_args`, ``data`` and ``val_data`` are lists of tensors (or
    ``data`` a sampler) and ``steps_per_epoch`` is the number of steps of an epoch.
    """

    data: Sequence[Tensor] | Sampler
    epochs: int
    batch_size: int
    steps_per_epoch: int | None
    lr: float
    schedule: str | None
    val_data: Sequence[Tensor] | None
    seed: int | None
    time_limit: float | None
    optimizer: torch.optim.Optimizer | None
    progress: bool | None
    ema: float | None
    on_epoch: Callable[[int, History], None] | None
    clip_grad: float | None
    max_bad_steps: int
    checkpoint: str | os.PathLike | None
    device: str | torch.device | None
    compile: bool | str
    autocast: torch.dtype | None
    distributed: bool | None

    @property
    def tensors(self) -> list[Tensor] | None:
        r"""The training tensors, or ``None`` when the data is a sampler."""
        return None if callable(self.data) else self.data


@dataclass
class _Run:
    r"""The state of one :func:`fit` call: what it trains, how, and where it stands.

    Attributes:
        config: The checked arguments.
        model: The trained module.
        loss_fn: ``(model, *batch) -> loss``.
        objective: The loss as a module, wrapped for data parallelism and compilation.
        opt: The optimizer.
        sched: The learning-rate schedule, if any.
        params: The parameters that require gradients.
        averaged: Their exponential moving average (with ``ema``).
        seed: The run's seed (the same on every process).
        gen: Draws the global batches (the same on every process).
        local_gen: This process's generator, handed to the loss by a sampler.
        rank: This process's rank.
        size: The number of processes.
        target: The model's device, where batches go.
        plain: Whether the loss runs as is (one process, no compilation, no autocast).
        move: Whether batches may need moving to ``target``.
        amp: The autocast context of the forward pass (or a null context).
        hist: What happened so far.
        best_state: The weights of the best validation loss.
        good: The last state (model, optimizer) with finite parameters.
        good_time: When ``good`` was taken.
        start: When training started (for the time limit).
        bad: The number of bad steps in a row.
    """

    config: _Config
    model: nn.Module
    loss_fn: Callable[..., Tensor]
    objective: nn.Module
    opt: torch.optim.Optimizer
    sched: LRScheduler | None
    params: list[Tensor]
    averaged: list[Tensor] | None
    seed: int
    gen: torch.Generator
    local_gen: torch.Generator
    rank: int
    size: int
    target: torch.device
    plain: bool
    move: bool
    amp: contextlib.AbstractContextManager
    hist: History = field(default_factory=History)
    best_state: dict[str, Any] | None = None
    good: tuple[dict, dict] | None = None
    good_time: float = 0.0
    start: float = 0.0
    bad: int = 0


def _check_fit_args(config: _Config) -> _Config:
    r"""Validates the arguments of :func:`fit`.

    Returns:
        ``config`` with the data as lists of tensors and the number of steps per epoch.

    Raises:
        ValueError: For a bad value (named in the message).
        TypeError: If ``compile`` is neither a bool nor a string.
    """
    check_positive_int(epochs=config.epochs)
    check_positive_number("lr", config.lr)
    check_seed(config.seed)
    check_device(config.device)
    check_optional_positive(time_limit=config.time_limit)
    if config.checkpoint is not None:
        check_output_path(config.checkpoint, "checkpoint")
    check_choice("schedule", config.schedule, (None, "cosine", "cosine-time"))
    if config.schedule == "cosine-time":
        if config.time_limit is None:
            raise ValueError('schedule="cosine-time" needs a time_limit')
        if config.checkpoint is not None:
            raise ValueError(
                'schedule="cosine-time" cannot be combined with a checkpoint: the time limit '
                "is per call, so a resumed run would restart the clock"
            )
    data, steps = _check_data(config)
    val_data = config.val_data
    if val_data is not None:
        val_data = _check_tensors(val_data, "val_data")
    check_optional_positive(clip_grad=config.clip_grad)
    check_positive_int(max_bad_steps=config.max_bad_steps)
    if config.ema is not None:
        if not (isinstance(config.ema, float) and 0.0 < config.ema < 1.0):
            raise ValueError(f"ema must be a float in (0, 1), got {config.ema!r}")
        if val_data is not None:
            raise ValueError("ema and val_data cannot be combined; pick one way to choose weights")
    if not isinstance(config.compile, (bool, str)):
        raise TypeError(f"compile must be a bool or a torch.compile mode, got {config.compile!r}")
    if config.autocast not in (None, torch.bfloat16):
        raise ValueError(
            f"autocast must be None or torch.bfloat16, got {config.autocast!r} (float16 would "
            "need loss scaling, which fit does not do)"
        )
    return replace(config, data=data, steps_per_epoch=steps, val_data=val_data)


def _check_data(config: _Config) -> tuple[list[Tensor] | Sampler, int]:
    r"""Returns the training data (tensors as a list, or the sampler) and the steps per epoch."""
    if callable(config.data):
        if config.steps_per_epoch is None:
            raise ValueError("steps_per_epoch must be a positive integer with a sampler")
        check_positive_int(steps_per_epoch=config.steps_per_epoch)
        return config.data, config.steps_per_epoch
    tensors = _check_tensors(config.data, "data")
    check_positive_int(batch_size=config.batch_size)
    return tensors, math.ceil(tensors[0].shape[0] / config.batch_size)


def _setup(model: nn.Module, loss_fn: Callable[..., Tensor], config: _Config) -> _Run:
    r"""Places the model, joins the processes, seeds the generators and builds the
    optimizer, the schedule and the objective.

    Returns:
        The run, before its first epoch.
    """
    if config.device is not None:
        model.to(config.device)
    target = _model_device(model)
    rank, size = _processes(config.distributed)
    params = [p for p in model.parameters() if p.requires_grad]
    averaged = None if config.ema is None else [p.detach().clone() for p in params]
    seed = _shared_seed(config.seed, rank, size, target)
    gen, local_gen = _generators(seed, rank)
    opt = config.optimizer or _adam(model, config.lr, target)
    sched = _schedule(opt, config, rank, size, target)
    tensors = config.tensors
    return _Run(
        config=config,
        model=model,
        loss_fn=loss_fn,
        objective=_objective(model, loss_fn, config.compile, size, target),
        opt=opt,
        sched=sched,
        params=params,
        averaged=averaged,
        seed=seed,
        gen=gen,
        local_gen=local_gen,
        rank=rank,
        size=size,
        target=target,
        plain=size == 1 and not config.compile and config.autocast is None,
        move=tensors is None or any(t.device != target for t in tensors),
        amp=_autocast(target, config.autocast),
    )


def _processes(distributed: bool | None) -> tuple[int, int]:
    r"""Returns ``(rank, world_size)`` of the run (``(0, 1)`` unless data-parallel).

    Raises:
        ValueError: If ``distributed`` is ``True`` outside :mod:`torch.distributed`.
    """
    if distributed is None:
        distributed = init_distributed()
    rank, size = world() if distributed else (0, 1)
    if distributed and size == 1 and not (dist.is_available() and dist.is_initialized()):
        raise ValueError("distributed=True needs torch.distributed (launch with torchrun)")
    return rank, size


def _shared_seed(seed: int | None, rank: int, size: int, target: torch.device) -> int:
    r"""Returns the run's seed, the same on every process.

    Without a seed, one is drawn from the global generator (never reseeded here:
    :func:`torch.seed` would discard the user's :func:`torch.manual_seed`); with several
    processes, rank 0's seed is broadcast and the global generator of each process is
    reseeded from it and the rank.
    """
    if seed is None:
        seed = int(torch.randint(2**62, ()))
    if size > 1:
        box = torch.tensor([seed], dtype=torch.int64, device=_collective_device(target))
        dist.broadcast(box, 0)
        seed = int(box)
        torch.manual_seed(_process_seed(seed, rank))
    return seed


def _generators(seed: int, rank: int) -> tuple[torch.Generator, torch.Generator]:
    r"""Returns the generator of the global batches (the same on every process) and the
    generator a sampler hands on to the loss (one per process)."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    local_gen = torch.Generator(device="cpu")
    local_gen.manual_seed(_process_seed(seed, rank))
    return gen, local_gen


def _adam(model: nn.Module, lr: float, target: torch.device) -> torch.optim.Optimizer:
    r"""Returns the default optimizer: Adam, fused into one kernel on CUDA (the step of a
    small network is bound by kernel launches)."""
    fused = True if target.type == "cuda" else None
    return torch.optim.Adam(model.parameters(), lr=lr, fused=fused)


def _schedule(
    opt: torch.optim.Optimizer, config: _Config, rank: int, size: int, target: torch.device
) -> LRScheduler | None:
    r"""Returns the learning-rate schedule, if any (see ``schedule`` in :func:`fit`)."""
    steps = config.epochs * config.steps_per_epoch
    if config.schedule == "cosine":
        return CosineAnnealingLR(opt, T_max=steps)
    if config.schedule == "cosine-time":
        agree = (lambda t: t) if size == 1 else (lambda t: _all_sum(t, target) / size)
        return _TimedCosine(opt, steps, config.time_limit, agree)
    return None


class _TimedCosine(LRScheduler):
    r"""Cosine decay to 0 at progress :math:`p = \min(1, \max(k / K, t / T))` after
    :math:`k` of :math:`K` steps and :math:`t` of :math:`T` seconds.

    Arguments:
        optimizer: The optimizer whose learning rates decay.
        steps: The planned steps :math:`K`.
        time_limit: The planned seconds :math:`T`, counted from construction.
        agree: Maps this process's elapsed seconds to a value all processes share
            (their mean), so that every process uses the same learning rate.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        steps: int,
        time_limit: float,
        agree: Callable[[float], float],
    ):
        self.steps, self.time_limit, self.agree = steps, time_limit, agree
        self.began = time.perf_counter()
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        elapsed = self.agree(time.perf_counter() - self.began)
        progress = min(1.0, max(self.last_epoch / self.steps, elapsed / self.time_limit))
        scale = 0.5 * (1.0 + math.cos(math.pi * progress))
        return [base * scale for base in self.base_lrs]


def _objective(
    model: nn.Module,
    loss_fn: Callable[..., Tensor],
    compile: bool | str,
    size: int,
    target: torch.device,
) -> nn.Module:
    r"""Returns the loss as a module, wrapped in :class:`DistributedDataParallel` with
    several processes and compiled with ``compile``."""
    objective: nn.Module = _Objective(model, loss_fn)
    if size > 1:
        device_ids = [target.index] if target.type == "cuda" else None
        objective = DistributedDataParallel(objective, device_ids=device_ids)
    if compile:
        objective = torch.compile(objective, mode=None if compile is True else compile)
    return objective


def _autocast(
    target: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager:
    r"""Returns the context of the forward pass: autocast to ``dtype``, or nothing."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(target.type, dtype=dtype)


def _start(run: _Run) -> int:
    r"""Resumes from the checkpoint if it exists, starts the clock and keeps the current
    state as the last good one.

    Returns:
        The first epoch to run.
    """
    first = 0
    path = run.config.checkpoint
    if path is not None and os.path.exists(path):
        first = _resume(run, path)
        if run.size > 1:  # the checkpoint holds rank 0's generators: decorrelate the processes
            torch.manual_seed(_process_seed(run.seed, run.rank, first))
            run.local_gen.manual_seed(_process_seed(run.seed, run.rank, first))
    run.start = time.perf_counter()
    run.good, run.good_time = _snapshot(run.model, run.opt), time.perf_counter()
    return first


def _progress_bar(run: _Run, first: int) -> tqdm:
    r"""Returns the epochs' progress bar, shown by rank 0 only (by default, when stderr is
    a terminal)."""
    progress = run.config.progress
    show = (sys.stderr.isatty() if progress is None else progress) and run.rank == 0
    return tqdm(total=run.config.epochs, initial=first, disable=not show, desc="fit")


def _train_epoch(run: _Run, cuttable: bool = True) -> bool:
    r"""Runs the steps of one epoch and records its mean training loss.

    Returns:
        Whether the time limit cut the epoch short (checked before each step but the
        first, if ``cuttable``).
    """
    total, count, cut = 0.0, 0, False
    run.model.train()
    for batch, k_all in _batches(run):
        if cuttable and count and _out_of_time(run):  # every epoch takes a step
            cut = True
            break
        if k_all < run.size:  # too small to give every process a share (all skip it)
            continue
        value = _step(run, batch, k_all)
        if value is None:
            continue
        total += value * k_all
        count += k_all
        run.hist.steps += 1
    run.hist.train_loss.append(total / max(count, 1))
    return cut


def _batches(run: _Run) -> Iterator[tuple[list[Any], int]]:
    r"""Yields the batches of an epoch, drawn as needed.

    Returns:
        An iterator over (this process's share of the global batch, the global batch size).
    """
    if run.config.tensors is None:
        return _sampled_batches(run)
    return _shuffled_batches(run)


def _sampled_batches(run: _Run) -> Iterator[tuple[list[Any], int]]:
    r"""Yields ``steps_per_epoch`` batches drawn by the sampler from ``run.gen``."""
    for _ in range(run.config.steps_per_epoch):
        batch = list(run.config.data(run.gen))
        k_all = batch[0].shape[0]
        if run.size > 1:
            batch = [_share(t, run.rank, run.size, run.local_gen) for t in batch]
        yield batch, k_all


def _shuffled_batches(run: _Run) -> Iterator[tuple[list[Tensor], int]]:
    r"""Yields the minibatches of a random permutation of the tensors (drawn from
    ``run.gen``)."""
    tensors, batch_size = run.config.tensors, run.config.batch_size
    n = tensors[0].shape[0]
    perm = torch.randperm(n, generator=run.gen).to(tensors[0].device)
    for i in range(0, n, batch_size):
        idx = perm[i : i + batch_size]
        k_all = idx.shape[0]
        if run.size > 1:
            idx = idx.tensor_split(run.size)[run.rank]
        yield [t[idx] for t in tensors], k_all


def _step(run: _Run, batch: list[Any], k_all: int) -> float | None:
    r"""Takes one optimization step on this process's share of a global batch.

    A step whose loss or (with ``clip_grad``) gradient norm is not finite is skipped
    (see :func:`_skip`).

    Returns:
        The batch's loss (the mean over the global batch), or ``None`` if the step was
        skipped.
    """
    if run.move:
        batch = [_to(t, run.target) if isinstance(t, Tensor) else t for t in batch]
    loss, value = _forward(run, batch, k_all)
    run.opt.zero_grad(set_to_none=True)
    if not (math.isfinite(value) and _backward(run, loss)):
        _skip(run, value)
        return None
    run.bad = 0
    run.opt.step()
    if run.averaged is not None:
        with torch.no_grad():
            weight = 1.0 - run.config.ema
            torch._foreach_lerp_(run.averaged, [p.detach() for p in run.params], weight)
    if run.sched is not None:
        run.sched.step()
    return value


def _forward(run: _Run, batch: list[Any], k_all: int) -> tuple[Tensor, float]:
    r"""Evaluates the loss on this process's share of the batch.

    Returns:
        The loss to differentiate (with unequal shares, scaled so that the averaged
        gradients are those of the global batch) and the global batch's mean loss.
    """
    if run.plain:
        loss = run.loss_fn(run.model, *batch)
    else:
        with run.amp:
            loss = run.objective(*batch)
    if not isinstance(loss, Tensor):
        raise TypeError(f"loss_fn must return a scalar tensor, got {type(loss).__name__}")
    if loss.numel() != 1:
        raise ValueError(f"loss_fn must return a scalar tensor, got shape {tuple(loss.shape)}")
    if run.size == 1:
        return loss, float(loss.detach())
    k = batch[0].shape[0]
    value = _all_sum(float(loss.detach()) * k, run.target) / k_all
    if k * run.size != k_all:  # unequal shares: weight by the share's size
        loss = loss * (k * run.size / k_all)
    return loss, value


def _backward(run: _Run, loss: Tensor) -> bool:
    r"""Computes the gradients (clipped to ``clip_grad``).

    Returns:
        Whether the step can be taken (the gradient norm is finite when clipping).
    """
    loss.backward()
    if run.config.clip_grad is None:
        return True
    norm = torch.nn.utils.clip_grad_norm_(run.params, run.config.clip_grad)
    return bool(torch.isfinite(norm))


def _skip(run: _Run, value: float) -> None:
    r"""Skips a bad step: parameters and optimizer state stay as they were, or go back to
    the last good state if the parameters are no longer finite.

    Raises:
        FloatingPointError: After ``max_bad_steps`` bad steps in a row.
    """
    run.opt.zero_grad(set_to_none=True)
    run.hist.skipped_steps += 1
    run.bad += 1
    if not _finite(run.params):
        run.model.load_state_dict(run.good[0])
        run.opt.load_state_dict(run.good[1])
        run.hist.restored += 1
    if run.bad >= run.config.max_bad_steps:
        raise FloatingPointError(
            f"{run.bad} training steps in a row had a non-finite loss or gradient "
            f"(last loss {value}) at step {run.hist.steps}; lower the learning rate, "
            "set clip_grad, or check the data"
        )


def _out_of_time(run: _Run, ahead: float = 0.0) -> bool:
    r"""Whether the time limit has run out, or would within ``ahead`` seconds (on any
    process: all then stop together)."""
    if run.config.time_limit is None:
        return False
    late = time.perf_counter() - run.start + ahead > run.config.time_limit
    if run.size > 1:
        late = _all_sum(float(late), run.target) > 0
    return late


def _end_epoch(run: _Run, epoch: int, bar: tqdm, complete: bool = True) -> None:
    r"""Validates (keeping the best weights), refreshes the last good state, advances the
    progress bar, writes the checkpoint (rank 0; not for an epoch cut short, so that a
    resumed run repeats it whole) and calls ``on_epoch``."""
    if run.config.val_data is not None:
        _validate(run, epoch)
    _refresh_good(run)
    bar.update(1)
    bar.set_postfix(loss=f"{run.hist.train_loss[-1]:.3e}")
    if run.config.checkpoint is not None and run.rank == 0 and complete:
        _save_state(run, epoch)
    if run.config.on_epoch is not None:
        run.config.on_epoch(epoch, run.hist)


def _validate(run: _Run, epoch: int) -> None:
    r"""Records the validation loss and keeps the weights if it is the lowest so far."""
    run.model.eval()
    with torch.no_grad(), run.amp:
        val_data = [_to(t, run.target) for t in run.config.val_data]
        val = float(run.loss_fn(run.model, *val_data))
    run.hist.val_loss.append(val)
    if val < run.hist.best_val:
        run.hist.best_val, run.hist.best_epoch = val, epoch
        run.best_state = copy.deepcopy(run.model.state_dict())


def _refresh_good(run: _Run) -> None:
    r"""Takes the current state as the last good one if the parameters are finite, at
    most once a second (a copy per short epoch would cost more than the epoch)."""
    if time.perf_counter() - run.good_time > 1.0 and _finite(run.params):
        run.good, run.good_time = _snapshot(run.model, run.opt), time.perf_counter()


def _finish(run: _Run) -> History:
    r"""Loads the best (validation) or averaged (``ema``) weights into the model and puts
    it in evaluation mode.

    Returns:
        The run's history, with its duration.

    Raises:
        FloatingPointError: If every step was skipped (nothing was fitted).
    """
    if run.hist.steps == 0 and run.hist.skipped_steps > 0:
        raise FloatingPointError(
            f"loss_fn was NaN or infinite at every step ({run.hist.skipped_steps} skipped): "
            "nothing was fitted; check the loss and the data"
        )
    if run.best_state is not None:
        run.model.load_state_dict(run.best_state)
    if run.averaged is not None:
        with torch.no_grad():
            for p, a in zip(run.params, run.averaged, strict=True):
                p.copy_(a)
    run.model.eval()
    run.hist.seconds = time.perf_counter() - run.start
    return run.hist


_FORMAT = "otgrad.fit/2"


def _save_state(run: _Run, epoch: int) -> None:
    r"""Writes the whole training state after ``epoch`` to the checkpoint file (atomically:
    an interrupted save leaves the previous checkpoint)."""
    state = {
        "format": _FORMAT,
        "epoch": epoch,
        "model": run.model.state_dict(),
        "optimizer": run.opt.state_dict(),
        "optimizer_class": _class_name(run.opt),
        "scheduler": None if run.sched is None else run.sched.state_dict(),
        "generator": run.gen.get_state(),
        "local_generator": run.local_gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "averaged": run.averaged,
        "best_state": run.best_state,
        "history": asdict(run.hist),
    }
    path = run.config.checkpoint
    tmp = f"{os.fspath(path)}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def _resume(run: _Run, path: str | os.PathLike) -> int:
    r"""Loads the training state of a checkpoint into ``run``.

    Returns:
        The epoch after the checkpoint's.

    Raises:
        ValueError: If the file is not a checkpoint of :func:`fit`, or does not match the
            run (schedule, ``ema``, model or optimizer).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError("not a training checkpoint of otgrad.train.fit")
        _load_state(run, state)
    except (KeyError, TypeError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise ValueError(f"cannot resume from {os.fspath(path)!r}: {e}") from e
    return int(state["epoch"]) + 1


def _load_state(run: _Run, state: dict[str, Any]) -> None:
    r"""Loads a checkpoint's state (see :func:`_save_state`) into ``run``."""
    run.model.load_state_dict(state["model"])
    if state["optimizer_class"] != _class_name(run.opt):
        raise ValueError(
            f"the optimizer ({_class_name(run.opt)}) differs from the checkpoint's "
            f"({state['optimizer_class']})"
        )
    run.opt.load_state_dict(state["optimizer"])
    if (run.sched is None) != (state["scheduler"] is None):
        raise ValueError("the learning-rate schedule differs from the checkpoint's")
    if run.sched is not None:
        run.sched.load_state_dict(state["scheduler"])
    run.gen.set_state(state["generator"])
    if "local_generator" in state:
        run.local_gen.set_state(state["local_generator"])
    torch.set_rng_state(state["torch_rng"])
    if (run.averaged is None) != (state["averaged"] is None):
        raise ValueError("ema differs from the checkpoint's")
    if run.averaged is not None:
        with torch.no_grad():
            for a, b in zip(run.averaged, state["averaged"], strict=True):
                a.copy_(b)
    for k, v in state["history"].items():
        setattr(run.hist, k, v)
    run.best_state = state["best_state"]


def _class_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _model_device(model: nn.Module) -> torch.device:
    r"""The device of the model's first parameter (the CPU if it has none)."""
    p = next(model.parameters(), None)
    return torch.device("cpu") if p is None else p.device


def _finite(params: list[Tensor]) -> bool:
    r"""Whether all the parameters are finite."""
    return all(bool(torch.isfinite(p).all()) for p in params)


def _share(t: Any, rank: int, size: int, local_gen: torch.Generator) -> Any:
    r"""This process's share of a sampler's output: its part of a tensor, its own
    generator in place of the run's."""
    if isinstance(t, Tensor):
        return t.tensor_split(size)[rank]
    return local_gen if isinstance(t, torch.Generator) else t


def _process_seed(seed: int, rank: int, epoch: int = 0) -> int:
    r"""A seed per (run, process, resumed epoch)."""
    return (seed * 1_000_003 + epoch * 7919 + rank + 1) % 2**63


def _snapshot(model: nn.Module, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    r"""Copies of the model's and the optimizer's states."""
    return copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())


def _to(t: Tensor, device: torch.device) -> Tensor:
    r"""``t`` on ``device`` (copied without blocking if it lies elsewhere)."""
    return t if t.device == device else t.to(device, non_blocking=True)


def _collective_device(device: torch.device) -> torch.device:
    r"""Where collectives' tensors go: NCCL reduces CUDA tensors only, gloo CPU tensors."""
    return device if dist.get_backend() == "nccl" else torch.device("cpu")


def _all_sum(value: float, device: torch.device) -> float:
    r"""The sum of ``value`` over the processes."""
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
