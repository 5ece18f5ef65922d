"""The whole path in one process, for the fast tier: a worker runs a small study to its budget,
then its status, its test score and its report — every module a trial passes through, without
starting a process (the slow tier runs the same path as real processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import TINY, run_worker

from study import testset
from study.artifacts import read_model
from study.config import load_config
from study.data import load_data
from study.models import nb_ratios
from study.protocol import concat
from study.report import page
from study.report.page import build
from study.status import summary
from study.storage import open_storage

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_a_worker_runs_a_study_that_status_test_and_report_read(
    pg_url: str, study_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # artifacts and the report land here
    steps = tmp_path / "steps.yaml"
    steps.write_text("- name: baseline\n  params: {hidden_size: 8}\n")
    cfg = load_config(
        [
            "storage=postgres", f"storage.url={pg_url}", f"study.name={study_name}",
            "n_trials=4", f"iterations.file={steps}", "report.out_dir=out", "worker.threads=1",
            *TINY, "max_epochs=2",
        ]
    )  # fmt: skip
    assert run_worker(cfg) == 0

    storage = open_storage(cfg.storage)
    s = summary(storage, study_name, cfg.artifacts)
    assert s["n_trials"]["total"] == 4 and s["n_trials"]["COMPLETE"] + s["n_trials"]["PRUNED"] == 4
    assert s["iterations"]["iterations"][0]["name"] == "baseline"
    assert Path(s["best"]["model"]).is_file(), "the best trial's model is kept"

    loads: list[str] = []

    def counted(options: Any) -> Any:
        loads.append(options.name)
        return load_data(options)

    monkeypatch.setattr(testset, "load_data", counted)
    monkeypatch.setattr(page, "load_data", counted)
    report = build(cfg, storage)  # the first to score the test split
    assert loads == ["japanese_vowels"], "the report and its test score share one load"
    scored = testset.test_score(cfg, storage)
    assert scored["trial"] == s["best"]["number"] and scored["n"] == 370
    assert scored["evaluations"] == 1, "asked again: the score the report stored"

    assert report.html.is_file() and {p.key for p in report.plots} >= {"history", "curves"}
    assert any(line.startswith("diagnosis: ") for line in report.summary)
    assert [t.name for t in report.tables] == [
        "trials.csv", "trials.parquet", "curves.csv", "curves.parquet",
    ]  # fmt: skip


def test_a_text_study_s_models_carry_the_ratios_of_the_texts_they_trained_on(
    pg_url: str, study_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    user_files: dict[str, Path],
) -> None:  # fmt: skip
    """``nb_ratios``: a trial's model counts its training split, the final model retrained
    through validation counts both, and both are read back from the saved models; the n-gram
    part (``ngrams``) is saved and read back with them."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config(
        [
            "storage=postgres", f"storage.url={pg_url}", f"study.name={study_name}",
            "n_trials=2", "worker.threads=1", *TINY, "max_epochs=2",
            "data=text", f"data.train_path={user_files['text_csv']}",
            "data.text_column=review", "data.label_column=sentiment",
            "search_space.nb_ratios.value=true", "protocol.retrain=always",
            "search_space.ngrams.value=true",
        ]
    )  # fmt: skip
    assert run_worker(cfg) == 0
    storage = open_storage(cfg.storage)
    best = summary(storage, study_name, cfg.artifacts)["best"]
    data = load_data(cfg.data).for_trial(best["params"])
    saved = torch.load(best["model"], weights_only=True)["state_dict"]["ratios"]
    assert torch.equal(saved, nb_ratios(data.train, data.vocab_size, 2))

    retrained = testset.test_score(cfg, storage)["retrained"]
    final = read_model(cfg.artifacts, retrained["model_artifact"])["state_dict"]["ratios"]
    both = concat(data.train, data.val)
    assert retrained["train_examples"] == len(both)
    assert torch.equal(final, nb_ratios(both, data.vocab_size, 2))
    weights = read_model(cfg.artifacts, retrained["model_artifact"])["state_dict"]
    assert weights["ngrams.weights.weight"].abs().sum() > 0, "the n-gram part was trained"
