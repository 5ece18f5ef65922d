"""The model group's settings and the choices the search space offers for the network and its
training (``conf/model/``, ``search_space``): what the config, the search space and the commands
that only read a study need, without importing torch. :mod:`study.models` builds the networks
from them, :mod:`study.training` the optimizers.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The recurrent cells a trial can pick (``search_space.cell``).
CELL_NAMES = ("rnn", "lstm", "gru")

#: The optimizers a trial can pick (``search_space.optimizer``; built by study.training).
OPTIMIZER_NAMES = ("adam", "adamw", "rmsprop", "sgd")

#: How the learning rate moves over a trial's epochs (``search_space.lr_schedule``; applied by
#: study.training): constant, or cosine annealing from ``lr`` towards 0 at ``max_epochs``.
LR_SCHEDULES = ("constant", "cosine")

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
    "stem",
    "stem_reduction",
    "highway",
    "input_length",
    "fcn",
    "nb_ratios",
    "ngrams",
    "base",
)

#: How the recurrent outputs become one vector (``search_space.pooling``): the last state of each
#: direction, or the element-wise max or mean over the (unpadded) steps.
POOLINGS = ("last", "max", "mean")

#: The front-ends a trial can pick (``search_space.stem``); auto is resolved per data set by
#: :func:`resolve_stem` into conv (sequences longer than ``stem_steps``) or none.
STEMS = ("auto", "none", "conv")


@dataclass
class ModelConfig:
    _target_: str = "study.models.SequenceModel"
    #: The cell used unless the search space lists several (``search_space.cell.choices``).
    cell: str = "lstm"
