"""Plotly figures the pages draw: data in (frames, matrices), figure out; no Streamlit here."""

from __future__ import annotations

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
    figure.add_scatter(x=rows["date"], y=rows["rsi_14"], name="RSI 14", row=3, col=1)
    for level in (30, 70):
        figure.add_hline(y=level, line={"dash": "dot", "color": "grey"}, row=3, col=1)
    figure.add_bar(x=rows["date"], y=rows["macd_hist"], name="MACD histogram", row=4, col=1)
    figure.update_xaxes(rangeslider_visible=False)
    for row, title in enumerate(("price", "volume", "RSI", "MACD"), start=1):
        figure.update_yaxes(title_text=title, row=row, col=1)
    return figure.update_layout(title=f"{ticker}", height=680, uirevision=ticker)


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
    """Heatmap of samples x input steps, and the mean weight per step."""
    steps = [f"t-{len(weights.columns) - 1 - i}" for i in range(len(weights.columns))]
    heatmap = px.imshow(
        weights.to_numpy(),
        x=steps,
        y=labels,
        aspect="auto",
        color_continuous_scale="Viridis",
        labels={"x": "input step", "y": "sample", "color": "weight"},
        title="Attention per sample",
    ).update_layout(height=420)
    mean = px.bar(
        x=steps,
        y=weights.mean().to_numpy(),
        labels={"x": "input step", "y": "mean weight"},
        title="Mean attention per step",
    ).update_layout(height=300)
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
