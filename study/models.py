"""Models (``conf/model/``): recurrent networks over packed variable-length sequences.

One network serves every task: numeric steps (or token embeddings) feed a stacked, optionally
bidirectional RNN/LSTM/GRU; its last hidden state (or the max or mean of its outputs over the
steps, ``pooling``) feeds a linear head: class scores for classification, the flattened horizon
for forecasting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

#: The recurrent cells a trial can pick (``search_space.cell``).
CELLS: dict[str, type[nn.RNN] | type[nn.LSTM] | type[nn.GRU]] = {
    "rnn": nn.RNN,
    "lstm": nn.LSTM,
    "gru": nn.GRU,
}

#: Search-space parameters that shape the network (the rest drive the optimizer or the data).
ARCHITECTURE = (
    "cell",
    "hidden_size",
    "num_layers",
    "dropout",
    "input_dropout",
    "bidirectional",
    "embedding_dim",
    "pooling",
)

#: How the recurrent outputs become one vector (``search_space.pooling``): the last state of each
#: direction, or the element-wise max or mean over the (unpadded) steps.
POOLINGS = ("last", "max", "mean")


@dataclass
class ModelConfig:
    _target_: str = "study.models.SequenceModel"
    #: The cell used unless the search space lists several (``search_space.cell.choices``).
    cell: str = "lstm"


class SequenceModel(nn.Module):
    """A stacked, optionally bidirectional RNN/LSTM/GRU with a linear head on its last state.

    ``vocab_size > 0`` makes the input token ids, embedded first (``pretrained`` vectors, if
    given, initialise the embedding). Sequences are packed, so padding never reaches the
    recurrence or the loss.
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        bidirectional: bool = False,
        vocab_size: int = 0,
        embedding_dim: int = 64,
        pretrained: torch.Tensor | None = None,
        pooling: str = "last",
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} is not one of {', '.join(POOLINGS)}")
        self.pooling = pooling
        self.directions = 2 if bidirectional else 1
        self.embedding: nn.Embedding | None = None
        if vocab_size:
            if pretrained is not None:
                embedding_dim = int(pretrained.shape[1])
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
            if pretrained is not None:
                self.embedding.weight.data.copy_(pretrained)
            n_features = embedding_dim
        self.input_dropout = nn.Dropout(input_dropout)
        self.rnn = CELLS[cell](
            n_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.head = nn.Linear(hidden_size * self.directions, n_outputs)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = self.embedding(x) if self.embedding is not None else x
        packed = pack_padded_sequence(
            self.input_dropout(steps), lengths, batch_first=True, enforce_sorted=False
        )
        outputs, hidden = self.rnn(packed)
        if self.pooling == "last":
            h = hidden[0] if isinstance(hidden, tuple) else hidden  # LSTM returns (h, c)
            pooled = h[-self.directions :].transpose(0, 1).reshape(x.shape[0], -1)
        else:
            steps_out, _ = pad_packed_sequence(outputs, batch_first=True)
            valid = torch.arange(steps_out.shape[1]) < lengths.unsqueeze(1)  # (N, T) on the CPU
            valid = valid.to(steps_out.device).unsqueeze(2)
            if self.pooling == "max":
                pooled = steps_out.masked_fill(~valid, float("-inf")).max(dim=1).values
            else:
                total = (steps_out * valid).sum(dim=1)
                pooled = total / lengths.to(steps_out.device).unsqueeze(1)
        out: torch.Tensor = self.head(pooled)
        return out


def architecture(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters that shape the network (what a saved model records beside its weights)."""
    return {k: params[k] for k in ARCHITECTURE if k in params}


def build_model(
    cfg: ModelConfig,
    dims: dict[str, int],
    params: dict[str, Any],
    pretrained: torch.Tensor | None = None,
) -> nn.Module:
    """Instantiate the configured model for the data's shape and one trial's parameters."""
    arch = architecture(params)
    arch.update(dims)  # the data's sizes win (a pretrained embedding fixes embedding_dim)
    model: nn.Module = instantiate(cfg, **arch, pretrained=pretrained)
    return model
