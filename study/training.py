"""One epoch of training and one evaluation pass; no host-device sync inside an epoch.

The loss and the metrics are the data's (:class:`study.data.SequenceData`): cross-entropy with
accuracy and macro-F1 for classification, mean squared error with RMSE/MAE/MAPE for forecasting.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import nn

from study.data import CLASSIFICATION, SequenceData, SequenceSet


def build_optimizer(
    name: str, params: Iterable[torch.Tensor], lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """Adam and RMSprop apply L2 through the gradient; AdamW decouples weight decay."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay
        )
    raise ValueError(f"unknown optimizer {name!r}")


def batches(
    data: SequenceSet, batch_size: int, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Shuffled when a generator is given; each batch is trimmed to its longest sequence."""
    n = len(data)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
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
def evaluate(
    model: nn.Module, data: SequenceData, split: SequenceSet, batch_size: int = 1024
) -> dict[str, float]:
    """The loss and the task's metrics (accuracy and F1, or RMSE, MAE and MAPE) on a split."""
    model.eval()
    outputs = torch.cat([model(x, lengths) for x, lengths, _ in batches(split, batch_size)])
    return {"loss": float(data.loss(outputs, split.y).item()), **data.score(outputs, split)}
