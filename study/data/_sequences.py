"""Variable-length numeric sequences as padded tensors plus lengths, scaled on train only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from sklearn.model_selection import train_test_split

from study.errors import ConfigError


@dataclass
class SequenceSet:
    """``x[i, :lengths[i]]`` is sequence i (zero padding after); ``y[i]`` its class index."""

    x: torch.Tensor
    lengths: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> SequenceSet:
        # Lengths stay on the CPU: pack_padded_sequence wants them there.
        return SequenceSet(self.x.to(device), self.lengths, self.y.to(device))


@dataclass
class SequenceData:
    name: str
    train: SequenceSet
    val: SequenceSet
    test: SequenceSet
    n_features: int
    classes: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def _pad(seqs: Sequence[np.ndarray], mean: np.ndarray, std: np.ndarray) -> SequenceSet:
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    x = np.zeros((len(seqs), int(lengths.max()), seqs[0].shape[1]), dtype=np.float32)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = (s - mean) / std
    return SequenceSet(torch.from_numpy(x), torch.from_numpy(lengths), torch.empty(0))


def build_splits(
    name: str,
    train_seqs: list[np.ndarray],
    train_labels: np.ndarray,
    test_seqs: list[np.ndarray],
    test_labels: np.ndarray,
    *,
    val_fraction: float,
    seed: int,
) -> SequenceData:
    """Carve a stratified validation split out of train and scale with train statistics only."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction={val_fraction} must be between 0 and 1; e.g. 0.2")
    classes = sorted(set(train_labels.tolist()))
    index = {c: i for i, c in enumerate(classes)}
    y_train = np.array([index[c] for c in train_labels])
    unseen = sorted(set(test_labels.tolist()) - set(classes))
    if unseen:
        raise ConfigError(f"data {name}: test labels {unseen} never occur in train")
    y_test = np.array([index[c] for c in test_labels])
    tr, va = train_test_split(
        np.arange(len(train_seqs)), test_size=val_fraction, stratify=y_train, random_state=seed
    )
    fit = np.concatenate([train_seqs[i] for i in tr])
    mean, std = fit.mean(axis=0), fit.std(axis=0) + 1e-8

    def subset(seqs: list[np.ndarray], labels: np.ndarray) -> SequenceSet:
        s = _pad(seqs, mean, std)
        return SequenceSet(s.x, s.lengths, torch.from_numpy(labels.astype(np.int64)))

    return SequenceData(
        name=name,
        train=subset([train_seqs[i] for i in tr], y_train[tr]),
        val=subset([train_seqs[i] for i in va], y_train[va]),
        test=subset(test_seqs, y_test),
        n_features=int(fit.shape[1]),
        classes=[str(c) for c in classes],
    )


def load_data(cfg: Any) -> SequenceData:
    """Build the configured dataset (its ``_target_`` is a loader function)."""
    data: SequenceData = instantiate(cfg)
    return data
