"""Models (``conf/model/``): recurrent classifiers over packed variable-length sequences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

_CELLS: dict[str, type[nn.RNN] | type[nn.LSTM] | type[nn.GRU]] = {
    "rnn": nn.RNN,
    "lstm": nn.LSTM,
    "gru": nn.GRU,
}

#: Search-space parameters that shape the network (the rest drive the optimizer).
ARCHITECTURE = ("cell", "hidden_size", "num_layers", "dropout", "input_dropout", "bidirectional")


@dataclass
class ModelConfig:
    _target_: str = "study.models.SequenceClassifier"
    #: The cell used unless the search space lists several (``search_space.cell.choices``).
    cell: str = "lstm"


class SequenceClassifier(nn.Module):
    """A stacked, optionally bidirectional RNN/LSTM/GRU whose last hidden state feeds a linear head.

    Sequences are packed, so padding never reaches the recurrence or the loss.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        self.directions = 2 if bidirectional else 1
        self.input_dropout = nn.Dropout(input_dropout)
        self.rnn = _CELLS[cell](
            n_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.head = nn.Linear(hidden_size * self.directions, n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(
            self.input_dropout(x), lengths, batch_first=True, enforce_sorted=False
        )
        _, hidden = self.rnn(packed)
        h = hidden[0] if isinstance(hidden, tuple) else hidden  # LSTM returns (h, c)
        last = h[-self.directions :].transpose(0, 1).reshape(x.shape[0], -1)
        out: torch.Tensor = self.head(last)
        return out


def build_model(cfg: Any, n_features: int, n_classes: int, params: dict[str, Any]) -> nn.Module:
    """Instantiate the configured model with one trial's architecture parameters."""
    arch = {k: params[k] for k in ARCHITECTURE if k in params}
    model: nn.Module = instantiate(cfg, n_features=n_features, n_classes=n_classes, **arch)
    return model
