"""Plotly figures for the pages: plain functions of data, so they are tested without Streamlit.

One colour per emotion everywhere (bars, boxes drawn on photos, timelines), so a reader learns it once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import ImageColor

EMOTION_COLORS: dict[str, str] = {
    "angry": "#d62728",
    "disgust": "#2ca02c",
    "fear": "#9467bd",
    "happy": "#f2a900",
    "sad": "#1f77b4",
    "surprise": "#17becf",
    "neutral": "#7f7f7f",
    "contempt": "#8c564b",
}
"""Hex colour per canonical class name (``core.labels``)."""

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), template="plotly_white", font=dict(size=13))


def color_of(name: str) -> str:
    return EMOTION_COLORS.get(name, "#444444")


def rgb_of(name: str) -> tuple[int, int, int]:
    """The emotion colour as an ``(r, g, b)`` tuple (for OpenCV drawing on RGB images)."""
    return ImageColor.getrgb(color_of(name))


def _hbars(values: list, names: Sequence[str], text: list[str], hover: str, title: str) -> go.Figure:
    """Horizontal bars in the emotion colours, the first name on top."""
    names = list(names)
    fig = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            marker_color=[color_of(n) for n in names],
            text=text,
            textposition="outside",
            hovertemplate=hover,
        )
    )
    fig.update_layout(**_LAYOUT, title=title or None, height=60 + 26 * len(names), showlegend=False)
    fig.update_yaxes(autorange="reversed")
    return fig


def probability_bar(probs: Sequence[float], class_names: Sequence[str], title: str = "") -> go.Figure:
    """Horizontal bars of class probabilities, classes in canonical order top to bottom."""
    values = [float(p) for p in probs]
    fig = _hbars(values, class_names, [f"{v:.0%}" for v in values], "%{y}: %{x:.3f}<extra></extra>", title)
    fig.update_xaxes(range=[0, 1.15], tickformat=".0%", showgrid=True)
    return fig


def votes_bar(counts: Sequence[int], names: Sequence[str], title: str = "") -> go.Figure:
    """Horizontal bars of annotator votes per class (FERPlus: 10 people per image), in the given order."""
    values = [int(v) for v in counts]
    total = max(sum(values), 1)
    fig = _hbars(values, names, [str(v) if v else "" for v in values], "%{y}: %{x} votes<extra></extra>", title)
    fig.update_xaxes(range=[0, total * 1.15], dtick=max(1, total // 5), showgrid=True)
    return fig


def confusion_cells(counts: Sequence[Sequence[int]], class_names: Sequence[str], normalized: bool = True) -> go.Figure:
    """Confusion matrix (row = true class, column = predicted) as one square marker per cell, count written in it.

    A scatter, not a heatmap, because Streamlit's ``on_select`` hears scatter selections but not heatmap clicks;
    each point's ``customdata = [true, pred, count, row rate]`` names its cell. ``normalized`` colours by the
    row rate so rare classes stay readable.
    """
    cm = np.asarray(counts, dtype=float)
    names = list(class_names)
    c = len(names)
    rows = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(rows > 0, cm / np.where(rows > 0, rows, 1), 0.0)
    t, p = np.divmod(np.arange(c * c), c)
    colour = (rate if normalized else cm)[t, p]
    text = [
        f"{int(cm[i, j])}<br>{rate[i, j]:.0%}" if normalized else f"{int(cm[i, j])}" for i, j in zip(t, p, strict=True)
    ]
    size = max(24, min(64, 520 // max(c, 1)))
    fig = go.Figure(
        go.Scatter(
            x=[names[j] for j in p],
            y=[names[i] for i in t],
            mode="markers+text",
            text=text,
            textfont=dict(color=["white" if v > 0.55 * (colour.max() or 1) else "#1a202c" for v in colour]),
            customdata=np.column_stack([t, p, cm[t, p], rate[t, p]]).tolist(),
            hovertemplate="true %{y} → predicted %{x}<br>%{customdata[2]:.0f} images (%{customdata[3]:.1%} of row)"
            "<br>click to open them in the error explorer<extra></extra>",
            marker=dict(
                symbol="square",
                size=size,
                color=colour.tolist(),
                colorscale="Blues",
                cmin=0,
                cmax=1 if normalized else max(float(cm.max()), 1.0),
                line=dict(color="#cbd5e0", width=1),
                colorbar=dict(title="row rate" if normalized else "count"),
            ),
            selected=dict(marker=dict(opacity=1.0)),
            unselected=dict(marker=dict(opacity=1.0)),
        )
    )
    fig.update_layout(
        **_LAYOUT,
        height=140 + (size + 8) * c,
        title="Confusion matrix (rows: true class); click a cell to review its images",
        clickmode="event+select",
        dragmode=False,
    )
    fig.update_xaxes(title="predicted", side="bottom", categoryorder="array", categoryarray=names, showgrid=False)
    fig.update_yaxes(title="true", categoryorder="array", categoryarray=names, autorange="reversed", showgrid=False)
    return fig


def cell_of(selection: dict | None) -> tuple[int, int] | None:
    """The ``(true, pred)`` cell a :func:`confusion_cells` selection points at (its first point), else None."""
    points = ((selection or {}).get("selection") or {}).get("points") or []
    if not points:
        return None
    data = points[0].get("customdata")
    if not data or len(data) < 2:
        return None
    return int(data[0]), int(data[1])


def roc_figure(roc: Sequence[dict]) -> go.Figure:
    """One-vs-rest ROC curves from a results JSON's ``roc`` list (classes without a curve are skipped)."""
    fig = go.Figure()
    for entry in roc:
        if not entry.get("fpr"):
            continue
        auc = entry.get("auc")
        label = f"{entry['name']} (AUC {auc:.3f})" if auc is not None else entry["name"]
        fig.add_trace(
            go.Scatter(
                x=entry["fpr"], y=entry["tpr"], mode="lines", name=label, line=dict(color=color_of(entry["name"]))
            )
        )
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(color="#bbb", dash="dash")))
    fig.update_layout(**_LAYOUT, height=460, title="ROC, one class vs the rest")
    fig.update_xaxes(title="false-positive rate", range=[0, 1])
    fig.update_yaxes(title="true-positive rate", range=[0, 1.02])
    return fig


def reliability_figure(reliability: dict, ece: float | None = None) -> go.Figure:
    """Reliability diagram: accuracy vs mean confidence per bin, bar width = bin, with the diagonal."""
    bins = [b for b in reliability.get("bins", []) if b.get("count")]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=[(b["lo"] + b["hi"]) / 2 for b in bins],
            y=[b["accuracy"] for b in bins],
            width=[b["hi"] - b["lo"] for b in bins],
            name="accuracy",
            marker_color="#2b6cb0",
            customdata=[[b["count"], b["confidence"]] for b in bins],
            hovertemplate="confidence %{customdata[1]:.2f}: accuracy %{y:.2f} (%{customdata[0]} images)<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[b["confidence"] for b in bins],
            y=[b["confidence"] for b in bins],
            mode="markers",
            name="mean confidence",
            marker=dict(color="#d62728", symbol="line-ew-open", size=18, line=dict(width=3)),
        )
    )
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration", line=dict(color="#bbb", dash="dash"))
    )
    title = "Reliability diagram" + (f" (ECE {ece:.3f})" if ece is not None else "")
    fig.update_layout(**_LAYOUT, height=420, title=title, bargap=0.02)
    fig.update_xaxes(title="top-class confidence", range=[0, 1])
    fig.update_yaxes(title="accuracy", range=[0, 1.02])
    return fig


def _whiskers(up, down) -> dict:
    """Asymmetric error bars ``up`` and ``down`` from the value (an interval that misses its value draws none)."""
    return dict(type="data", symmetric=False, array=up.clip(lower=0), arrayminus=down.clip(lower=0))


def per_class_figure(table) -> go.Figure:
    """Grouped bars of per-class precision / recall / F1 with bootstrap CI whiskers (``table`` from
    :func:`dashboard.evaluation.per_class_table`)."""
    fig = go.Figure()
    for metric, color in (("precision", "#90cdf4"), ("recall", "#3182ce"), ("f1", "#1a365d")):
        value = table[metric].astype(float)
        fig.add_trace(
            go.Bar(
                x=table["class"],
                y=value,
                name=metric,
                marker_color=color,
                error_y=_whiskers(
                    table[f"{metric}_hi"].astype(float) - value, value - table[f"{metric}_lo"].astype(float)
                ),
            )
        )
    fig.update_layout(**_LAYOUT, barmode="group", height=380, title="Per class, with 95 % bootstrap intervals")
    fig.update_yaxes(range=[0, 1.05])
    return fig


def robustness_figure(table, metric: str = "accuracy", reference: float | None = None) -> go.Figure:
    """Bars of ``accuracy`` or ``retention`` per corruption condition with their CI whiskers, one colour per
    family (``table`` from :func:`dashboard.robustness.robustness_table`); ``reference`` draws a dashed line
    (the clean accuracy, or the retention goal)."""
    if metric not in ("accuracy", "retention"):
        raise ValueError(f"unknown metric {metric!r}; choose one of ['accuracy', 'retention']")
    lo_col, hi_col = ("ci_low", "ci_high") if metric == "accuracy" else ("retention_ci_low", "retention_ci_high")
    fig = go.Figure()
    for family, rows in table.groupby("family", sort=False):
        value = rows[metric].astype(float)
        up, down = (rows[hi_col].astype(float) - value).fillna(0), (value - rows[lo_col].astype(float)).fillna(0)
        fig.add_trace(go.Bar(x=rows["condition"], y=value, name=family, error_y=_whiskers(up, down)))
    if reference is not None:
        fig.add_hline(y=reference, line_dash="dash", line_color="#444444")
    title = "Accuracy per condition (95 % bootstrap CI)" if metric == "accuracy" else "Retention: corrupted / clean"
    fig.update_layout(**_LAYOUT, height=420, title=title, showlegend=True)
    fig.update_yaxes(range=[0, max(1.05, float(table[metric].max()) + 0.05)] if len(table) else [0, 1.05])
    return fig


def timeline_figure(frame, class_names: Sequence[str], track: int) -> go.Figure:
    """Emotion probabilities of one face track over time, one line per class.

    ``frame`` holds that track's rows of the engine's video DataFrame (one probability column per class).
    """
    frame = frame.sort_values("time_s")
    fig = go.Figure()
    for name in class_names:
        if name in frame:
            fig.add_trace(
                go.Scatter(
                    x=frame["time_s"],
                    y=frame[name],
                    mode="lines",
                    name=f"track {int(track)}: {name}",
                    legendgroup=name,
                    line=dict(color=color_of(name), dash="solid"),
                )
            )
    title = f"Track {track}: emotion probabilities over time (smoothed)"
    fig.update_layout(**_LAYOUT, height=380, title=title, hovermode="x unified")
    fig.update_xaxes(title="time (s)")
    fig.update_yaxes(title="probability", range=[0, 1])
    return fig
