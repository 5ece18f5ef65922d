"""Samplers: ours draw exactly what Optuna's draw, with less repeated work per trial."""

from __future__ import annotations

import logging

import optuna
import pytest
from optuna.trial import TrialState

from study import pruners
from study._internals import (
    IncrementalGroupDecomposition,
    OptunaGroupDecomposition,
    optuna_split_trials,
)
from study.config import load_config
from study.samplers import KeptSplit, TPEConfig, TPESampler, build_sampler
from study.setup import load_checked_data
from study.storage import StorageConfig, open_storage

# These tests drive the storage with ask/tell, where Optuna notes that heartbeats are idle.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")


def _suggest(trial: optuna.Trial) -> None:
    layers = trial.suggest_int("layers", 1, 3)
    if layers > 1:  # conditional: TPE puts it in a group of its own
        trial.suggest_float("dropout", 0.0, 0.5)
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    trial.suggest_categorical("cell", ["rnn", "lstm", "gru"])
    trial.suggest_int("hidden", 16, 128, step=16)


def test_our_tpe_draws_exactly_the_points_optunas_draws(pg_url: str, study_name: str) -> None:
    """Same seed, same history, with conditional, pruned and running (constant liar) trials:
    every suggestion is identical, and the kept rows were used."""
    storage = open_storage(StorageConfig(kind="postgres", url=pg_url))
    kwargs = {"n_startup_trials": 4, "multivariate": True, "group": True, "constant_liar": True}
    ours = TPESampler(seed=7, **kwargs)
    theirs = optuna.samplers.TPESampler(seed=7, **kwargs)
    studies = [
        optuna.create_study(study_name=f"{study_name}-{i}", storage=storage, sampler=sampler)
        for i, sampler in enumerate((ours, theirs))
    ]
    for step in range(20):
        drawn = []
        for study in studies:
            first = study.ask()  # still running while the second one samples
            _suggest(first)
            second = study.ask()
            _suggest(second)
            study.tell(first, first.params["lr"] * first.params["hidden"])
            second.report(float(step), 0)
            study.tell(second, state=TrialState.PRUNED if step % 2 else TrialState.FAIL)
            drawn.append([first.params, second.params])
        assert drawn[0] == drawn[1], f"round {step}"
    assert any((rows.known == 1).sum() >= 20 for rows in ours._rows.values())


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
@pytest.mark.parametrize("constrained", [False, True])
def test_our_kept_split_draws_what_optunas_split_draws(direction: str, constrained: bool) -> None:
    """The split into good and bad with each finished trial's rank kept and the last split
    reused: pruned trials at different epochs (one with a NaN loss), ties in value, running
    trials, infeasible ones, both directions; every suggestion identical to Optuna's, and the
    kept ranks and the reused split were used."""
    kwargs: dict = {"n_startup_trials": 4, "multivariate": True, "group": True,
                    "constant_liar": True}  # fmt: skip
    ours = TPESampler(seed=3, **kwargs)
    theirs = optuna.samplers.TPESampler(seed=3, **kwargs)
    studies = [optuna.create_study(direction=direction, sampler=s) for s in (ours, theirs)]
    reused = 0
    for step in range(30):
        drawn = []
        for study in studies:
            running = study.ask()
            _suggest(running)
            first = study.ask()
            _suggest(first)
            second = study.ask()
            _suggest(second)
            if constrained:
                for trial in (first, second):
                    # every other hidden size infeasible, among the best values either way
                    trial.set_constraint("hidden", 1.0 if trial.params["hidden"] % 32 else -1.0)
            study.tell(first, round(first.params["hidden"] / 32))  # many ties
            for epoch in range(step % 4):
                second.report(float("nan") if step == 9 else first.params["lr"] * epoch, epoch)
            study.tell(second, state=TrialState.PRUNED)
            study.tell(running, float(step % 3))
            drawn.append([running.params, first.params, second.params])
        assert drawn[0] == drawn[1], f"round {step}"
        reused += ours._split._last is not None
    assert len(ours._split._ranks) >= 60
    assert reused >= 20


def test_kept_rows_are_optunas_rows_with_their_types() -> None:
    """Rows kept by trial number give Optuna's columns, value for value and type for type: a
    conditional parameter some trials lack, a categorical (its index, an int), running trials
    converted afresh, a trial that finished since, and no rows at all."""
    ours = TPESampler(seed=0, n_startup_trials=100)
    study = optuna.create_study(sampler=ours)
    for i in range(9):
        trial = study.ask()
        _suggest(trial)
        if i % 4:
            study.tell(trial, float(i))
    space = {
        "cell": optuna.distributions.CategoricalDistribution(["rnn", "lstm", "gru"]),
        "dropout": optuna.distributions.FloatDistribution(0.0, 0.5),
        "hidden": optuna.distributions.IntDistribution(16, 128, step=16),
    }
    plain = optuna.samplers.TPESampler(seed=0)
    for _ in range(2):
        for chosen in (study.get_trials(deepcopy=False), []):
            theirs = plain._get_internal_repr(chosen, space, study)
            got = ours.internal_repr(chosen, space, study)
            assert {k: (v.tolist(), v.dtype) for k, v in got.items()} == {
                k: (v.tolist(), v.dtype) for k, v in theirs.items()
            }
        study.tell(study.get_trials(states=[TrialState.RUNNING])[0].number, 1.0)


def test_kept_split_is_not_reused_when_a_trial_changed_state() -> None:
    """The last split is reused only for the same trials in the same states: a trial that
    finished between two draws is ranked anew."""
    study = optuna.create_study()
    for i in range(6):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        if i < 5:
            study.tell(trial, float(5 - i))
    split = KeptSplit()
    before = study.get_trials(deepcopy=False)
    assert split(study, before, 2) == optuna_split_trials(study, before, 2)
    study.tell(trial, -1.0)  # the running trial finishes best
    after = study.get_trials(deepcopy=False)
    assert [t.number for t in split(study, after, 2)[0]] == [4, 5]
    assert split(study, after, 2) == optuna_split_trials(study, after, 2)


def test_optunas_own_split_stays_optunas_outside_our_sampler() -> None:
    """Our split is installed in Optuna's TPE module, for our sampler's thread only."""
    import optuna.samplers._tpe.sampler as tpe

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(n_startup_trials=2, seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    trials = study.get_trials(deepcopy=False)
    assert tpe._split_trials(study, trials, 2) == optuna_split_trials(study, trials, 2)
    assert [t.number for t in tpe._split_trials(study, trials, 2)[0]] == sorted(
        sorted(range(5), key=lambda i: trials[i].value)[:2]
    )


def test_build_sampler_gives_ours_for_optunas_tpe_and_leaves_others() -> None:
    tpe = build_sampler(TPEConfig(), seed=0)
    assert type(tpe) is TPESampler
    assert isinstance(tpe.group_decomposition, IncrementalGroupDecomposition)
    assert type(build_sampler(TPEConfig(group=False), seed=0)) is TPESampler
    random = build_sampler({"_target_": "optuna.samplers.RandomSampler"}, seed=0)
    assert type(random) is optuna.samplers.RandomSampler


def test_incremental_groups_match_optunas_decomposition(pg_url: str, study_name: str) -> None:
    """TPE's group decomposition, fed each finished trial once, finds the same groups as
    Optuna's, which merges every trial again each time; and a new trial still regroups."""
    storage = open_storage(StorageConfig(kind="postgres", url=pg_url))
    study = optuna.create_study(study_name=study_name, storage=storage)
    ours = IncrementalGroupDecomposition(include_pruned=True)
    for i in range(12):
        trial = study.ask()
        layers = trial.suggest_int("layers", 1, 3)
        if layers > 1:
            trial.suggest_float("dropout", 0.0, 0.5)
        if i == 11:
            trial.suggest_categorical("cell", ["lstm", "gru"])  # a parameter never seen before
        if i % 3:
            study.tell(trial, float(i))
        else:
            study.tell(trial, state=TrialState.PRUNED)
        theirs = OptunaGroupDecomposition(include_pruned=True).calculate(study)
        groups = ours.calculate(study)
        assert sorted(map(sorted, groups.search_spaces)) == sorted(
            map(sorted, theirs.search_spaces)
        )
    assert {"cell"} in map(set, groups.search_spaces)


@pytest.mark.parametrize(
    ("low", "high", "factor"), [(2, 40, 3), (1, 40, 3), (1, 100, 4), (5, 8, 3)]
)
def test_hyperband_brackets_are_counted_as_optuna_counts_them(
    low: int, high: int, factor: int
) -> None:
    ours = pruners.HyperbandConfig(min_resource=low, max_resource=high, reduction_factor=factor)
    theirs = optuna.pruners.HyperbandPruner(low, high, factor)
    theirs._try_initialization(optuna.create_study())  # in memory: what it computes first
    assert pruners.brackets(ours, high) == theirs._n_brackets


def test_a_budget_hyperband_leaves_mostly_random_is_named_at_launch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def notes(*overrides: str) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            load_checked_data(load_config(list(overrides)), warn=True)
        return [r.getMessage() for r in caplog.records if "brackets" in r.getMessage()]

    (line,) = notes("pruner=hyperband", "n_trials=40")  # 40 epochs from 2: 3 brackets
    assert "3 x sampler.n_startup_trials = 30 trials are random" in line
    assert "more than half of n_trials=40; raise n_trials" in line
    assert notes("pruner=hyperband", "n_trials=60") == [], "half the budget guided"
    assert notes("pruner=hyperband", "n_trials=40", "sampler=random") == [], "nothing to learn"
    assert notes("pruner=hyperband", "n_trials=40", "sampler.n_startup_trials=5") == []
    assert notes("n_trials=10") == [], "the median pruner shares every trial"
