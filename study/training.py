"""One epoch of training and one evaluation pass; no host-device sync inside an epoch.

The loss and the metrics are the data's (:class:`study.data.SequenceData`): cross-entropy with
accuracy and macro-F1 for classification, mean squared error with RMSE/MAE/MAPE for forecasting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from study.data import CLASSIFICATION, SequenceData, SequenceSet
from study.model_options import LR_SCHEDULES, OPTIMIZER_NAMES

#: The optimizers a trial can pick (``search_space.optimizer``), each built from the parameters,
#: the learning rate and the weight decay. Adam and RMSprop apply L2 through the gradient; AdamW
#: decouples weight decay; SGD uses Nesterov momentum 0.9. Adam, AdamW and SGD use PyTorch's
#: fused kernels (one update for all parameters, on the CPU as on CUDA) instead of a loop over
#: parameter tensors.
OPTIMIZERS: dict[str, Callable[[Iterable[torch.Tensor], float, float], torch.optim.Optimizer]] = {
    "adam": lambda p, lr, wd: torch.optim.Adam(p, lr=lr, weight_decay=wd, fused=True),
    "adamw": lambda p, lr, wd: torch.optim.AdamW(p, lr=lr, weight_decay=wd, fused=True),
    "rmsprop": lambda p, lr, wd: torch.optim.RMSprop(p, lr=lr, weight_decay=wd),
    "sgd": lambda p, lr, wd: torch.optim.SGD(
        p, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd, fused=True
    ),
}
assert tuple(OPTIMIZERS) == OPTIMIZER_NAMES, "the search space offers what is built here"


def build_optimizer(
    name: str, params: Iterable[torch.Tensor], lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """One of :data:`OPTIMIZERS` (the search space refuses any other name)."""
    return OPTIMIZERS[name](params, lr, weight_decay)


def schedule_lr(
    optimizer: torch.optim.Optimizer, params: dict[str, Any], epoch: int, horizon: int
) -> float:
    """Set the learning rate of ``epoch`` (counted from 0) of a run of ``horizon`` epochs, and
    return it: ``lr`` throughout (``lr_schedule`` constant, and trials from before the schedule
    existed), or cosine annealing without restarts (Loshchilov & Hutter 2017),
    ``lr * (1 + cos(pi * epoch / horizon)) / 2``: the full rate at first, near none by the last
    epoch. A function of the epoch alone, so a resumed trial and a final model retrained for
    fewer epochs follow the trial's own rates."""
    lr = float(params["lr"])
    schedule = params.get("lr_schedule", "constant")
    assert schedule in LR_SCHEDULES, schedule
    if schedule == "cosine":
        lr *= (1.0 + math.cos(math.pi * min(epoch, horizon) / horizon)) / 2.0
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


#: Training batches come from pools of this many batches, sorted by length within each pool: a
#: batch holds sequences of similar length, so the recurrence runs fewer steps per epoch, while
#: which sequences share a pool and the order of the batches stay random.
POOL_BATCHES = 8


def batches(
    data: SequenceSet, batch_size: int, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """In order, or, given a generator, shuffled and bucketed by length (see ``POOL_BATCHES``);
    each batch is trimmed to its longest sequence."""
    n = len(data)
    if generator is None:
        groups = list(torch.arange(n).split(batch_size))
    else:
        order = torch.randperm(n, generator=generator)
        groups = []
        for pool in order.split(batch_size * POOL_BATCHES):
            by_length = pool[torch.argsort(data.lengths[pool], stable=True)]
            groups.extend(by_length.split(batch_size))
        groups = [groups[i] for i in torch.randperm(len(groups), generator=generator)]
    for idx in groups:
        lengths = data.lengths[idx]
        longest = int(lengths.max())
        dev_idx = idx.to(data.x.device)
        yield data.x[dev_idx, :longest], lengths, data.y[dev_idx]


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: SequenceData,
    batch_size: int,
    clip_norm: float,
    generator: torch.Generator,
) -> dict[str, float]:
    """Train once over the training split; the loss (and accuracy) of the training pass itself."""
    model.train()
    device = data.train.y.device
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    classify = data.task == CLASSIFICATION
    for x, lengths, y in batches(data.train, batch_size, generator):
        optimizer.zero_grad(set_to_none=True)
        outputs = model(x, lengths)
        loss = data.loss(outputs, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        # Accumulate on the device: one host sync per epoch, not per step.
        total_loss += loss.detach() * y.shape[0]
        if classify:
            correct += (outputs.detach().argmax(1) == y).sum()
    n = len(data.train)
    scores = {"loss": float(total_loss.item()) / n}
    if classify:
        scores["accuracy"] = float(correct.item()) / n
    return scores


@torch.no_grad()
def predict(model: nn.Module, split: SequenceSet, batch_size: int = 1024) -> torch.Tensor:
    """The model's outputs on a split, in evaluation mode."""
    model.eval()
    return torch.cat([model(x, lengths) for x, lengths, _ in batches(split, batch_size)])


def evaluate(
    model: nn.Module, data: SequenceData, split: SequenceSet, batch_size: int = 1024
) -> dict[str, float]:
    """The loss and the task's metrics (accuracy and F1, or RMSE, MAE and MAPE) on a split."""
    outputs = predict(model, split, batch_size)
    return {"loss": data.eval_loss(outputs, split), **data.score(outputs, split)}
