"""The report's page (``study report``): one self-contained HTML file, PNGs, tables, a summary.

What a person wants after a study: the best trial and its test score (the test split scored
once per study, :mod:`study.testset`), the top trials, where the time went and what pruning
saved, the search in pictures (history, the hand-tuned iterations, parameter importances,
parallel coordinates, slices), learning curves, a bias/variance diagnosis of the best trial with
what to try next (:mod:`study.diagnosis`), a capacity curve (train and validation metric against
hidden units and layers), and every trial exported (:mod:`study.export`).

The interactive plots are Plotly figures (Optuna's own ``optuna.visualization`` where it has
one); the PNGs are drawn with Matplotlib (``optuna.visualization.matplotlib``) from the same data.
"""

from __future__ import annotations

import datetime
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import matplotlib

matplotlib.use("Agg")  # files only, no screen

import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import optuna.visualization as ov  # noqa: E402
import optuna.visualization.matplotlib as om  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
from matplotlib import ticker  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

from study import diagnosis, export, iterations  # noqa: E402
from study.config import Config  # noqa: E402
from study.errors import StudyError  # noqa: E402
from study.report import ReportConfig  # noqa: E402
from study.storage import COPIED, BudgetedRDBStorage, best_trial, load_existing  # noqa: E402
from study.testset import test_score  # noqa: E402

log = logging.getLogger(__name__)

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


@dataclass
class Plot:
    key: str
    title: str
    caption: str
    figure: go.Figure
    png: Path


@dataclass
class Report:
    folder: Path
    html: Path
    plots: list[Plot] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


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


# --- the figures: a Plotly figure for the page, a Matplotlib PNG beside it ---------------------


def _save(ax: Any, path: Path) -> None:
    fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
    fig.set_size_inches(max(fig.get_size_inches()[0], 8), max(fig.get_size_inches()[1], 5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _learning_curves(
    trials: list[FrozenTrial], folder: Path, metric: str
) -> tuple[go.Figure, Path]:
    fig = go.Figure()
    two = metric != "val_loss"
    mfig, axes = plt.subplots(1, 2 if two else 1, figsize=(13 if two else 9, 5), squeeze=False)
    loss_ax = axes[0][0]
    for i, t in enumerate(trials):
        curve = t.user_attrs.get("curve") or []
        x = [r.get("step", r["epoch"]) for r in curve]
        color = COLORS[i % len(COLORS)]
        label = f"trial {t.number}" + (" (best)" if i == 0 else "")
        for split, dash, style in (("train", "dot", ":"), ("val", "solid", "-")):
            y = [r.get(f"{split}_loss") for r in curve]
            fig.add_trace(
                go.Scatter(
                    x=x, y=y, name=f"{label} {split} loss", line={"color": color, "dash": dash}
                )
            )
            loss_ax.plot(x, y, style, color=color, label=f"{label} {split}")
        if two:
            axes[0][1].plot(x, [r.get(metric) for r in curve], "-", color=color, label=label)
    fig.update_layout(xaxis_title="epoch (step with folds)", yaxis_title="loss")
    loss_ax.set(title="loss: train (dotted) and validation (solid)", xlabel="epoch", ylabel="loss")
    loss_ax.legend(fontsize=8, ncol=2)
    if two:
        axes[0][1].set(title=f"validation {metric.removeprefix('val_')}", xlabel="epoch")
        axes[0][1].legend(fontsize=8)
    path = folder / "learning_curves.png"
    _save(mfig, path)
    return fig, path


def _capacity(trials: list[FrozenTrial], folder: Path) -> tuple[go.Figure, Path]:
    """Train and validation error of every finished trial against its hidden units; a line joins
    each trial's two points, so the gap (variance) and the height (bias) read at a glance."""
    points = []
    measure = "error"
    for t in trials:
        curve, best = t.user_attrs.get("curve") or [], t.user_attrs.get("best_epoch")
        params = t.user_attrs.get("params_all", t.params)
        if not curve or "hidden_size" not in params:
            continue
        row = dict(curve[best] if isinstance(best, int) and best < len(curve) else curve[-1])
        row.update({f"train_{k}": v for k, v in (t.user_attrs.get("train_eval") or {}).items()})
        measure, train, val = diagnosis.errors(row)
        points.append((params["hidden_size"], params.get("num_layers", 1), train, val, t.number))
    if not points:
        raise ValueError("no finished trial records hidden units")
    fig = go.Figure()
    mfig, ax = plt.subplots(figsize=(9, 5))
    marks = "os^Dv"
    for i, n in enumerate(sorted({p[1] for p in points})):
        sub = [p for p in points if p[1] == n]
        for split, k, color in (("train", 2, COLORS[0]), ("validation", 3, COLORS[1])):
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in sub],
                    y=[p[k] for p in sub],
                    mode="markers",
                    name=f"{split}, {n} layer(s)",
                    text=[f"trial {p[4]}" for p in sub],
                    marker={"symbol": i, "color": color, "size": 9},
                )
            )
            ax.scatter(
                [p[0] for p in sub], [p[k] for p in sub], marker=marks[i % len(marks)],
                color=color, label=f"{split}, {n} layer(s)", zorder=3,
            )  # fmt: skip
    for units, _, train, val, _ in points:
        ax.plot([units, units], [train, val], color="#999", linewidth=1, zorder=2)
    fig.update_layout(xaxis_title="hidden units", yaxis_title=measure, xaxis_type="log")
    ax.set_xscale("log")
    ticks = sorted({p[0] for p in points})
    ax.set_xticks(ticks, [str(u) for u in ticks], minor=False)
    ax.minorticks_off()
    ax.set(xlabel="hidden units", ylabel=measure)
    ax.set_title("capacity: a long grey line is variance, both points high is bias")
    ax.legend(fontsize=8)
    path = folder / "capacity.png"
    _save(mfig, path)
    return fig, path


def _iterations(compared: dict[str, Any], folder: Path, metric: str) -> tuple[go.Figure, Path]:
    rows = [r for r in compared["iterations"] if r["value"] is not None]
    names = [r["name"] for r in rows]
    values = [r["value"] for r in rows]
    auto = compared.get("automatic")
    fig = go.Figure(go.Scatter(x=names, y=values, mode="lines+markers", name="iterations"))
    mfig, ax = plt.subplots(figsize=(9, 5))
    ax.plot(names, values, "o-", label="baseline and iterations")
    if auto:
        fig.add_hline(y=auto["value"], line_dash="dash", annotation_text="automatic best")
        ax.axhline(auto["value"], linestyle="--", color=COLORS[1], label="automatic search best")
    fig.update_layout(xaxis_title="iteration", yaxis_title=metric)
    ax.set(xlabel="iteration", ylabel=metric, title="hand-tuned iterations vs the search")
    ax.legend()
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    path = folder / "iterations.png"
    _save(mfig, path)
    return fig, path


def _varying(trials: list[FrozenTrial]) -> list[str]:
    """Parameters that take more than one value among the trials, in a stable order."""
    names: dict[str, set[str]] = {}
    for t in trials:
        for k, v in t.params.items():
            names.setdefault(k, set()).add(repr(v))
    return sorted(k for k, vs in names.items() if len(vs) > 1)


def _axis(trials: list[FrozenTrial], name: str) -> tuple[list[float | None], list[str], bool]:
    """A parameter as positions in [0, 1] (log where its distribution is), with tick labels."""
    values = [t.params.get(name) for t in trials]
    dist = next(t.distributions[name] for t in trials if name in t.distributions)
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        choices = list(dist.choices)
        pos = [None if v is None else choices.index(v) / max(1, len(choices) - 1) for v in values]
        return pos, [str(c) for c in choices], False
    log_scale = bool(getattr(dist, "log", False))
    lo, hi = dist.low, dist.high  # type: ignore[attr-defined]

    def scale(v: float) -> float:
        if log_scale:
            return (math.log(v) - math.log(lo)) / max(1e-12, math.log(hi) - math.log(lo))
        return (v - lo) / max(1e-12, hi - lo)

    return [None if v is None else scale(v) for v in values], [f"{lo:.3g}", f"{hi:.3g}"], True


def _parallel_png(trials: list[FrozenTrial], folder: Path, metric: str) -> Path:
    """Optuna's own Matplotlib version crowds its axes; one axis a parameter, labelled apart."""
    names = _varying(trials)
    values = [t.value for t in trials]
    lo, hi = min(values), max(values)  # type: ignore[type-var]
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * (len(names) + 1)), 5.5))
    cmap = plt.get_cmap("viridis_r")
    columns = [[(v - lo) / max(1e-12, hi - lo) for v in values]]  # type: ignore[operator]
    # Each axis: its labels, at their heights (numeric: the two ends; categorical: each choice).
    labels: list[list[tuple[float, str]]] = [[(-0.08, f"{lo:.3g}"), (1.04, f"{hi:.3g}")]]
    for n in names:
        pos, ticks, numeric = _axis(trials, n)
        columns.append(pos)  # type: ignore[arg-type]
        if numeric:
            labels.append([(-0.08, ticks[0]), (1.04, ticks[-1])])
        else:
            step = 1 / max(1, len(ticks) - 1)
            labels.append([(i * step, f" {t}") for i, t in enumerate(ticks)])
    order = sorted(range(len(trials)), key=lambda i: -values[i])  # type: ignore[operator]
    for i in order:  # the best drawn last, on top
        ys = [col[i] for col in columns]
        xs = [x for x, y in enumerate(ys) if y is not None]
        colour = cmap((values[i] - lo) / max(1e-12, hi - lo))  # type: ignore[operator]
        ax.plot(xs, [y for y in ys if y is not None], color=colour, alpha=0.8, linewidth=1.5)
    for x, marks in enumerate(labels):
        ax.axvline(x, color="#555", linewidth=0.8)
        for y, text in marks:
            inside = 0.0 <= y <= 1.0
            box = {"facecolor": "white", "alpha": 0.7, "linewidth": 0} if inside else None
            ha = "left" if inside else "center"
            ax.text(x, y, text, ha=ha, va="center", fontsize=8, bbox=box)
    ax.set_xticks(range(len(names) + 1), [metric, *names], rotation=25, ha="right")
    ax.set_yticks([])
    ax.set_ylim(-0.12, 1.1)
    ax.set_title(f"parallel coordinates (colour: {metric}; low ends at the bottom)", pad=18)
    fig.colorbar(plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(lo, hi)), ax=ax, label=metric)
    path = folder / "parallel_coordinate.png"
    _save(fig, path)
    return path


def _slices_png(trials: list[FrozenTrial], folder: Path, metric: str) -> Path:
    """One small panel a parameter, in a grid (Optuna's puts them all in one row)."""
    names = _varying(trials)
    cols = 4
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(13, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        shown = [t for t in trials if name in t.params]
        dist = shown[0].distributions[name]
        xs = [t.params[name] for t in shown]
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            xs = [str(x) for x in xs]
        ax.scatter(xs, [t.value for t in shown], c=[t.number for t in shown], cmap="Blues",
                   edgecolors="#333", linewidths=0.5)  # fmt: skip
        if getattr(dist, "log", False):
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_title(name, fontsize=10)
        ax.set_ylabel(metric, fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.remove()
    fig.suptitle("slices: the value against each parameter (darker: later trials)")
    path = folder / "slice.png"
    _save(fig, path)
    return path


def _optuna_plot(
    name: str, study: optuna.Study, folder: Path, png: Callable[[], Path] | None = None
) -> tuple[go.Figure, Path]:
    """Optuna's Plotly figure; its Matplotlib twin as the PNG unless ``png`` draws one."""
    plotly_fn: Callable[..., go.Figure] = getattr(ov, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's matplotlib plots are "experimental"
        fig = plotly_fn(study)
        if png is not None:
            return fig, png()
        ax = getattr(om, name)(study)
    path = folder / f"{name.removeprefix('plot_')}.png"
    _save(ax, path)
    return fig, path


# --- the report ---------------------------------------------------------------------------------


def build(cfg: Config, storage: BudgetedRDBStorage) -> Report:
    rc: ReportConfig = cfg.report
    study = load_existing(storage, cfg.study.name)
    trials = study.get_trials(deepcopy=False)
    direction = study.direction.name.lower()
    ranked = _finished(trials, direction)
    if not ranked:
        raise StudyError(f"study {cfg.study.name!r} has no completed trial yet; nothing to report")
    folder = Path(rc.out_dir) / cfg.study.name
    folder.mkdir(parents=True, exist_ok=True)
    report = Report(folder, folder / "report.html")
    metric = cfg.study.metric

    stored = study.user_attrs.get("test") or {}
    test = test_score(cfg, storage)  # once per study: a stored score is reused
    reused = stored.get("evaluated_at") == test.get("evaluated_at")
    best = best_trial(study)  # the best trial run here (a warm start's copies are not tested)
    top = ranked[: rc.top_k]
    diag = diagnosis.of_trial(best.user_attrs, target_error=rc.target_error, tolerance=rc.tolerance)
    # A full trial's length, as the study ran it (the settings given here may differ).
    steps = max(len(t.user_attrs.get("curve") or []) for t in ranked)
    spent = time_spent(trials, steps)

    def add(key: str, title: str, caption: str, made: Callable[[], tuple[go.Figure, Path]]) -> None:
        try:
            fig, png = made()
        except (ValueError, RuntimeError, ZeroDivisionError) as e:  # e.g. too few trials
            report.skipped.append(f"{title}: {e}")
            return
        fig.update_layout(title=title, template="plotly_white", height=460)
        report.plots.append(Plot(key, title, caption, fig, png))

    add("history", "Optimization history", "each trial's value and the best so far",
        lambda: _optuna_plot("plot_optimization_history", study, folder))  # fmt: skip
    compared = iterations.compare(trials, direction)
    if compared["iterations"]:
        add("iterations", "Baseline and hand-tuned iterations",
            "the value of each step in order, beside the best trial of the automatic search",
            lambda: _iterations(compared, folder, metric))  # fmt: skip
    add("importances", "Parameter importances", "fANOVA importance of each parameter",
        lambda: _optuna_plot("plot_param_importances", study, folder))  # fmt: skip
    add("parallel", "Parallel coordinates", "every finished trial across its parameters",
        lambda: _optuna_plot("plot_parallel_coordinate", study, folder,
                             lambda: _parallel_png(ranked, folder, metric)))  # fmt: skip
    add("slices", "Slices", "the value against each parameter",
        lambda: _optuna_plot("plot_slice", study, folder,
                             lambda: _slices_png(ranked, folder, metric)))  # fmt: skip
    add("curves", f"Learning curves of the top {len(top)} trials",
        "train (dotted) and validation loss per epoch; a widening gap is over-fitting",
        lambda: _learning_curves(top, folder, metric))  # fmt: skip
    add("capacity", "Capacity curve",
        "train and validation error at each finished trial's best epoch, by hidden units",
        lambda: _capacity(ranked, folder))  # fmt: skip

    report.tables = export.write(study, folder)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    report.summary = _summary(cfg, best, test, reused, diag, spent, counts)
    context = {
        "study": cfg.study.name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "metric": metric,
        "direction": direction,
        "best": best,
        "params": best.user_attrs.get("params_all", best.params),
        "test": test,
        "reused": reused,
        "top": top,
        "counts": counts,
        "spent": spent,
        "diag": diag,
        "compared": compared,
        "plots": [
            (p, p.figure.to_html(full_html=False, include_plotlyjs=(i == 0)))
            for i, p in enumerate(report.plots)
        ],
        "skipped": report.skipped,
        "tables": [p.name for p in report.tables],
        "summary": report.summary,
    }
    report.html.write_text(_TEMPLATE.render(**context))
    return report


def _summary(
    cfg: Config,
    best: FrozenTrial,
    test: dict[str, Any],
    reused: bool,
    diag: diagnosis.Diagnosis | None,
    spent: dict[str, Any],
    counts: dict[str, int],
) -> list[str]:
    from study.status import test_line

    when = f"stored, computed {test['evaluated_at']}" if reused else "computed now"
    lines = [
        f"study {cfg.study.name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        f"best trial {best.number}: {cfg.study.metric}={best.value:.4f}",
        f"{test_line(test)} ({when}; evaluations: {test['evaluations']})",
    ]
    s = spent["seconds"]
    lines.append(
        f"time: {s['complete'] / 60:.1f} min in completed trials, {s['pruned'] / 60:.1f} min in "
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


_ENV = jinja2.Environment(autoescape=True)
_ENV.filters["num"] = _num
_TEMPLATE = _ENV.from_string(
    """<!doctype html>
<html><head><meta charset="utf-8"><title>Study {{ study }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
.verdict { font-size: 1.3em; font-weight: bold; }
figure { margin: 1.5em 0; } figcaption { color: #555; }
.muted { color: #777; }
</style></head><body>
<h1>Study {{ study }}</h1>
<p class="muted">report written {{ created }} · {{ metric }} ({{ direction }})</p>

<h2>Best trial: {{ best.number }}</h2>
<table><tr><th class="l">validation ({{ metric }})</th><td>{{ "%.4f"|format(best.value) }}</td></tr>
{% for k, v in test.items() if k in ("accuracy", "f1", "rmse", "mae", "mape", "loss") %}
<tr><th class="l">test {{ k }}</th><td>{{ "%.4f"|format(v) }}</td></tr>{% endfor %}
<tr><th class="l">test examples</th><td>{{ test.n }}</td></tr>
</table>
<p>The test split was scored once for this study:
{% if reused %}this report reuses the score computed {{ test.evaluated_at }}{% else %}
computed now, {{ test.evaluated_at }}{% endif %} (evaluations so far: {{ test.evaluations }}).
{% if test.retrained %}The model was retrained on {{ test.retrained.train_examples }} examples
for {{ test.retrained.epochs }} epochs first.{% endif %}</p>
<table><tr><th class="l">parameter</th><th>value</th></tr>
{% for k, v in params.items() %}<tr><td class="l">{{ k }}</td><td>{{ v|num }}</td></tr>{% endfor %}
</table>

{% if diag %}<h2>Bias and variance</h2>
<p class="verdict">{{ diag.verdict }}</p>
<table><tr><th class="l">{{ diag.measure }}</th><th>value</th></tr>
<tr><td class="l">target (e.g. human level)</td><td>{{ "%.4g"|format(diag.target_error) }}</td></tr>
<tr><td class="l">training</td><td>{{ "%.4g"|format(diag.train_error) }}</td></tr>
<tr><td class="l">validation</td><td>{{ "%.4g"|format(diag.val_error) }}</td></tr>
<tr><td class="l">avoidable bias (training - target)</td>
<td>{{ "%+.4g"|format(diag.bias) }}</td></tr>
<tr><td class="l">variance (validation - training)</td>
<td>{{ "%+.4g"|format(diag.variance) }}</td></tr>
</table>
<p>Above {{ "%.4g"|format(diag.tolerance) }} counts as high. What to try next:</p>
<ul>{% for a in diag.advice %}<li>{{ a }}</li>{% endfor %}</ul>{% endif %}

<h2>Top {{ top|length }} trials</h2>
<table><tr><th>trial</th><th>{{ metric }}</th><th class="l">label</th><th>epochs</th>
{% for k in params %}<th>{{ k }}</th>{% endfor %}</tr>
{% for t in top %}<tr><td>{{ t.number }}</td><td>{{ "%.4f"|format(t.value) }}</td>
<td class="l">{{ t.user_attrs.get("iteration", t.user_attrs.get("copied_from", "")) }}</td>
<td>{{ (t.user_attrs.get("curve") or [])|length }}</td>
{% for k in params %}<td>{{ t.user_attrs.get("params_all", t.params).get(k, "")|num }}</td>
{% endfor %}
</tr>{% endfor %}</table>

<h2>Trials and time</h2>
<table><tr>{% for k in counts %}<th>{{ k }}</th>{% endfor %}</tr>
<tr>{% for v in counts.values() %}<td>{{ v }}</td>{% endfor %}</tr></table>
<p>{{ "%.1f"|format(spent.seconds.complete / 60) }} min in completed trials,
{{ "%.1f"|format(spent.seconds.pruned / 60) }} min in pruned trials; pruning saved
{{ spent.saved_epochs }} epochs (about {{ "%.1f"|format(spent.saved_seconds / 60) }} min).</p>

{% for p, div in plots %}<figure id="{{ p.key }}"><h2>{{ p.title }}</h2>{{ div|safe }}
<figcaption>{{ p.caption }} · <a href="{{ p.png.name }}">{{ p.png.name }}</a></figcaption>
</figure>{% endfor %}
{% if skipped %}<h2>Not drawn</h2><ul>{% for s in skipped %}<li>{{ s }}</li>{% endfor %}</ul>
{% endif %}
<h2>Tables</h2>
<p>{% for t in tables %}<a href="{{ t }}">{{ t }}</a> {% endfor %}</p>
<h2>Summary</h2><pre>{{ summary|join("\\n") }}</pre>
</body></html>
"""
)

__all__ = ["Report", "build", "time_spent"]
