"""Pictures of the data and of the model's answers, for the top of the report.

The data as the study split it: how many examples of each class each split holds (for text, also
how much of each split the vocabulary knows), how long the sequences are, one example of each
class as the model sees it; for forecasting, the series with its training, validation and test
parts. Then the tested model's own answers, stored on the study when the test split was scored
(:mod:`study.testset`): a confusion matrix, or the forecasts against the actual values.

Each figure function returns ``(Plotly figure, PNG path)`` as :mod:`study.report.figures` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go

from study.data import SequenceData
from study.data.forecast import SeriesData
from study.report.figures import COLORS, save_png

#: At most this many classes get an example drawn (each its own colour).
EXAMPLE_CLASSES = 10

_SPLITS = (("train", "train"), ("val", "validation"), ("test", "test"))


def split_table(data: SequenceData) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of the data's table: examples per class and split (and, for text,
    the share of each split's tokens the vocabulary knows); for forecasting, the steps and
    forecast origins of each part."""
    if isinstance(data, SeriesData):
        info = data.info
        return ["part", "steps", "forecast origins"], [
            ["train", info["train"], ""],
            ["validation", info["val"], info["val_origins"]],
            ["test", info["test"], info["test_origins"]],
        ]
    header = ["class", *(label for _, label in _SPLITS)]
    k = data.n_classes
    counts = [np.bincount(getattr(data, s).y.cpu().numpy(), minlength=k) for s, _ in _SPLITS]
    rows: list[list[Any]] = [[c, *(int(n[i]) for n in counts)] for i, c in enumerate(data.classes)]
    rows.append(["all", *(int(n.sum()) for n in counts)])
    if data.vocab_size:
        from study.data.text import UNK

        known = []
        for s, _ in _SPLITS:
            part = getattr(data, s)
            valid = np.arange(part.x.shape[1])[None, :] < part.lengths.numpy()[:, None]
            tokens = part.x.cpu().numpy()[valid]
            known.append(f"{(tokens != UNK).mean():.1%}" if tokens.size else "")
        rows.append(["tokens in the vocabulary", *known])
    return header, rows


def lengths(data: SequenceData, folder: Path) -> tuple[go.Figure, Path]:
    """How long the sequences of each split are (each split's share, so sizes do not hide
    shapes)."""
    unit = "tokens" if data.vocab_size else "steps"
    fig = go.Figure()
    _, ax = plt.subplots(figsize=(9, 4.5))
    for i, (s, label) in enumerate(_SPLITS):
        n = getattr(data, s).lengths.numpy()
        fig.add_trace(go.Histogram(x=n, name=label, opacity=0.6, marker_color=COLORS[i],
                                   histnorm="percent"))  # fmt: skip
        ax.hist(n, bins=30, alpha=0.6, label=label, color=COLORS[i],
                weights=np.full(len(n), 100 / max(1, len(n))))  # fmt: skip
    share = "% of the split's sequences"
    fig.update_layout(barmode="overlay")
    axes = (f"{unit} per sequence", share)
    return _done(fig, ax, axes, f"{unit} per sequence", folder / "data_lengths.png")


def examples(data: SequenceData, folder: Path) -> tuple[go.Figure, Path]:
    """The first training sequence of each class (its first channel), scaled as the model
    sees it."""
    if data.vocab_size:
        raise ValueError("text has no series to draw")
    train = data.train
    y = train.y.cpu().numpy()
    fig = go.Figure()
    _, ax = plt.subplots(figsize=(9, 4.5))
    for k, name in enumerate(data.classes[:EXAMPLE_CLASSES]):
        found = np.flatnonzero(y == k)
        if not len(found):
            continue
        i = int(found[0])
        values = train.x[i, : int(train.lengths[i]), 0].cpu().numpy()
        fig.add_trace(go.Scatter(y=values, mode="lines", name=f"class {name}"))
        ax.plot(values, color=plt.get_cmap("tab10")(k % 10), label=f"class {name}", linewidth=1)
    channel = " (first channel)" if data.n_features > 1 else ""
    axes = ("step", f"scaled value{channel}")
    return _done(fig, ax, axes, "one training example per class", folder / "data_examples.png")


def series(data: SeriesData, folder: Path) -> tuple[go.Figure, Path]:
    """The series (the first few) with its training, validation and test parts shaded."""
    values = data.values
    shown = min(values.shape[1], 4)
    fig = go.Figure()
    _, ax = plt.subplots(figsize=(10, 4.5))
    for j in range(shown):
        name = f"series {j}" if values.shape[1] > 1 else "series"
        fig.add_trace(go.Scatter(y=values[:, j], mode="lines", name=name))
        ax.plot(values[:, j], linewidth=1, label=name)
    parts = (
        ("validation", data.train_end, data.val_end, "#ff7f0e"),
        ("test", data.val_end, len(values), "#2ca02c"),
    )
    for label, lo, hi, color in parts:
        fig.add_vrect(x0=lo - 0.5, x1=hi - 0.5, fillcolor=color, opacity=0.12, line_width=0,
                      annotation_text=label, annotation_position="top left")  # fmt: skip
        ax.axvspan(lo - 0.5, hi - 0.5, color=color, alpha=0.12, label=label)
    title = "the series: training, validation and test parts"
    return _done(fig, ax, ("step", "value"), title, folder / "data_series.png")


def confusion(answers: dict[str, Any], folder: Path) -> tuple[go.Figure, Path]:
    """The test split's confusion matrix: a row per true class, a column per predicted one."""
    classes = [str(c) for c in answers["classes"]]
    counts = np.array(answers["confusion"])
    fig = go.Figure(
        go.Heatmap(
            z=counts,
            x=classes,
            y=classes,
            colorscale="Blues",
            text=counts,
            texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
        )
    )
    fig.update_layout(xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed")
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    size = max(5.0, 0.45 * len(classes) + 2)
    mfig, ax = plt.subplots(figsize=(size + 1, size))
    ax.imshow(counts, cmap="Blues")
    for (i, j), n in np.ndenumerate(counts):
        dark = n > counts.max() / 2
        ax.text(j, i, str(n), ha="center", va="center", color="white" if dark else "black",
                fontsize=8)  # fmt: skip
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title="test split: true class against predicted")
    path = folder / "test_confusion.png"
    save_png(mfig, path)
    return fig, path


def forecasts(answers: dict[str, Any], folder: Path) -> tuple[go.Figure, Path]:
    """Each test origin's forecast (the first series) over the actual values."""
    start = int(answers["start"])
    actual = np.array(answers["actual"])[:, 0]
    steps = np.arange(start, start + len(actual))
    fig = go.Figure(go.Scatter(x=steps, y=actual, mode="lines", name="actual",
                               line={"color": "#222"}))  # fmt: skip
    _, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(steps, actual, color="#222", linewidth=1.2, label="actual")
    forecast = np.array(answers["forecast"])[:, :, 0]  # (origins, horizon)
    for k, (origin, path) in enumerate(zip(answers["origins"], forecast, strict=True)):
        x = np.arange(origin, origin + len(path))
        first = k == 0
        fig.add_trace(go.Scatter(
            x=x, y=path, mode="lines+markers" if len(path) == 1 else "lines",
            name="forecast", legendgroup="forecast", showlegend=first,
            line={"color": COLORS[3]}, opacity=0.7,
            hovertemplate=f"from origin {origin}: %{{y:.4g}}<extra></extra>",
        ))  # fmt: skip
        ax.plot(x, path, "-" if len(path) > 1 else "o", color=COLORS[3], alpha=0.7,
                label="forecast (one line per origin)" if first else None)  # fmt: skip
    title = "test split: forecasts against the actual values"
    return _done(fig, ax, ("step", "value"), title, folder / "test_forecasts.png")


def _done(
    fig: go.Figure, ax: Any, axes: tuple[str, str], title: str, png: Path
) -> tuple[go.Figure, Path]:
    """Both figures labelled alike (x and y titles), the legend drawn, the PNG written."""
    fig.update_layout(xaxis_title=axes[0], yaxis_title=axes[1])
    ax.set(xlabel=axes[0], ylabel=axes[1], title=title)
    ax.legend(fontsize=8)
    save_png(ax.figure, png)
    return fig, png
