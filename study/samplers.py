"""Samplers (``conf/sampler/``): how the next trial's parameters are chosen.

Each option is a typed config whose ``_target_`` Hydra instantiates; the worker passes a
seed of its own so that parallel workers do not draw the same points.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import optuna
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from study._internals import (
    TPESeams,
    infeasible_trial_score,
    optuna_split_trials,
    pruned_trial_score,
)


class SamplerOptions(Protocol):
    """A ``sampler=`` option: the sampler class Hydra instantiates (``_target_``) with these
    fields and this worker's seed."""

    _target_: str


@dataclass
class TPEConfig:
    _target_: str = "optuna.samplers.TPESampler"
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = True
    # Groups the conditional parameter (dropout only for stacked networks) with its parents.
    group: bool = True
    # Running trials count as "lies" so parallel workers spread out instead of piling up.
    constant_liar: bool = True


@dataclass
class RandomConfig:
    _target_: str = "optuna.samplers.RandomSampler"


@dataclass
class GPConfig:
    _target_: str = "optuna.samplers.GPSampler"
    n_startup_trials: int = 10
    deterministic_objective: bool = False


@dataclass
class GridConfig:
    _target_: str = "study.samplers.GridSearch"


class GridSearch(optuna.samplers.RandomSampler):
    """Grid search that never runs a point twice, however many workers share the study.

    Optuna's ``GridSampler`` lets parallel processes draw the same point. Instead, the grid is
    enqueued once as WAITING trials when the study is created (:func:`study.setup.prepare_study`);
    PostgreSQL hands each one to exactly one worker under a row lock, and no other trial is ever
    created, so the study ends when the queue is empty. Sampling itself never happens: every
    parameter is fixed by the queue.
    """


class _Rows:
    """Finished trials' rows in TPE's internal representation for one search space, by number."""

    def __init__(self, search_space: dict[str, Any]) -> None:
        self.table = np.zeros((0, len(search_space)))
        # Per trial number: 0 not converted yet, 1 converted, 2 lacks a parameter of the space.
        self.known = np.zeros(0, dtype=np.int8)
        # Categorical parameters' internal values are indices (ints), the others floats.
        self.dtypes = [
            np.int64 if isinstance(d, optuna.distributions.CategoricalDistribution) else np.float64
            for d in search_space.values()
        ]

    def make_room(self, size: int) -> None:
        if size > len(self.known):
            more = max(size, 2 * len(self.known), 64) - len(self.known)
            self.table = np.concatenate([self.table, np.zeros((more, self.table.shape[1]))])
            self.known = np.concatenate([self.known, np.zeros(more, np.int8)])


_NUMBER = operator.attrgetter("number")
_STATE = operator.attrgetter("state")
_UNFINISHED = (TrialState.RUNNING, TrialState.WAITING)


class TPESampler(TPESeams):
    """Optuna's TPE sampler, drawing the same points, with less repeated work per trial.

    Before each trial TPE converts every trial's parameters to its internal representation,
    for each parameter group and for the trials below and above the split (a tenth of a
    worker's time at 5,000 trials, ``bench/coordination.py``). A finished trial's parameters
    never change, so its row is converted once per group and kept, in a table indexed by trial
    number; running trials (the constant liar's) are converted each time as Optuna does. The
    group decomposition is fed each finished trial once
    (:class:`study._internals.IncrementalGroupDecomposition`), and the split of the trials into
    good and bad is :class:`KeptSplit`'s.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows: dict[tuple[str, tuple[tuple[str, Any], ...]], _Rows] = {}
        self._split = KeptSplit()

    def split_trials(
        self, study: optuna.Study, trials: list[FrozenTrial], n_below: int
    ) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        return self._split(study, trials, n_below)

    def _row(self, trial: FrozenTrial, search_space: dict[str, Any], study: optuna.Study
             ) -> tuple[float, ...] | None:  # fmt: skip
        params = self.trial_params(trial, study)
        if not search_space.keys() <= params.keys():
            return None
        return tuple(d.to_internal_repr(params[name]) for name, d in search_space.items())

    def internal_repr(
        self, trials: list[FrozenTrial], search_space: dict[str, Any], study: optuna.Study
    ) -> dict[str, np.ndarray]:
        key = (study.study_name, tuple(search_space.items()))
        if key not in self._rows and len(self._rows) >= 16:  # search spaces seen long ago
            self._rows.clear()
        rows = self._rows.setdefault(key, _Rows(search_space))
        numbers = np.fromiter(map(_NUMBER, trials), np.int64, len(trials))
        rows.make_room(int(numbers.max(initial=-1)) + 1)
        running = {i for i, state in enumerate(map(_STATE, trials)) if state in _UNFINISHED}
        converted = {}  # running trials' rows, converted each time as Optuna does
        for i in running.union(np.flatnonzero(rows.known[numbers] == 0).tolist()):
            row = self._row(trials[i], search_space, study)
            if i in running:
                converted[i] = row
            else:
                rows.known[numbers[i]] = 2 if row is None else 1
                if row is not None:
                    rows.table[numbers[i]] = row
        matrix, keep = rows.table[numbers], rows.known[numbers] == 1
        for i, row in converted.items():
            keep[i] = row is not None
            if row is not None:
                matrix[i] = row
        matrix = matrix[keep]
        # As Optuna's np.asarray of the values: no rows at all give empty float columns.
        dtypes = rows.dtypes if len(matrix) else [np.float64] * len(rows.dtypes)
        return {
            name: matrix[:, j].astype(dtype)
            for j, (name, dtype) in enumerate(zip(search_space, dtypes, strict=True))
        }


_COMPLETE, _PRUNED, _INFEASIBLE = range(3)


class _LastSplit:
    """A split (positions below and above) and the trials it was made of."""

    def __init__(self, trials: list[FrozenTrial], n_below: int, below: list[int],
                 above: list[int], running: list[int]) -> None:  # fmt: skip
        self.trials, self.n_below, self.below, self.above = list(trials), n_below, below, above
        self.running = running

    def holds_for(self, trials: list[FrozenTrial], n_below: int) -> bool:
        """Whether ``trials`` are the same trials in the same states, in the same order.

        A finished trial never changes, so the same object (the trial cache hands back the same
        ones) is the same trial; another object must have the same number and state. Running
        trials are checked each time, since a storage may finish one in place."""
        if n_below != self.n_below or len(trials) != len(self.trials):
            return False
        for i in itertools.compress(range(len(trials)), map(operator.is_not, trials, self.trials)):
            if (trials[i].number, trials[i].state) != (self.trials[i].number, self.trials[i].state):
                return False
        return all(trials[i].state == TrialState.RUNNING for i in self.running)


class KeptSplit:
    """TPE's split of the trials into the ``n_below`` best and the rest, as Optuna makes it, with
    each finished trial's rank kept and the last split reused.

    Before every draw, for each parameter group (twice per trial for the default space), Optuna
    ranks every trial again: a pruned trial by its last intermediate value, found in Python, and
    every trial's constraints summed (half of TPE's time at 20,000 trials,
    ``bench/tpe_history.py``). A finished trial's rank never changes, so it is computed once; and
    when the same trials in the same states come again (the next group of the same trial), the
    previous split is reused, mapped onto the trial objects given now (a running trial's
    relative parameters may have been updated since). Single-objective studies only; others get
    Optuna's split.
    """

    def __init__(self) -> None:
        self._study: str | None = None
        self._ranks: dict[int, tuple[int, Any]] = {}
        self._last: _LastSplit | None = None

    def __call__(
        self, study: optuna.Study, trials: list[FrozenTrial], n_below: int
    ) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        if len(study.directions) > 1:
            return optuna_split_trials(study, trials, n_below)
        if study.study_name != self._study:
            self._study, self._ranks, self._last = study.study_name, {}, None
        last = self._last
        if last is None or not last.holds_for(trials, n_below):
            last = self._last = _LastSplit(trials, n_below, *self._split(study, trials, n_below))
        return [trials[i] for i in last.below], [trials[i] for i in last.above]

    def _rank(self, trial: FrozenTrial, study: optuna.Study) -> tuple[int, Any]:
        rank = self._ranks.get(trial.number)
        if rank is None:
            infeasible = infeasible_trial_score(trial)
            if infeasible > 0:
                rank = (_INFEASIBLE, infeasible)
            elif trial.state == TrialState.COMPLETE:
                rank = (_COMPLETE, trial.value)
            elif trial.state == TrialState.PRUNED:
                rank = (_PRUNED, pruned_trial_score(trial, study))
            else:
                raise ValueError(f"TPE does not split trials in state {trial.state.name}")
            self._ranks[trial.number] = rank
        return rank

    def _split(
        self, study: optuna.Study, trials: list[FrozenTrial], n_below: int
    ) -> tuple[list[int], list[int], list[int]]:
        """Positions in ``trials`` below and above the split, each in trial-number order, and
        the positions of the running trials (above it)."""
        kinds: tuple[list[tuple[Any, int]], ...] = ([], [], [])
        running = []
        for i, trial in enumerate(trials):
            if trial.state == TrialState.RUNNING:
                running.append(i)
            else:
                kind, key = self._rank(trial, study)
                kinds[kind].append((key, i))
        below, above = [], list(running)
        for kind, ranked in enumerate(kinds):
            # Stable sorts on the key alone, as Optuna's, so ties keep the order of ``trials``.
            reverse = kind == _COMPLETE and study.direction == StudyDirection.MAXIMIZE
            ranked.sort(key=lambda pair: pair[0], reverse=reverse)
            n = max(0, min(n_below, len(ranked)))
            below += [i for _, i in ranked[:n]]
            above += [i for _, i in ranked[n:]]
            n_below = max(0, n_below - n)
        number = [t.number for t in trials]
        below.sort(key=number.__getitem__)
        above.sort(key=number.__getitem__)
        return below, above, running


def build_sampler(cfg: SamplerOptions, seed: int) -> optuna.samplers.BaseSampler:
    """Instantiate the configured sampler with this worker's own seed.

    Optuna's TPE sampler is replaced by :class:`TPESampler`, which draws the same points; the
    configuration (and so a study's recorded settings) still names Optuna's.
    """
    if OmegaConf.select(OmegaConf.structured(cfg), "_target_") == "optuna.samplers.TPESampler":
        cfg = OmegaConf.merge(cfg, {"_target_": f"{__name__}.TPESampler"})
    sampler: optuna.samplers.BaseSampler = instantiate(cfg, seed=seed)
    return sampler


def is_grid(cfg: SamplerOptions) -> bool:
    return isinstance(cfg, GridConfig)
