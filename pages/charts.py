"""Plotly figures the pages draw: data in (frames, matrices), figure out; no Streamlit here
(``show`` draws through the page container it is handed, with the chart's text alternative)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def candlestick_figure(rows: pd.DataFrame, ticker: str):
    """One ticker's candles with the SMA 20/50/200 overlays (rebuilt from the stored
    ``sma_ratio_n`` features: SMA = close / (1 + ratio)), volume, RSI(14) and the MACD
    histogram."""
    figure = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.55, 0.15, 0.15, 0.15],
        vertical_spacing=0.02,
    )
    figure.add_candlestick(
        x=rows["date"],
        open=rows["open"],
        high=rows["high"],
        low=rows["low"],
        close=rows["close"],
        name=ticker,
        row=1,
        col=1,
    )
    for window in (20, 50, 200):
        figure.add_scatter(
            x=rows["date"],
            y=rows["close"] / (1 + rows[f"sma_ratio_{window}"]),
            name=f"SMA {window}",
            line={"width": 1},
            row=1,
            col=1,
        )
    figure.add_bar(x=rows["date"], y=rows["volume"], name="volume", row=2, col=1)
    # The feature is stored in [0, 1] (core.market.features.rsi); the chart reads it on the
    # textbook 0-100 scale of its 30 / 70 guides.
    figure.add_scatter(x=rows["date"], y=100 * rows["rsi_14"], name="RSI 14", row=3, col=1)
    for level in (30, 70):
        figure.add_hline(y=level, line={"dash": "dot", "color": "grey"}, row=3, col=1)
    figure.update_yaxes(range=[0, 100], row=3, col=1)
    figure.add_bar(x=rows["date"], y=rows["macd_hist"], name="MACD histogram", row=4, col=1)
    figure.update_xaxes(rangeslider_visible=False)
    for row, title in enumerate(("price", "volume", "RSI", "MACD"), start=1):
        figure.update_yaxes(title_text=title, row=row, col=1)
    return figure.update_layout(
        title=f"{ticker}: daily prices with SMA 20/50/200, volume, RSI 14 and MACD",
        height=680,
        uirevision=ticker,
    )


def confusion_figure(confusion: list[list[int]], class_names: tuple[str, ...], title: str):
    """Counts with row shares in the hover; rows are the actual class."""
    counts = np.asarray(confusion)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure = px.imshow(
        counts,
        x=list(class_names),
        y=list(class_names),
        text_auto=True,
        color_continuous_scale="Blues",
        labels={"x": "predicted", "y": "actual", "color": "rows"},
        title=title,
    )
    figure.update_traces(
        customdata=shares, hovertemplate="actual %{y}, predicted %{x}: %{z} (%{customdata:.0%})"
    )
    return figure.update_layout(height=340, coloraxis_showscale=False)


def scatter_figure(frame: pd.DataFrame, *, x: str, y: str, color: str, title: str):
    """Predicted against actual with the identity line."""
    figure = px.scatter(frame, x=x, y=y, color=color, opacity=0.5, title=title, height=380)
    low = float(np.nanmin(frame[[x, y]].to_numpy()))
    high = float(np.nanmax(frame[[x, y]].to_numpy()))
    figure.add_shape(
        type="line", x0=low, y0=low, x1=high, y1=high, line={"dash": "dot", "color": "grey"}
    )
    return figure


def ic_figure(daily: pd.DataFrame, window: int = 21):
    """Daily IC as bars and its rolling mean as a line."""
    figure = go.Figure()
    figure.add_bar(x=daily["date"], y=daily["ic"], name="daily IC", opacity=0.4)
    figure.add_scatter(
        x=daily["date"],
        y=daily["ic"].rolling(window, min_periods=1).mean(),
        name=f"{window}-day mean",
    )
    return figure.update_layout(title="Information coefficient over time", height=320)


def strategy_figure(curves: dict[str, pd.DataFrame]):
    """Cumulative return (top) and drawdown (bottom) per predictor."""
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.05
    )
    for index, (name, curve) in enumerate(curves.items()):
        colour = px.colors.qualitative.Plotly[index % 10]
        style = {"color": colour}
        figure.add_scatter(
            x=curve["date"],
            y=np.expm1(curve["cumulative"]),
            name=name,
            line=style,
            legendgroup=name,
            row=1,
            col=1,
        )
        figure.add_scatter(
            x=curve["date"],
            y=np.expm1(curve["drawdown"]),
            name=name,
            line=style,
            legendgroup=name,
            showlegend=False,
            row=2,
            col=1,
        )
    figure.update_yaxes(title_text="cumulative return", tickformat=".0%", row=1, col=1)
    figure.update_yaxes(title_text="drawdown", tickformat=".0%", row=2, col=1)
    return figure.update_layout(title="Long/short strategy after costs", height=460)


def attention_figures(weights: pd.DataFrame, labels: list[str]):
    """Heatmap of samples x input steps and the mean weight per step, both read against
    uniform attention (1/T): the heatmap's colours diverge from 1/T (white), the bars stand
    beside a dashed 1/T line, so weights of 0.081-0.085 at T = 12 look like the noise they
    are."""
    steps = [f"t-{len(weights.columns) - 1 - i}" for i in range(len(weights.columns))]
    values = weights.to_numpy()
    uniform = 1.0 / max(len(steps), 1)
    reach = max(float(np.nanmax(np.abs(values - uniform))) if values.size else 0.0, 1e-6)
    heatmap = px.imshow(
        values,
        x=steps,
        y=labels,
        aspect="auto",
        color_continuous_scale="RdBu_r",
        color_continuous_midpoint=uniform,
        range_color=[uniform - reach, uniform + reach],
        labels={"x": "input step", "y": "sample", "color": "weight"},
        title=f"Attention per sample (white: uniform, 1/{len(steps)} = {uniform:.3f})",
    ).update_layout(height=420)
    mean = px.bar(
        x=steps,
        y=weights.mean().to_numpy(),
        labels={"x": "input step", "y": "mean weight"},
        title="Mean attention per step against uniform (dashed)",
    ).update_layout(height=300)
    mean.add_hline(y=uniform, line={"dash": "dash", "color": "grey"})
    return heatmap, mean


def importance_figure(importance: dict[str, float]):
    frame = pd.DataFrame({"group": list(importance), "rise in MSE": list(importance.values())})
    return px.bar(
        frame,
        x="group",
        y="rise in MSE",
        title="Context group importance (MSE rise when the group is shuffled)",
        height=320,
    )


GATES_SEPARATED = 0.5
"""Input gates tell something when the lasso has separated the inputs: the smallest scale
below this share of the largest."""


def gates_alike(gates: dict[str, float]) -> str | None:
    """Why the input gates are not worth a chart (every scale shrunk alike), or None when
    they single out some inputs."""
    scales = [abs(v) for v in gates.values()]
    low, high = min(scales), max(scales)
    if high > 0 and low < GATES_SEPARATED * high:
        return None
    return (
        f"Input gates: all {len(scales)} learned feature scales lie between {low:.2f} and "
        f"{high:.2f} (each started at 1). The L1 penalty shrank every input alike, so the "
        "gates single out no feature and are not charted."
    )


def gates_figure(gates: dict[str, float], most: int = 15):
    """The largest learned input gates of a dual tower (``report['input_gates']``)."""
    top = list(gates.items())[:most]
    frame = pd.DataFrame({"feature": [n for n, _ in top], "scale": [v for _, v in top]})
    return px.bar(
        frame,
        x="feature",
        y="scale",
        title=f"Input gates: the {len(top)} largest of {len(gates)} learned feature scales",
        height=320,
    )


def embedding_figure(frame: pd.DataFrame, tower: str, label: str):
    return px.scatter(
        frame,
        x=f"{tower}_pc1",
        y=f"{tower}_pc2",
        color=label,
        opacity=0.6,
        title=f"{tower.capitalize()} tower embedding (first two principal components)",
        height=380,
    )


def parallel_figure(overview: pd.DataFrame, metric: str, most: int = 8):
    """The metric against the settings that differ across runs (numeric config values every
    run has, up to ``most`` of them, and the model when runs differ in it)."""
    settings = [
        column
        for column in overview.columns
        if column.startswith(("model.", "training."))
        and pd.api.types.is_numeric_dtype(overview[column])
        and overview[column].notna().all()
        and overview[column].nunique() > 1
    ][:most]
    dimensions = [{"label": "run", "values": overview["run"]}]
    if overview["model"].nunique() > 1:
        codes, names = pd.factorize(overview["model"])
        dimensions.append(
            {
                "label": "model",
                "values": codes,
                "tickvals": list(range(len(names))),
                "ticktext": list(names),
            }
        )
    dimensions += [{"label": c.split(".")[-1], "values": overview[c]} for c in settings]
    dimensions.append({"label": metric, "values": overview[metric]})
    line = {"color": overview[metric], "colorscale": "Viridis", "showscale": True}
    figure = go.Figure(go.Parcoords(line=line, dimensions=dimensions))
    return figure.update_layout(title=f"Settings against {metric}", height=420)


SPLIT_COLOURS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c"}
"""One colour per data split on every page: training blue, validation orange, test green."""

METRIC_NAMES = {
    "total": "total loss",
    "orthogonality": "orthogonality penalty",
    "magnitude": "embedding magnitude penalty",
    "grad_norm": "gradient norm",
    "lr": "learning rate",
    "seconds": "seconds per epoch",
}
METRIC_KINDS = {"mse": "MSE", "ce": "cross-entropy", "corr": "correlation", "acc": "accuracy"}


def metric_title(name: str) -> str:
    """'mse_7d' -> '7-day MSE', 'ce_30d' -> '30-day cross-entropy', 'ndcg@10' -> 'NDCG@10'."""
    if name in METRIC_NAMES:
        return METRIC_NAMES[name]
    kind, _, horizon = name.rpartition("_")
    if kind in METRIC_KINDS and horizon.endswith("d") and horizon[:-1].isdigit():
        return f"{horizon[:-1]}-day {METRIC_KINDS[kind]}"
    if "@" in name:
        measure, _, k = name.partition("@")
        return f"{measure.upper() if measure == 'ndcg' else measure}@{k}"
    return name.replace("_", " ")


def curves_figure(curves: pd.DataFrame, *, title: str, wrap: int = 4, height: int | None = None):
    """Per-epoch curves (epoch, split, name, value), one panel per metric titled in words,
    train and validation in their page-wide colours, each panel on its own scale; 220 px of
    height per row of panels unless ``height`` says otherwise."""
    rows = -(-curves["name"].nunique() // wrap)
    height = height or 120 + 220 * rows
    figure = px.line(
        curves.assign(metric=curves["name"].map(metric_title)),
        x="epoch",
        y="value",
        color="split",
        facet_col="metric",
        facet_col_wrap=wrap,
        facet_row_spacing=0.5 / max(rows, 1) * 0.25,
        color_discrete_map=SPLIT_COLOURS,
        labels={"split": "data", "value": "", "epoch": "epoch"},
        title=title,
        height=height,
    )
    figure.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    return figure.update_yaxes(matches=None, showticklabels=True)


def forecast_figure(forecasts: pd.DataFrame):
    """Each ticker's score at each horizon with its band (the run's test errors)."""
    figure = go.Figure()
    for h, rows in forecasts.groupby("horizon", sort=True):
        figure.add_scatter(
            x=rows["ticker"],
            y=rows["score"],
            mode="markers",
            name=f"{h}-day score",
            error_y={
                "type": "data",
                "symmetric": False,
                "array": rows["band_high"] - rows["score"],
                "arrayminus": rows["score"] - rows["band_low"],
            },
        )
    as_of = str(forecasts["as_of"].iloc[0])
    return figure.update_layout(
        title=f"Forecast as of {as_of}: score per ticker with its band", height=360
    )


def live_figure(daily: pd.DataFrame, *, low: float | None, high: float | None, horizon: str):
    """The live rank IC per as-of date beside the backtest's 95 % interval (a band), and the
    long/short forward return of each as-of date's forecasts (bars, right axis)."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_bar(
        x=daily["as_of"],
        y=daily["long_short"],
        name="long/short forward return",
        opacity=0.35,
        secondary_y=True,
    )
    figure.add_scatter(
        x=daily["as_of"], y=daily["rank_ic"], mode="lines+markers", name="live rank IC"
    )
    running = daily["rank_ic"].expanding().mean()
    figure.add_scatter(x=daily["as_of"], y=running, mode="lines", name="live mean so far")
    if low is not None and high is not None:  # after the traces: an empty plot gets no shape
        figure.add_hrect(
            y0=low,
            y1=high,
            fillcolor="lightgrey",
            opacity=0.4,
            line_width=0,
            annotation_text="backtest 95 % interval",
            annotation_position="top left",
            secondary_y=False,
        )
    figure.update_yaxes(title_text="rank IC", secondary_y=False)
    figure.update_yaxes(title_text="long/short return", tickformat=".1%", secondary_y=True)
    return figure.update_layout(
        title=f"{horizon}: live rank IC of the stored forecasts against the backtest",
        height=340,
    )


def describe(figure: go.Figure) -> str:
    """A chart in words, shown under it for readers who cannot see it (and search engines):
    the title, what is plotted against what, and the series."""
    layout = figure.layout
    x, y = layout.xaxis.title.text, layout.yaxis.title.text
    axes = f": {y} against {x}" if x and y else (f" by {x}" if x else "")
    names = list(dict.fromkeys(t.name for t in figure.data if t.name))
    series = (
        f"; series: {', '.join(names[:8])}" + ("..." if len(names) > 8 else "") if names else ""
    )
    return f"Chart: {layout.title.text}{axes}{series}."


def show(container: Any, figure: go.Figure, *, key: str, alt: str | None = None) -> None:
    """Draw a chart with its text alternative under it. Every chart has a title: one
    without is a bug this refuses."""
    if not figure.layout.title.text:
        raise ValueError(f"the chart {key!r} has no title")
    container.plotly_chart(figure, key=key)
    container.caption(alt or describe(figure))
