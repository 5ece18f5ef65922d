"""The search space: YAML bounds become suggest calls; fixed values, choices and grids."""

from __future__ import annotations

import optuna
import pytest

from study.config import load_config
from study.space import grid_points, suggest


def _draw(overrides: list[str], n: int = 30) -> list[dict]:
    cfg = load_config(overrides)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    draws = []
    for _ in range(n):
        trial = study.ask()
        draws.append((suggest(trial, cfg.search_space), trial.params))
        study.tell(trial, 0.0)
    return draws


def test_ranges_choices_and_fixed_values_from_the_command_line() -> None:
    draws = _draw(
        [
            "search_space.hidden_size.value=128",
            "search_space.lr.low=1e-3",
            "search_space.lr.high=2e-3",
            "search_space.cell.choices=[rnn,gru]",
        ]
    )
    for chosen, sampled in draws:
        assert chosen["hidden_size"] == 128 and "hidden_size" not in sampled
        assert 1e-3 <= chosen["lr"] <= 2e-3
        assert chosen["cell"] in ("rnn", "gru")
    assert {c["cell"] for c, _ in draws} == {"rnn", "gru"}


def test_dropout_between_layers_exists_only_in_stacked_networks() -> None:
    for chosen, sampled in _draw([], n=40):
        assert ("dropout" in sampled) == (chosen["num_layers"] > 1)


@pytest.mark.parametrize(
    ("param", "drawn_for"),
    [
        ("fcn", {"japanese_vowels", "ucr"}),  # LSTM-FCN classifies numeric series
        ("nb_ratios", {"rotten_tomatoes"}),  # naive Bayes ratios weigh words
        ("ngrams", {"rotten_tomatoes"}),  # a linear model of words and pairs
    ],
)
def test_data_specific_parameters_are_drawn_only_for_their_data(
    param: str, drawn_for: set[str]
) -> None:
    from study.space import names

    for data in (["data=japanese_vowels"], ["data=ucr", "data.dataset=GunPoint"],
                 ["data=rotten_tomatoes"], ["data=airline"]):  # fmt: skip
        cfg = load_config(data)
        drawn = param in names(cfg.search_space, cfg.data.uses())
        assert drawn is (data[0].removeprefix("data=") in drawn_for), data
    assert all(param not in chosen for chosen, _ in _draw([], n=5))  # no data: never drawn


def test_integer_log_range_gives_integers() -> None:
    for chosen, _ in _draw(["search_space.hidden_size.low=16", "search_space.hidden_size.high=64"]):
        assert isinstance(chosen["hidden_size"], int) and 16 <= chosen["hidden_size"] <= 64


def test_grid_enumerates_each_point_once_and_drops_inactive_dropout() -> None:
    cfg = load_config(["search_space=grid"])
    points = grid_points(cfg.search_space)
    assert len(points) == 3 * 2 * 2 * 2
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)
    stacked = load_config(
        [
            "search_space=grid",
            "search_space.num_layers.value=null",
            "search_space.num_layers.choices=[1,2]",
            "search_space.dropout.value=null",
            "search_space.dropout.choices=[0.0,0.3]",
        ]
    )
    pts = grid_points(stacked.search_space)
    # 24 single-layer points (dropout dropped) + 24 x 2 stacked ones.
    assert len(pts) == 24 + 48
    assert all("dropout" not in p for p in pts if p["num_layers"] == 1)
