"""The report's page (``study report``): one self-contained HTML file, PNGs, tables, a summary.

What a person wants after a study: the data as the study split it, the best trial and its test
score (the test split scored once per study, :mod:`study.testset`) with the model's own answers
(:mod:`study.report.pictures`), the top trials, where the time went and what pruning
saved, the search in pictures (history, the hand-tuned iterations, parameter importances,
parallel coordinates, slices), learning curves, a bias/variance diagnosis of the best trial with
what to try next (:mod:`study.diagnosis`), a capacity curve (train and validation metric against
hidden units and layers), and every trial exported (:mod:`study.export`).

:func:`build` reads the study, draws the figures (:mod:`study.report.figures`), writes the
tables, and renders ``report.html.j2``.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import matplotlib
import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState

from study import diagnosis, export, iterations
from study.config import Config
from study.data import SequenceData, load_data
from study.data.forecast import SeriesData
from study.errors import DataError, StudyError
from study.rdb import COPIED, BudgetedRDBStorage
from study.report import figures, pictures
from study.storage import best_trial, load_existing, trial_params
from study.testset import test_score

log = logging.getLogger(__name__)

#: Draws one figure: the Plotly figure for the page and the path of its PNG.
_Drawing = Callable[[], tuple[go.Figure, Path]]
#: A figure the page wants: its key, title, caption and how to draw it.
_Wanted = tuple[str, str, str, _Drawing]


@dataclass
class Plot:
    key: str
    title: str
    caption: str
    figure: go.Figure
    png: Path
    #: Where on the page: ``data`` (first), ``answers`` (beside the best trial) or ``search``.
    section: str = "search"


@dataclass
class Report:
    folder: Path
    html: Path
    plots: list[Plot] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass
class _Study:
    """What the page says, read from the study once."""

    cfg: Config
    study: optuna.Study
    trials: list[FrozenTrial]
    direction: str
    #: Completed trials, best first.
    ranked: list[FrozenTrial]
    best: FrozenTrial
    test: dict[str, Any]
    #: The test score was stored before this report (the test split was not touched again).
    reused: bool
    diag: diagnosis.Diagnosis | None
    spent: dict[str, Any]
    counts: dict[str, int]
    compared: dict[str, Any]
    #: The study's data as its recorded settings load it (None: it cannot be read here).
    data: SequenceData | None
    data_error: str
    #: The tested model's answers on the test split (None: stored by an earlier version).
    answers: dict[str, Any] | None

    @property
    def metric(self) -> str:
        return self.cfg.study.metric

    @property
    def top(self) -> list[FrozenTrial]:
        return self.ranked[: self.cfg.report.top_k]


def build(cfg: Config, storage: BudgetedRDBStorage) -> Report:
    """Write the report of ``cfg.study.name`` into ``<report.out_dir>/<study>/``."""
    matplotlib.use("Agg")  # files only, no screen
    s = _read(cfg, storage)
    folder = Path(cfg.report.out_dir) / cfg.study.name
    folder.mkdir(parents=True, exist_ok=True)
    report = Report(folder, folder / "report.html")
    _draw(report, s)
    report.tables = export.write(s.study, folder)
    report.summary = _summary(s)
    _write_page(report, s)
    return report


def _read(cfg: Config, storage: BudgetedRDBStorage) -> _Study:
    """The study, its trials ranked, the test score (computed once per study), the diagnosis."""
    study = load_existing(storage, cfg.study.name)
    trials = study.get_trials(deepcopy=False)
    direction = study.direction.name.lower()
    ranked = _finished(trials, direction)
    if not ranked:
        raise StudyError(f"study {cfg.study.name!r} has no completed trial yet; nothing to report")
    data, data_error = None, ""
    try:
        data = load_data(cfg.data)
    except DataError as e:  # e.g. the user's file moved since: the rest of the report stands
        data_error = str(e)
    stored = study.user_attrs.get("test") or {}
    test = test_score(cfg, storage, data)  # once per study: a stored score is reused
    best = best_trial(study)  # the best trial run here (a warm start's copies are not tested)
    rc = cfg.report
    # A full trial's length, as the study ran it (the settings given here may differ).
    steps = max(len(t.user_attrs.get("curve") or []) for t in ranked)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    answers = study.user_attrs.get("test_answers")
    return _Study(
        cfg=cfg,
        study=study,
        trials=trials,
        direction=direction,
        ranked=ranked,
        best=best,
        test=test,
        reused=stored.get("evaluated_at") == test.get("evaluated_at"),
        diag=diagnosis.of_trial(
            best.user_attrs, target_error=rc.target_error, tolerance=rc.tolerance
        ),
        spent=time_spent(trials, steps),
        counts=counts,
        compared=iterations.compare(trials, direction),
        data=data,
        data_error=data_error,
        answers=answers if answers and answers.get("trial") == test.get("trial") else None,
    )


def _draw(report: Report, s: _Study) -> None:
    """Each figure for the page with its PNG; one that cannot be drawn is listed, not fatal."""
    folder, metric, ranked = report.folder, s.metric, s.ranked

    def optuna(name: str, png: Callable[[], Path] | None = None) -> _Drawing:
        return lambda: figures.optuna_plot(name, s.study, folder, metric, png)

    search: list[_Wanted] = [
        ("history", "Optimization history", "each trial's value and the best so far",
         optuna("plot_optimization_history")),
        ("iterations", "Baseline and hand-tuned iterations",
         "the value of each step in order, beside the best trial of the automatic search",
         lambda: figures.iterations(s.compared, folder, metric)),
        ("importances", "Parameter importances", "fANOVA importance of each parameter",
         optuna("plot_param_importances")),
        ("parallel", "Parallel coordinates", "every finished trial across its parameters",
         optuna("plot_parallel_coordinate", lambda: figures.parallel_png(ranked, folder, metric))),
        ("slices", "Slices", "the value against each parameter",
         optuna("plot_slice", lambda: figures.slices_png(ranked, folder, metric))),
        ("curves", f"Learning curves of the top {len(s.top)} trials",
         "train (dotted) and validation loss per epoch; a widening gap is over-fitting",
         lambda: figures.learning_curves(s.top, folder, metric)),
        ("capacity", "Capacity curve",
         "train and validation error at each finished trial's best epoch, by hidden units",
         lambda: figures.capacity(ranked, folder)),
    ]  # fmt: skip
    if s.data is None:
        report.skipped.append(f"The data: {s.data_error}")
    if s.answers is None:
        report.skipped.append(
            "The model's answers: the test score was stored by an earlier version, without them"
        )
    # In the page's order (the first figure carries plotly.js for the others).
    sections = {
        "data": [] if s.data is None else _data_figures(s.data, folder),
        "answers": [] if s.answers is None else [_answers_figure(s.answers, folder)],
        "search": search,
    }
    for section, wanted in sections.items():
        for key, title, caption, draw in wanted:
            if key == "iterations" and not s.compared["iterations"]:
                continue  # no hand-tuned steps in this study
            try:
                fig, png = draw()
            except (ValueError, RuntimeError, ZeroDivisionError) as e:  # e.g. too few trials
                report.skipped.append(f"{title}: {e}")
                continue
            # The page's width, whatever width Optuna gave the figure (its slices grow with the
            # parameters and ran off the page).
            fig.update_layout(
                title=title, template="plotly_white", height=460, width=None, autosize=True
            )
            report.plots.append(Plot(key, title, caption, fig, png, section))


def _answers_figure(answers: dict[str, Any], folder: Path) -> _Wanted:
    """The tested model's answers: its confusion matrix, or its forecasts."""
    if "confusion" in answers:
        return ("confusion", "Test split: confusion matrix",
                "the tested model's answers, a row per true class",
                lambda: pictures.confusion(answers, folder))  # fmt: skip
    return ("forecasts", "Test split: forecasts against the actual values",
            "one line per forecast origin, from the tested model",
            lambda: pictures.forecasts(answers, folder))  # fmt: skip


def _data_figures(data: SequenceData, folder: Path) -> list[_Wanted]:
    """The data's pictures: the series and its parts (forecasting), or the lengths and an
    example of each class."""
    if isinstance(data, SeriesData):
        return [("series", "The series", "the training, validation and test parts",
                 lambda: pictures.series(data, folder))]  # fmt: skip
    wanted: list[_Wanted] = [
        ("lengths", "Sequence lengths", "per split", lambda: pictures.lengths(data, folder)),
    ]
    if not data.vocab_size:
        wanted.append(("examples", "An example of each class",
                       "the first training sequence of each class, scaled as the model sees it",
                       lambda: pictures.examples(data, folder)))  # fmt: skip
    return wanted


def _write_page(report: Report, s: _Study) -> None:
    header, rows = pictures.split_table(s.data) if s.data is not None else ([], [])
    context = {
        "study": s.cfg.study.name,
        "data_name": s.cfg.data.name,
        "data_header": header,
        "data_rows": rows,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "metric": s.metric,
        "direction": s.direction,
        "best": s.best,
        "params": trial_params(s.best),
        "test": s.test,
        "reused": s.reused,
        "top": s.top,
        "counts": s.counts,
        "spent": s.spent,
        "diag": s.diag,
        "compared": s.compared,
        "plots": [
            (
                p,
                p.figure.to_html(
                    full_html=False,
                    include_plotlyjs=(i == 0),
                    default_width="100%",
                    config={"responsive": True},
                ),
            )
            for i, p in enumerate(report.plots)
        ],
        "skipped": report.skipped,
        "tables": [p.name for p in report.tables],
        "summary": report.summary,
    }
    report.html.write_text(_ENV.get_template("report.html.j2").render(**context))


def _finished(trials: list[FrozenTrial], direction: str) -> list[FrozenTrial]:
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return sorted(done, key=lambda t: t.value, reverse=direction == "maximize")  # type: ignore[arg-type, return-value]


def _seconds(t: FrozenTrial) -> float:
    if t.datetime_start and t.datetime_complete:
        return (t.datetime_complete - t.datetime_start).total_seconds()
    return sum(r.get("seconds", 0.0) for r in t.user_attrs.get("curve") or [])


def time_spent(trials: list[FrozenTrial], steps: int) -> dict[str, Any]:
    """Seconds in completed and pruned trials, and what pruning saved: the epochs pruned trials
    did not run, at each one's own mean epoch time."""
    spent = {"complete": 0.0, "pruned": 0.0, "failed": 0.0}
    saved_epochs, saved_seconds = 0, 0.0
    for t in trials:
        if COPIED in t.user_attrs:
            continue
        key = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(t.state, "failed")
        if t.state in (TrialState.RUNNING, TrialState.WAITING):
            continue
        spent[key] += _seconds(t)
        curve = t.user_attrs.get("curve") or []
        if t.state == TrialState.PRUNED and curve:
            left = max(0, steps - len(curve))
            saved_epochs += left
            saved_seconds += left * sum(r.get("seconds", 0.0) for r in curve) / len(curve)
    return {"seconds": spent, "saved_epochs": saved_epochs, "saved_seconds": saved_seconds}


def _summary(s: _Study) -> list[str]:
    from study.status import test_line

    cfg, best, test, spent, diag = s.cfg, s.best, s.test, s.spent, s.diag
    when = f"stored, computed {test['evaluated_at']}" if s.reused else "computed now"
    lines = [
        f"study {cfg.study.name}: " + ", ".join(f"{k} {v}" for k, v in sorted(s.counts.items())),
        f"best trial {best.number}: {cfg.study.metric}={best.value:.4f}",
        f"{test_line(test)} ({when}; evaluations: {test['evaluations']})",
    ]
    seconds = spent["seconds"]
    lines.append(
        f"time: {seconds['complete'] / 60:.1f} min in completed trials, "
        f"{seconds['pruned'] / 60:.1f} min in "
        f"pruned ones; pruning saved {spent['saved_epochs']} epochs "
        f"(~{spent['saved_seconds'] / 60:.1f} min)"
    )
    if diag is not None:
        lines.append(f"diagnosis: {diag.line()}")
        lines += [f"  try: {a}" for a in diag.advice]
    return lines


def _num(value: Any) -> str:
    """Floats to four significant digits; everything else as it is."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


_ENV = jinja2.Environment(loader=jinja2.PackageLoader("study.report", "."), autoescape=True)
_ENV.filters["num"] = _num

__all__ = ["Report", "build", "time_spent"]
