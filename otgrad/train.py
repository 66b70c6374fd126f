r"""The training loop shared by every estimator and study.

:func:`fit` runs minibatch first-order optimization, either over tensors held in memory
(shuffled epochs) or over a sampler that draws a fresh batch at every step, with an
optional validation set (keeping the best weights, as in the paper's protocol), an
optional cosine learning-rate schedule, a wall-clock budget, and a tqdm progress bar
when stderr is a terminal. :func:`refine` polishes a trained model with full-batch
L-BFGS (a second-order method: for networks of a few hundred parameters it reaches
far lower losses than Adam in seconds).
"""

from __future__ import annotations

import copy
import math
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["fit", "refine", "History"]

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


def _check_tensors(data: Sequence[Tensor], name: str) -> list[Tensor]:
    data = list(data)
    if not data:
        raise ValueError(f"{name} must hold at least one tensor")
    n = data[0].shape[0]
    if n == 0 or any(t.shape[0] != n for t in data):
        raise ValueError(f"{name} tensors must be non-empty and share their first dimension")
    return data


_FORMAT = "otgrad.fit/1"


def _save_state(path, epoch, model, opt, sched, gen, averaged, best_state, hist) -> None:
    state = {
        "format": _FORMAT,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": None if sched is None else sched.state_dict(),
        "generator": gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "averaged": averaged,
        "best_state": best_state,
        "history": asdict(hist),
    }
    tmp = f"{os.fspath(path)}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: an interrupted save leaves the previous checkpoint


def _resume(path, model, opt, sched, gen, averaged, hist) -> tuple[int, dict | None]:
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
) -> History:
    r"""Trains ``model`` by minibatch Adam on ``loss_fn(model, *batch)``.

    Arguments:
        model: The module to train (its parameters are updated in place).
        loss_fn: ``(model, *tensors) -> scalar loss``.
        data: Tensors sharing their first dimension (samples), shuffled into minibatches
            of ``batch_size`` each epoch; or a sampler ``generator -> tensors`` that
            draws a fresh batch at each of the ``steps_per_epoch`` steps of an epoch.
        epochs: The number of epochs (validation happens after each).
        batch_size: The minibatch size (for tensors).
        steps_per_epoch: The steps per epoch (required with a sampler).
        lr: The learning rate of the default Adam optimizer.
        schedule: ``None`` (constant) or ``"cosine"`` (decay to 0 over all steps).
        val_data: Validation tensors; when given, the weights with the lowest validation
            loss (evaluated after each epoch) are restored at the end.
        seed: Seeds the shuffling or the sampler (a private ``torch.Generator``).
        time_limit: Stops after this many seconds (checked after each step).
        optimizer: An optimizer to use instead of Adam.
        progress: Show a progress bar (default: when stderr is a terminal).
        ema: A decay in :math:`(0, 1)`: keep an exponential moving average of the
            parameters (updated after every step) and load it into ``model`` at the end
            (the standard for score models). Not combined with ``val_data``.
        on_epoch: Called as ``on_epoch(epoch, history)`` after each epoch (e.g. to save a
            checkpoint).
        clip_grad: Clip the gradients' global norm to this value before each step.
        max_bad_steps: A step whose loss (or, with ``clip_grad``, gradient norm) is NaN or
            infinite is skipped, leaving the parameters and the optimizer's state as they
            were (the last good state); this many in a row raise a ``FloatingPointError``.
        checkpoint: A file holding the whole training state (weights, optimizer, schedule,
            random generators, weight average, best weights, history), written after every
            epoch. If it exists when ``fit`` starts, training resumes after its last epoch;
            on CPU the resumed run is bit-identical to an uninterrupted one. Loaded with
            ``torch.load(weights_only=True)``: it never executes code.

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
    params = [p for p in model.parameters() if p.requires_grad]
    averaged = [p.detach().clone() for p in params] if ema is not None else None
    gen = torch.Generator(device="cpu")
    # without a seed, draw one from the global generator (never reseed it: torch.seed()
    # would discard the user's torch.manual_seed)
    gen.manual_seed(seed if seed is not None else int(torch.randint(2**62, ())))
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    sched = None
    if schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)

    def batches() -> Iterator[Sequence[Tensor]]:
        if tensors is None:
            for _ in range(steps_per_epoch):
                yield data(gen)
        else:
            perm = torch.randperm(n, generator=gen).to(tensors[0].device)
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                yield [t[idx] for t in tensors]

    show = sys.stderr.isatty() if progress is None else progress
    hist = History()
    best_state = None
    first = 0
    if checkpoint is not None and os.path.exists(checkpoint):
        first, best_state = _resume(checkpoint, model, opt, sched, gen, averaged, hist)
    start = time.perf_counter()
    bar = tqdm(total=epochs, initial=first, disable=not show, desc="fit")
    stop, bad = False, 0
    for epoch in range(first, epochs):
        total, count = 0.0, 0
        model.train()
        for batch in batches():
            loss = loss_fn(model, *batch)
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
            k = batch[0].shape[0]
            total += value * k
            count += k
            hist.steps += 1
            if time_limit is not None and time.perf_counter() - start > time_limit:
                stop = True
                break
        hist.train_loss.append(total / max(count, 1))
        if val_data is not None:
            model.eval()
            with torch.no_grad():
                val = float(loss_fn(model, *val_data))
            hist.val_loss.append(val)
            if val < hist.best_val:
                hist.best_val, hist.best_epoch = val, epoch
                best_state = copy.deepcopy(model.state_dict())
        bar.update(1)
        bar.set_postfix(loss=f"{hist.train_loss[-1]:.3e}")
        if checkpoint is not None:
            _save_state(checkpoint, epoch, model, opt, sched, gen, averaged, best_state, hist)
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
