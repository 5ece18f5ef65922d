"""Models (``conf/model/``): recurrent networks over packed variable-length sequences.

One network serves every task: numeric steps (or token embeddings) feed a stacked, optionally
bidirectional RNN/LSTM/GRU; its last hidden state (or the max or mean of its outputs over the
steps, ``pooling``) feeds a linear head: class scores for classification, the flattened horizon
for forecasting.

Long sequences first pass a strided convolutional stem (``stem``): blocks of Conv1d, batch
normalisation and ReLU, each dividing the length by 4 (or 2), until the recurrence sees at most
``stem_steps`` steps. A recurrence cannot carry a gradient across a thousand steps, and runs
them one after another; strided convolutions in front of recurrent layers are how speech
recognisers shorten their input (Deep Speech 2, Amodei et al. 2016) and how convolutional-
recurrent classifiers of sensor series work (DeepConvLSTM, Ordóñez & Roggen 2016); LSTM-FCN
(Karim et al. 2017) shows convolutional features beside an LSTM winning on the UCR archive.

A fully convolutional branch may read the same steps beside the recurrence (``fcn``): LSTM-FCN
(Karim et al. 2017), whose convolutions find short local shapes wherever they occur and whose
published accuracies on the UCR archive are above a recurrence's alone; its features join the
recurrence's before the head.

Text may give the recurrence each token's naive Bayes log-count ratios beside its embedding
(``nb_ratios``): how much more often the texts of each class hold the word than the other texts
do, counted on the split the model trains on (Wang & Manning 2012, whose NBSVM weighs bag-of-words
features by these ratios and is the strong linear baseline on sentence polarity). A learned
embedding starts from nothing on a few thousand sentences; the ratios hand it the evidence a
linear model already reads, and the recurrence adds what a bag of words cannot: order, negation,
contrast.

Forecasts may add a linear map of the input window to the head's output (``highway``): the
autoregressive component of LSTNet (Lai et al. 2018), which keeps the network's forecast
anchored to the scale of its input where a small series gives a recurrence too little to learn
from. On a classical base (``base``: the targets are what the ARIMA model's forecast misses) the
head and the highway start at zero, so the untrained network forecasts the classical model's
forecast and learns only a correction to it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from hydra.utils import instantiate
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from study.data import SequenceSet
from study.model_options import ARCHITECTURE, CELL_NAMES, POOLINGS, ModelConfig

#: The recurrent cell of each name a trial can pick (``search_space.cell``).
CELLS: dict[str, type[nn.RNN] | type[nn.LSTM] | type[nn.GRU]] = dict(
    zip(CELL_NAMES, (nn.RNN, nn.LSTM, nn.GRU), strict=True)
)


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
        stem: str = "none",
        stem_reduction: int = 1,
        highway: bool = False,
        input_length: int = 0,
        fcn: bool = False,
        nb_ratios: bool = False,
        ngrams: bool = False,
        base: str = "none",
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} is not one of {', '.join(POOLINGS)}")
        if stem not in ("none", "conv"):
            raise ValueError(f"stem={stem!r}: resolve auto first (resolve_stem)")
        self.pooling = pooling
        self.directions = 2 if bidirectional else 1
        self.embedding: nn.Embedding | None = None
        n_inputs = n_features
        if vocab_size:
            if pretrained is not None:
                embedding_dim = int(pretrained.shape[1])
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
            if pretrained is not None:
                self.embedding.weight.data.copy_(pretrained)
            n_features = embedding_dim
        # Naive Bayes log-count ratios, one per class, set from the training split (fit_ratios).
        if nb_ratios and not vocab_size:
            raise ValueError("nb_ratios needs token inputs (text data)")
        self.ratios: torch.Tensor | None
        self.register_buffer("ratios", torch.zeros(vocab_size, n_outputs) if nb_ratios else None)
        if nb_ratios:
            n_features += n_outputs
        self.input_dropout = nn.Dropout(input_dropout)
        n_features_in = n_features
        self.stem: ConvStem | None = None
        if stem == "conv":
            self.stem = ConvStem(n_features, hidden_size, stem_reduction)
            n_features = hidden_size
        self.rnn = CELLS[cell](
            n_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        # LSTM-FCN: a fully convolutional branch reads the same steps beside the recurrence.
        self.fcn: FCNBranch | None = FCNBranch(n_features_in) if fcn else None
        width = hidden_size * self.directions + (FCNBranch.WIDTH if fcn else 0)
        self.head = nn.Linear(width, n_outputs)
        # Text: a linear model of the words and word pairs added to the head's output.
        self.ngrams: NgramLinear | None = None
        if ngrams:
            if not vocab_size:
                raise ValueError("ngrams needs token inputs (text data)")
            self.ngrams = NgramLinear(vocab_size, n_outputs)
        # Forecasting: a linear map of the whole input window added to the head's output.
        self.highway: nn.Linear | None = None
        if highway:
            if input_length < 1 or vocab_size:
                raise ValueError("highway needs numeric inputs of a fixed input_length")
            self.highway = nn.Linear(input_length * n_inputs, n_outputs)
        if base != "none":  # a correction of the classical forecast starts at none
            for layer in (self.head, self.highway):
                if layer is not None:
                    nn.init.zeros_(layer.weight)
                    nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = self.embedding(x) if self.embedding is not None else x
        if self.ratios is not None:
            steps = torch.cat([steps, nn.functional.embedding(x, self.ratios)], dim=2)
        steps = self.input_dropout(steps)
        branch = self.fcn(steps, lengths) if self.fcn is not None else None
        if self.stem is not None:  # (N, T, F) -> (N, ceil(T / reduction), hidden)
            steps, lengths = self.stem(steps, lengths)
        packed = pack_padded_sequence(steps, lengths, batch_first=True, enforce_sorted=False)
        outputs, hidden = self.rnn(packed)
        if self.pooling == "last":
            h = hidden[0] if isinstance(hidden, tuple) else hidden  # LSTM returns (h, c)
            pooled = h[-self.directions :].transpose(0, 1).reshape(x.shape[0], -1)
        else:
            steps_out, _ = pad_packed_sequence(outputs, batch_first=True)
            valid = valid_steps(lengths, steps_out.shape[1], steps_out.device).unsqueeze(2)
            if self.pooling == "max":
                pooled = steps_out.masked_fill(~valid, float("-inf")).max(dim=1).values
            else:
                total = (steps_out * valid).sum(dim=1)
                pooled = total / lengths.to(steps_out.device).unsqueeze(1)
        if branch is not None:
            pooled = torch.cat([pooled, branch], dim=1)
        out: torch.Tensor = self.head(pooled)
        if self.ngrams is not None:
            out = out + self.ngrams(x, lengths)
        if self.highway is not None:
            out = out + self.highway(x.flatten(1))
        return out


def fit_ratios(model: nn.Module, train: SequenceSet) -> None:
    """Set a model's naive Bayes ratios (``nb_ratios``) from the split it trains on; other
    models are left as they are."""
    ratios = getattr(model, "ratios", None)
    if isinstance(ratios, torch.Tensor):
        ratios.copy_(nb_ratios(train, *ratios.shape))


def nb_ratios(train: SequenceSet, vocab_size: int, n_classes: int) -> torch.Tensor:
    """(vocab_size, n_classes): for each token and class, the log of the share of the class's
    texts that hold the token over the share of the other texts that do, each count plus one
    (Wang & Manning 2012, one class against the rest); 0 for padding and unknown words."""
    x, y = train.x, train.y
    valid = valid_steps(train.lengths, x.shape[1], x.device)
    text = torch.arange(x.shape[0], device=x.device).unsqueeze(1).expand_as(x)[valid]
    pairs = torch.unique(text * vocab_size + x[valid])  # each token once per text
    text, token = pairs // vocab_size, pairs % vocab_size
    holding = torch.zeros(n_classes, vocab_size, device=x.device)
    holding.index_put_(
        (y[text], token), torch.ones_like(token, dtype=holding.dtype), accumulate=True
    )

    def log_shares(counts: torch.Tensor) -> torch.Tensor:  # each class's counts, plus one
        smoothed = 1 + counts
        return (smoothed / smoothed.sum(1, keepdim=True)).log()

    ratios = log_shares(holding) - log_shares(holding.sum(0) - holding)
    ratios[:, :2] = 0.0  # padding and unknown words carry no evidence
    return ratios.T.contiguous()


def valid_steps(lengths: torch.Tensor, steps: int, device: torch.device) -> torch.Tensor:
    """(N, steps) booleans on ``device``: which of the padded steps lie inside each sequence
    (``lengths`` stays on the CPU, as packing wants it)."""
    return (torch.arange(steps) < lengths.unsqueeze(1)).to(device)


class NgramLinear(nn.Module):
    """A linear model of each text's words and word pairs (the pairs hashed into
    :attr:`PAIR_BUCKETS` buckets beside the vocabulary), whose scores are added to the network's:
    the bag-of-n-grams linear classifier that is the strong baseline on short texts (Wang &
    Manning 2012; fastText, Joulin et al. 2017), trained jointly with the recurrence as wide &
    deep models are (Cheng et al. 2016). It starts at zero, so it adds only what it learns."""

    PAIR_BUCKETS = 2**18

    def __init__(self, vocab_size: int, n_outputs: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.weights = nn.EmbeddingBag(
            vocab_size + self.PAIR_BUCKETS, n_outputs, mode="sum", padding_idx=0
        )
        nn.init.zeros_(self.weights.weight)

    def ids(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(N, 2T - 1): each text's word ids, then its word pairs' buckets; 0 (padding) past
        its length."""
        valid = valid_steps(lengths, x.shape[1], x.device)
        words = x.masked_fill(~valid, 0)
        pairs = (x[:, :-1] * 1_000_003 + x[:, 1:]) % self.PAIR_BUCKETS + self.vocab_size
        return torch.cat([words, pairs.masked_fill(~valid[:, 1:], 0)], dim=1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.weights(self.ids(x, lengths))
        return out


class ConvStem(nn.Module):
    """Blocks of Conv1d, batch normalisation and ReLU that divide the length by ``reduction`` (a
    power of two): stride 4 while it can, then stride 2; kernel 2 x stride + 1, so a block maps
    L steps to ceil(L / stride). ``reduction`` 1: one block of stride 1. After each block the
    steps past a sequence's new length are zeroed, so a sequence scores the same whatever the
    batch it is padded in."""

    def __init__(self, n_features: int, channels: int, reduction: int) -> None:
        super().__init__()
        strides, left = [], reduction
        while left >= 4:
            strides.append(4)
            left //= 4
        if left == 2 or not strides:
            strides.append(left)
        self.strides = strides
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(n_features if i == 0 else channels, channels, 2 * s + 1, s, s),
                nn.BatchNorm1d(channels),
                nn.ReLU(),
            )
            for i, s in enumerate(strides)
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, T, F) and lengths -> (N, ceil(T / reduction), channels) and the new lengths."""
        x = x.transpose(1, 2)
        for stride, block in zip(self.strides, self.blocks, strict=True):
            x = block(x)
            lengths = (lengths + stride - 1) // stride
            x = x * valid_steps(lengths, x.shape[2], x.device).unsqueeze(1)
        return x.transpose(1, 2), lengths


class FCNBranch(nn.Module):
    """The fully convolutional network of Wang et al. (2017), as LSTM-FCN puts it beside the
    recurrence (Karim et al. 2017): three blocks of Conv1d (128, 256, 128 filters; kernels 8, 5,
    3; stride 1), batch normalisation and ReLU, then the mean over each sequence's own steps.
    The steps past a sequence's length are zeroed before each block, as in :class:`ConvStem`."""

    WIDTH = 128

    def __init__(self, n_features: int) -> None:
        super().__init__()
        shapes = ((n_features, 128, 8), (128, 256, 5), (256, self.WIDTH, 3))
        self.blocks = nn.ModuleList(
            nn.Sequential(  # "same" padding, spelt out: torch warns on it for an even kernel
                nn.ZeroPad1d(((k - 1) // 2, k // 2)),
                nn.Conv1d(c_in, c_out, k),
                nn.BatchNorm1d(c_out),
                nn.ReLU(),
            )
            for c_in, c_out, k in shapes
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(N, T, F) and lengths -> (N, WIDTH): each sequence's mean over its valid steps."""
        valid = valid_steps(lengths, x.shape[1], x.device).unsqueeze(1)
        h = x.transpose(1, 2) * valid
        for block in self.blocks:
            h = block(h) * valid
        return h.sum(dim=2) / lengths.to(x.device).unsqueeze(1)


def resolve_stem(params: dict[str, Any], longest: int) -> dict[str, Any]:
    """The trial's parameters with its stem made concrete for data whose longest sequence has
    ``longest`` steps: ``stem`` none or conv, and ``stem_reduction``, the power of two that brings
    the longest sequence to at most ``stem_steps`` steps (1 without a stem)."""
    if "stem" not in params:  # a trial from before stems existed
        return params
    stem, target = params["stem"], int(params["stem_steps"])
    if stem == "auto":
        stem = "conv" if longest > target else "none"
    reduction = 1
    while stem == "conv" and math.ceil(longest / reduction) > target:
        reduction *= 2
    return {**params, "stem": stem, "stem_reduction": reduction}


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
