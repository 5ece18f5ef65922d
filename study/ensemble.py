"""An ensemble's members (``protocol.ensemble``, ``protocol.selection``, ``protocol.pool``).

- ``top``: the k best trials by their value, each once.
- ``greedy``: ensemble selection (Caruana et al., 2004, as auto-sklearn builds its ensembles):
  starting from nothing, k picks with replacement from the ``pool`` best trials' models, each
  the candidate that gives the average of the picks so far the lowest validation loss. A trial
  picked twice weighs twice. The best trials of one TPE study are often near-copies of one
  configuration that err together; averaging them cancels little, while a pick is kept only
  when it lowers the loss of the average, so a trial that errs the other way is preferred to
  a better one that errs the same way.

Candidates are judged by their own models' outputs on the validation split, which they did not
train on (their predictions combined as :meth:`~study.data.SequenceData.combinable` says:
probabilities, or forecasts in the data's units). The test split is not read here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna

from study import protocol
from study.protocol import ProtocolConfig
from study.storage import best_trials

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidates:
    """The trials an ensemble is chosen from, best first."""

    trials: list[optuna.trial.FrozenTrial]
    #: ``greedy``, or ``top`` (then every candidate is a member).
    selection: str
    #: How many picks greedy selection makes (``protocol.ensemble``).
    n_picks: int

    @property
    def numbers(self) -> list[int]:
        return [t.number for t in self.trials]


@dataclass(frozen=True)
class Members:
    """The chosen trials (in the order they were first picked) and how often each was picked."""

    trials: list[optuna.trial.FrozenTrial]
    picks: list[int]


def candidates(study: optuna.Study, cfg: ProtocolConfig) -> Candidates:
    """The best trials an ensemble is chosen from. Greedy selection takes only the trials whose
    models the study kept (all of the pool when the study ran with these settings)."""
    trials = best_trials(study, protocol.pool_size(cfg))
    if cfg.selection == "greedy":
        kept = study.user_attrs.get("models", {})
        with_model = [t for t in trials if str(t.number) in kept] or trials[:1]
        if len(with_model) < len(trials):
            log.warning(
                "greedy selection chooses from the %d best trials whose models the study kept, "
                "not %d; launch with protocol.selection=greedy to keep the pool's models",
                len(with_model),
                len(trials),
            )
        trials = with_model
    return Candidates(trials, cfg.selection, cfg.ensemble)


def greedy_picks(
    outputs: list[torch.Tensor], loss: Callable[[torch.Tensor], float], k: int
) -> list[int]:
    """Forward selection with replacement: ``k`` indexes into ``outputs``, each the one whose
    addition gives the average of the picks the lowest ``loss`` (ties: the earlier, better
    ranked candidate; a NaN loss never wins)."""
    import torch

    total = torch.zeros_like(outputs[0])
    picks: list[int] = []
    for n in range(1, k + 1):
        losses = [loss((total + out) / n) for out in outputs]
        losses = [math.inf if math.isnan(v) else v for v in losses]
        best = min(range(len(losses)), key=losses.__getitem__)
        picks.append(best)
        total = total + outputs[best]
    return picks


def choose(
    found: Candidates,
    validation: Callable[[optuna.trial.FrozenTrial], torch.Tensor],
    loss: Callable[[torch.Tensor], float],
) -> Members:
    """The members: every candidate (``top``), or greedy selection's picks over the candidates'
    ``validation`` outputs (combinable), judged by ``loss`` of their average."""
    if found.selection != "greedy":
        return Members(found.trials, [1] * len(found.trials))
    picks = greedy_picks([validation(t) for t in found.trials], loss, found.n_picks)
    order = list(dict.fromkeys(picks))  # first picked first
    return Members([found.trials[i] for i in order], [picks.count(i) for i in order])


__all__ = ["Candidates", "Members", "candidates", "choose", "greedy_picks"]
