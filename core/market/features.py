"""The 62 stock features, computed per ticker from daily OHLCV using only the past.

Every feature at date t reads rows up to and including t (rolling windows and causal
exponential averages), and is scale-free (ratios, log returns, z-scores, bounded oscillators)
so tickers and decades are comparable. Formulas are in docs/data.md; tests check the
indicators against hand-computed references and check that deleting the future changes
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.market.config import DataConfig
from core.market.cross_section import cross_sectional_labels, is_cross_sectional
from core.market.labels import label_columns, trend_labels
from core.market.relevance import ContextFactor, relevance_labels
from core.market.splits import training_end

PRICE_COLUMNS = ["open", "high", "low", "close", "volume"]
TRADING_DAYS = 252

STOCK_FEATURE_GROUPS: dict[str, list[str]] = {
    "ohlcv": ["hl_range", "oc_return", "upper_shadow", "lower_shadow", "volume_z20"],
    "technical": [
        "sma_ratio_5",
        "sma_ratio_10",
        "sma_ratio_20",
        "sma_ratio_50",
        "sma_ratio_100",
        "sma_ratio_200",
        "ema_ratio_12",
        "ema_ratio_26",
        "ema_ratio_50",
        "sma_cross_20_50",
        "sma_cross_50_200",
        "rsi_7",
        "rsi_14",
        "rsi_28",
        "macd_line",
        "macd_signal",
        "macd_hist",
        "bb_position_20",
        "bb_width_20",
        "stoch_k_14",
        "stoch_d_14",
        "williams_r_14",
        "atr_ratio_14",
        "obv_change_20",
        "cci_20",
        "mfi_14",
        "adx_14",
        "aroon_osc_25",
        "dist_high_252",
        "dist_low_252",
        "volume_ratio_20",
        "momentum_12_1",
    ],
    "returns": ["ret_1d", "ret_5d", "ret_10d", "ret_21d", "ret_63d"],
    "volatility": [
        "rv_5",
        "rv_10",
        "rv_21",
        "rv_63",
        "rv_126",
        "parkinson_10",
        "parkinson_21",
        "garman_klass_10",
        "garman_klass_21",
        "rogers_satchell_10",
        "rogers_satchell_21",
        "downside_vol_21",
        "upside_vol_21",
        "vol_of_vol_63",
        "vol_ratio_5_63",
        "vol_ratio_21_126",
        "skew_63",
        "kurt_63",
        "drawdown_63",
        "gap_vol_21",
    ],
}
STOCK_FEATURES: list[str] = [name for group in STOCK_FEATURE_GROUPS.values() for name in group]

CONTEXT_FEATURE_GROUPS: dict[str, list[str]] = {
    "news": [
        "news_sentiment_mean",
        "news_sentiment_std",
        "news_positive_share",
        "news_negative_share",
        "news_volume_log",
        "news_volume_z20",
        "news_source_diversity",
        "news_sentiment_ema5",
    ],
    "policy": [
        "policy_event_count",
        "policy_urgency_max",
        "policy_stance",
        "policy_sector_breadth",
        "policy_recency",
    ],
    "macro": [
        "infl_yoy",
        "infl_3m_ann",
        "rate_long",
        "rate_long_chg_63d",
        "credit_spread",
        "credit_spread_chg_63d",
        "real_rate",
        "oil_ret_21d",
        "oil_ret_63d",
        "oil_vol_21d",
        "vix_level",
        "vix_chg_21d",
    ],
}
CONTEXT_FEATURES: list[str] = [n for group in CONTEXT_FEATURE_GROUPS.values() for n in group]
MASK_COLUMNS: list[str] = [f"mask_{group}" for group in CONTEXT_FEATURE_GROUPS]
FEATURES: list[str] = CONTEXT_FEATURES + STOCK_FEATURES

WARMUP_DAYS = 252
"""Leading rows of each ticker where some window is not yet full (the 252-day high/low)."""


def sma(x: pd.Series, n: int) -> pd.Series:
    return x.rolling(n, min_periods=n).mean()


def ema(x: pd.Series, span: int) -> pd.Series:
    """Causal exponential average, alpha = 2 / (span + 1), defined after ``span`` values."""
    return x.ewm(span=span, adjust=False, min_periods=span).mean()


def wilder(x: pd.Series, n: int) -> pd.Series:
    """Wilder's smoothing (alpha = 1 / n), as used by RSI, ATR and ADX."""
    return x.ewm(alpha=1 / n, adjust=False, min_periods=n).mean()


def rsi(close: pd.Series, n: int) -> pd.Series:
    """Relative strength index in [0, 1] (the textbook value divided by 100)."""
    change = close.diff()
    gain = wilder(change.clip(lower=0), n)
    loss = wilder((-change).clip(lower=0), n)
    return gain / (gain + loss)


def true_range(high: pd.Series, low: pd.Series, close: pd.Series) -> pd.Series:
    previous = close.shift(1)
    return pd.concat([high - low, (high - previous).abs(), (low - previous).abs()], axis=1).max(
        axis=1
    )


def _windows(x: pd.Series, n: int) -> np.ndarray:
    """Trailing windows of length n as rows: row k covers positions k .. k + n - 1."""
    values = x.to_numpy(dtype=float)
    if len(values) < n:
        return np.empty((0, n))
    return np.lib.stride_tricks.sliding_window_view(values, n)


def _pad(per_window: np.ndarray, like: pd.Series) -> pd.Series:
    """Place one value per trailing window at the window's last date; NaN before."""
    out = np.full(len(like), np.nan)
    if len(per_window):
        out[len(like) - len(per_window) :] = per_window
    return pd.Series(out, index=like.index)


def _divide(numerator: pd.Series, denominator: pd.Series, flat: float) -> pd.Series:
    """numerator / denominator, with ``flat`` where the denominator is 0: a window without
    any movement (constant volume, a halted price) is a valid state, not missing data."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = numerator / denominator
    return ratio.where(denominator != 0, flat).where(denominator.notna() & numerator.notna())


def _realised_vol(log_returns: pd.Series, n: int) -> pd.Series:
    return log_returns.rolling(n, min_periods=n).std() * np.sqrt(TRADING_DAYS)


def _range_vol(per_day_variance: pd.Series, n: int) -> pd.Series:
    mean = per_day_variance.rolling(n, min_periods=n).mean()
    return np.sqrt(mean.clip(lower=0) * TRADING_DAYS)


def _semi_vol(log_returns: pd.Series, n: int, side: int) -> pd.Series:
    """Root mean square of the returns on one side of zero, annualised."""
    kept = log_returns.where(np.sign(log_returns) == side, 0.0)
    return np.sqrt((kept**2).rolling(n, min_periods=n).mean() * TRADING_DAYS)


def ticker_features(prices: pd.DataFrame) -> pd.DataFrame:
    """All 62 stock features for one ticker; ``prices`` is indexed by date, sorted."""
    o, h, l, c, v = (prices[name].astype(float) for name in PRICE_COLUMNS)  # noqa: E741
    log_c = np.log(c)
    r = log_c.diff()
    out: dict[str, pd.Series] = {}

    # OHLCV-derived
    out["hl_range"] = (h - l) / c
    out["oc_return"] = np.log(c / o)
    out["upper_shadow"] = (h - np.maximum(o, c)) / c
    out["lower_shadow"] = (np.minimum(o, c) - l) / c
    log_v = np.log1p(v)
    out["volume_z20"] = _divide(log_v - sma(log_v, 20), log_v.rolling(20, min_periods=20).std(), 0)

    # Technical
    for n in (5, 10, 20, 50, 100, 200):
        out[f"sma_ratio_{n}"] = c / sma(c, n) - 1
    for n in (12, 26, 50):
        out[f"ema_ratio_{n}"] = c / ema(c, n) - 1
    out["sma_cross_20_50"] = sma(c, 20) / sma(c, 50) - 1
    out["sma_cross_50_200"] = sma(c, 50) / sma(c, 200) - 1
    for n in (7, 14, 28):
        out[f"rsi_{n}"] = rsi(c, n)
    macd = (ema(c, 12) - ema(c, 26)) / c
    signal = ema(macd, 9)
    out["macd_line"], out["macd_signal"], out["macd_hist"] = macd, signal, macd - signal
    middle, spread = sma(c, 20), c.rolling(20, min_periods=20).std(ddof=0)
    out["bb_position_20"] = _divide(c - (middle - 2 * spread), 4 * spread, 0.5)
    out["bb_width_20"] = 4 * spread / middle
    low_14, high_14 = l.rolling(14, min_periods=14).min(), h.rolling(14, min_periods=14).max()
    stoch_k = _divide(c - low_14, high_14 - low_14, 0.5)
    out["stoch_k_14"] = stoch_k
    out["stoch_d_14"] = sma(stoch_k, 3)
    out["williams_r_14"] = stoch_k - 1  # Williams %R is %K shifted to [-1, 0]
    tr = true_range(h, l, c)
    atr = wilder(tr, 14)
    out["atr_ratio_14"] = atr / c
    obv = (np.sign(c.diff()).fillna(0) * v).cumsum()
    out["obv_change_20"] = _divide(obv.diff(20), v.rolling(20, min_periods=20).sum(), 0)
    typical = (h + l + c) / 3
    windows = _windows(typical, 20)  # (T - 19, 20)
    mean_dev = _pad(np.abs(windows - windows.mean(axis=1, keepdims=True)).mean(axis=1), typical)
    out["cci_20"] = _divide(typical - sma(typical, 20), 0.015 * mean_dev, 0) / 100
    flow = typical * v
    up_flow = flow.where(typical.diff() > 0, 0.0).rolling(14, min_periods=14).sum()
    down_flow = flow.where(typical.diff() < 0, 0.0).rolling(14, min_periods=14).sum()
    out["mfi_14"] = _divide(up_flow, up_flow + down_flow, 0.5)
    up_move, down_move = h.diff(), -l.diff()
    plus_dm = up_move.where((up_move > down_move) & (up_move > 0), 0.0)
    minus_dm = down_move.where((down_move > up_move) & (down_move > 0), 0.0)
    plus_di, minus_di = _divide(wilder(plus_dm, 14), atr, 0), _divide(wilder(minus_dm, 14), atr, 0)
    dx = _divide((plus_di - minus_di).abs(), plus_di + minus_di, 0)
    out["adx_14"] = wilder(dx, 14)
    # Aroon: how recently the 25-day high and low were set (window of 26 closes).
    days_since_high = _pad(25 - _windows(h, 26).argmax(axis=1), h)
    days_since_low = _pad(25 - _windows(l, 26).argmin(axis=1), l)
    out["aroon_osc_25"] = (days_since_low - days_since_high) / 25
    out["dist_high_252"] = c / h.rolling(TRADING_DAYS, min_periods=TRADING_DAYS).max() - 1
    out["dist_low_252"] = c / l.rolling(TRADING_DAYS, min_periods=TRADING_DAYS).min() - 1
    out["volume_ratio_20"] = _divide(v, sma(v, 20), 1)
    out["momentum_12_1"] = log_c.shift(21) - log_c.shift(TRADING_DAYS)

    # Returns (log)
    for n in (1, 5, 10, 21, 63):
        out[f"ret_{n}d"] = log_c.diff(n)

    # Volatility (annualised)
    for n in (5, 10, 21, 63, 126):
        out[f"rv_{n}"] = _realised_vol(r, n)
    parkinson_var = np.log(h / l) ** 2 / (4 * np.log(2))
    gk_var = 0.5 * np.log(h / l) ** 2 - (2 * np.log(2) - 1) * np.log(c / o) ** 2
    rs_var = np.log(h / c) * np.log(h / o) + np.log(l / c) * np.log(l / o)
    for n in (10, 21):
        out[f"parkinson_{n}"] = _range_vol(parkinson_var, n)
        out[f"garman_klass_{n}"] = _range_vol(gk_var, n)
        out[f"rogers_satchell_{n}"] = _range_vol(rs_var, n)
    out["downside_vol_21"] = _semi_vol(r, 21, -1)
    out["upside_vol_21"] = _semi_vol(r, 21, 1)
    rv_21 = out["rv_21"]
    out["vol_of_vol_63"] = rv_21.rolling(63, min_periods=63).std() / sma(rv_21, 63)
    out["vol_ratio_5_63"] = out["rv_5"] / out["rv_63"]
    out["vol_ratio_21_126"] = rv_21 / out["rv_126"]
    out["skew_63"] = r.rolling(63, min_periods=63).skew()
    out["kurt_63"] = r.rolling(63, min_periods=63).kurt()
    out["drawdown_63"] = c / c.rolling(63, min_periods=63).max() - 1
    gap = np.log(o / c.shift(1))
    out["gap_vol_21"] = gap.rolling(21, min_periods=21).std() * np.sqrt(TRADING_DAYS)

    frame = pd.DataFrame(out, index=prices.index)[STOCK_FEATURES]
    return frame.replace([np.inf, -np.inf], np.nan)


def stock_features(prices: pd.DataFrame) -> pd.DataFrame:
    """The 62 features for every ticker of a long OHLCV frame (date, ticker, open, ...).

    Returns a frame with date, ticker and the features, sorted by ticker then date; the first
    ``WARMUP_DAYS`` rows of each ticker hold NaN where a window is not yet full.
    """
    ordered = prices.sort_values(["ticker", "date"], kind="stable")
    parts = []
    for ticker, group in ordered.groupby("ticker", sort=True):
        features = ticker_features(group.set_index("date")[PRICE_COLUMNS])
        parts.append(features.reset_index().assign(ticker=ticker))
    result = pd.concat(parts, ignore_index=True)
    return result[["date", "ticker", *STOCK_FEATURES]]


def context_asof(
    context: pd.DataFrame | Sequence[pd.DataFrame] | None, rows: pd.DataFrame
) -> pd.DataFrame:
    """Context values for each (date, ticker) row, as known on that date, with group masks.

    ``context`` is a frame, or several (for example per-ticker news and market-wide macro),
    each with a ``date`` column (the day a value became known), optionally a ``ticker`` column
    for per-ticker series such as news, and any of the context feature columns. Each row takes
    the latest value dated on or before its own date. A group's mask is 1 where every feature
    of the group is known on that row and 0 otherwise; unknown values stay NaN (never zero).
    """
    out = rows[["date", "ticker"]].reset_index(drop=True)
    known = pd.DataFrame(np.nan, index=out.index, columns=CONTEXT_FEATURES)
    parts = [context] if isinstance(context, pd.DataFrame) else list(context or [])
    left = out.assign(_order=np.arange(len(out))).sort_values("date", kind="stable")
    for part in parts:
        columns = [c for c in CONTEXT_FEATURES if c in part.columns]
        if part.empty or not columns:
            continue
        by = ["ticker"] if "ticker" in part.columns else None
        right = part[["date", *(by or []), *columns]].sort_values("date", kind="stable")
        right = right.astype({"date": left["date"].dtype})
        merged = pd.merge_asof(left, right, on="date", by=by, direction="backward")
        merged = merged.sort_values("_order").reset_index(drop=True)
        known[columns] = merged[columns].to_numpy(dtype=float)
    result = pd.concat([out, known], axis=1)
    for group, names in CONTEXT_FEATURE_GROUPS.items():
        result[f"mask_{group}"] = result[names].notna().all(axis=1).astype(float)
    return result


def build_dataset(
    prices: pd.DataFrame,
    context: pd.DataFrame | Sequence[pd.DataFrame] | None = None,
    config: DataConfig | None = None,
) -> pd.DataFrame:
    """Features, masks and labels for every (date, ticker) row past the warm-up.

    Rows are limited to ``config.start_date`` .. ``config.end_date`` when given; prices before
    the start still feed the rolling windows, and prices after the end the forward labels.

    Columns: date, ticker, the 25 context and 62 stock features, ``mask_news``,
    ``mask_policy``, ``mask_macro``, and the labels for each horizon in ``config.horizons``:
    trend labels (``core.market.labels``; on the day's scale where ``config.cross_sectional``
    is on: ``core.market.cross_section``) and relevance labels (``core.market.relevance``,
    whose context factor is fitted on the training segment of the split ``config``
    describes; the factor is kept as ``context_factor``). Rows near the end keep NaN labels
    (their forward window is incomplete); trainers drop them.
    """
    config = config or DataConfig()
    stock = stock_features(prices)
    labels = trend_labels(prices, config.horizons, config.neutral_z)
    frame = stock.merge(labels, on=["date", "ticker"], how="left", validate="one_to_one")
    keep = frame[STOCK_FEATURES].notna().all(axis=1)
    if config.start_date:
        keep &= frame["date"] >= pd.Timestamp(config.start_date)
    if config.end_date:
        keep &= frame["date"] <= pd.Timestamp(config.end_date)
    frame = frame[keep].reset_index(drop=True)
    if is_cross_sectional(frame, config.cross_sectional):
        for name, values in cross_sectional_labels(frame, config.horizons).items():
            frame[name] = values.to_numpy()
    known = context_asof(context, frame)
    label_names = label_columns(config.horizons)
    dataset = pd.concat(
        [frame[["date", "ticker"]], known[CONTEXT_FEATURES], frame[STOCK_FEATURES]], axis=1
    )
    dataset[MASK_COLUMNS] = known[MASK_COLUMNS]
    dataset[label_names] = frame[label_names]
    factor = ContextFactor.fit(
        dataset,
        columns=CONTEXT_FEATURES,
        train_end=training_end(dataset["date"], config.train_fraction),
    ).values(dataset)
    relevance = relevance_labels(
        dataset,
        columns=CONTEXT_FEATURES,
        train_end=training_end(dataset["date"], config.train_fraction),
        horizons=config.horizons,
        threshold=config.relevance_threshold,
        factor=factor,
    )
    dataset["context_factor"] = factor.reindex(dataset["date"]).to_numpy()
    return pd.concat([dataset, relevance], axis=1)
