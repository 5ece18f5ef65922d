"""One epoch of training and one evaluation pass; no host-device sync inside an epoch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from study.data import SequenceSet


@dataclass
class Scores:
    loss: float
    accuracy: float
    f1: float


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
    data: SequenceSet,
    batch_size: int,
    clip_norm: float,
    generator: torch.Generator,
) -> tuple[float, float]:
    """Train once over ``data``; returns (mean loss, accuracy) of the training pass itself."""
    model.train()
    device = data.x.device
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for x, lengths, y in batches(data, batch_size, generator):
        optimizer.zero_grad(set_to_none=True)
        logits = model(x, lengths)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        # Accumulate on the device: one host sync per epoch, not per step.
        total_loss += loss.detach() * y.shape[0]
        correct += (logits.detach().argmax(1) == y).sum()
    n = len(data)
    return float(total_loss.item()) / n, float(correct.item()) / n


def _macro_f1(pred: torch.Tensor, y: torch.Tensor, n_classes: int) -> float:
    confusion = torch.bincount(y * n_classes + pred, minlength=n_classes * n_classes)
    confusion = confusion.reshape(n_classes, n_classes).double()
    tp = confusion.diag()
    precision = tp / confusion.sum(0).clamp(min=1)
    recall = tp / confusion.sum(1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    present = confusion.sum(1) > 0  # classes absent from y do not count
    return float(f1[present].mean().item())


@torch.no_grad()
def evaluate(model: nn.Module, data: SequenceSet, n_classes: int, batch_size: int = 1024) -> Scores:
    model.eval()
    losses, preds = [], []
    for x, lengths, y in batches(data, batch_size):
        logits = model(x, lengths)
        losses.append(F.cross_entropy(logits, y, reduction="sum"))
        preds.append(logits.argmax(1))
    pred = torch.cat(preds)
    return Scores(
        loss=float(torch.stack(losses).sum().item()) / len(data),
        accuracy=float((pred == data.y).double().mean().item()),
        f1=_macro_f1(pred, data.y, n_classes),
    )
