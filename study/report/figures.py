"""The report's figures: a Plotly figure for the page, and a Matplotlib PNG of the same data.

The interactive plots are Optuna's own (``optuna.visualization``) where it has one, otherwise
drawn here (learning curves, the capacity curve, the hand-tuned iterations); the PNGs come from
``optuna.visualization.matplotlib`` or, where its version crowds its axes, are drawn here.
Each function writes its PNG into the report's folder and returns ``(figure, png path)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import optuna
import optuna.visualization as ov
import optuna.visualization.matplotlib as om
import plotly.graph_objects as go
from matplotlib import ticker
from optuna.trial import FrozenTrial

from study import diagnosis
from study.storage import trial_params

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def save_png(ax: Any, path: Path) -> None:
    fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
    fig.set_size_inches(max(fig.get_size_inches()[0], 8), max(fig.get_size_inches()[1], 5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def learning_curves(trials: list[FrozenTrial], folder: Path, metric: str) -> tuple[go.Figure, Path]:
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
    steps = max((len(t.user_attrs.get("curve") or []) for t in trials), default=1)
    whole_numbers(fig, steps, axes=[ax for row in axes for ax in row])
    loss_ax.set(title="loss: train (dotted) and validation (solid)", xlabel="epoch", ylabel="loss")
    loss_ax.legend(fontsize=8, ncol=2)
    if two:
        axes[0][1].set(title=f"validation {metric.removeprefix('val_')}", xlabel="epoch")
        axes[0][1].legend(fontsize=8)
    path = folder / "learning_curves.png"
    save_png(mfig, path)
    return fig, path


def capacity(trials: list[FrozenTrial], folder: Path) -> tuple[go.Figure, Path]:
    """Train and validation error of every finished trial against its hidden units; a line joins
    each trial's two points, so the gap (variance) and the height (bias) read at a glance."""
    points = []
    measure = "error"
    for t in trials:
        curve, best = t.user_attrs.get("curve") or [], t.user_attrs.get("best_epoch")
        params = trial_params(t)
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
    ticks = ticks[:: math.ceil(len(ticks) / 8)]  # at most 8 labels: they overlap beyond
    ax.set_xticks(ticks, [str(u) for u in ticks], minor=False)
    ax.minorticks_off()
    ax.set(xlabel="hidden units", ylabel=measure)
    ax.set_title("capacity: a long grey line is variance, both points high is bias")
    ax.legend(fontsize=8)
    path = folder / "capacity.png"
    save_png(mfig, path)
    return fig, path


def iterations(compared: dict[str, Any], folder: Path, metric: str) -> tuple[go.Figure, Path]:
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
    save_png(mfig, path)
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


def parallel_png(trials: list[FrozenTrial], folder: Path, metric: str) -> Path:
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
    save_png(fig, path)
    return path


def slices_png(trials: list[FrozenTrial], folder: Path, metric: str) -> Path:
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
    save_png(fig, path)
    return path


def whole_numbers(fig: go.Figure, count: int, axes: list[Any]) -> None:
    """Trials and epochs are counted: x ticks on whole numbers only (no "trial 0.5"), at most
    about ten of them, on the Plotly figure and on Matplotlib's axes."""
    fig.update_xaxes(tick0=0, dtick=max(1, math.ceil(count / 10)))
    for ax in axes:
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, nbins=10))


def optuna_plot(
    name: str,
    study: optuna.Study,
    folder: Path,
    metric: str,
    png: Callable[[], Path] | None = None,
) -> tuple[go.Figure, Path]:
    """Optuna's Plotly figure; its Matplotlib twin as the PNG unless ``png`` draws one. The
    value is named after the study's metric, not Optuna's "Objective Value"."""
    plotly_fn: Callable[..., go.Figure] = getattr(ov, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's matplotlib plots are "experimental"
        fig = plotly_fn(study, target_name=metric)
        history = name == "plot_optimization_history"
        if png is not None:
            return fig, png()
        ax = getattr(om, name)(study, target_name=metric)
    if history:
        whole_numbers(fig, len(study.trials), axes=[ax])
    path = folder / f"{name.removeprefix('plot_')}.png"
    save_png(ax, path)
    return fig, path
