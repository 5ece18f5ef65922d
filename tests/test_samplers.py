"""Samplers: ours draw exactly what Optuna's draw, with less repeated work per trial."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from study._internals import IncrementalGroupDecomposition, OptunaGroupDecomposition
from study.samplers import TPEConfig, TPESampler, build_sampler
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
    assert any(len(rows) >= 20 for rows in ours._rows.values())


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
