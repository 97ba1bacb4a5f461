"""A synthetic market with a planted, non-linear context signal (the default demo data).

One seed gives one market, exactly. The process (docs/data.md, "Synthetic market"):

- a calm/stressed regime (Markov chain) scales volatilities and the VIX;
- a daily context shock ``c_d`` (unit variance) moves observable context: market news tone,
  VIX, oil, and the stance of policy events; each ticker's news tone follows the market's
  plus its own;
- each ticker's return is ``mu + beta * SIGMA_C * c_d + gamma * SIGMA_M * u_d + sigma * eps``
  with ``u_d`` a market shock the context does not see, ``sigma`` a GARCH(1, 1) volatility
  with Student-t innovations, and
- ``beta`` (the sensitivity to context) ticker-specific, time-varying and non-linear in
  observable state: it depends on yesterday's VIX through a sigmoid or tanh and on the
  stock's own volatility ratio; "hedge" tickers have negative beta and "switchers" change sign
  with the VIX, so no linear model of the features reaches the optimum;
- ``mu`` (the planted trend) is proportional to beta times yesterday's market news tone,
  plus the ticker's own news tone: stocks drift with the context they load on.

The generator emits raw records (prices, scored headlines, policy events, macro series) that
go through the same feature code as user imports, and oracle columns (true relevance and
trend over each forward window) for evaluation only. ``signal=False`` keeps every series
but sets beta and mu to zero: context then says nothing about returns (the control case).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.market.context import POLICY_STANCE, SECTORS
from core.market.labels import forward_window

SIGMA_C = 0.008  # daily return per unit of context shock at beta = 1
SIGMA_M = 0.006  # daily return per unit of the unseen market shock at gamma = 1
DRIFT = 0.10  # planted daily drift, in units of the ticker's long-run daily volatility
MOMENTUM_DAYS = 63  # the sensitivity reads the stock's return over this many past days
ORACLE_PREFIX = "oracle_"
GENERATOR_VERSION = 1  # bump when the process changes, so stored datasets are not reused


@dataclass
class SyntheticMarket:
    """Raw records of one synthetic market, plus the latent truth for evaluation."""

    prices: pd.DataFrame  # date, ticker, open, high, low, close, volume
    headlines: pd.DataFrame  # date, ticker, score, source
    policy_events: pd.DataFrame  # date, type, urgency, sector
    macro_series: pd.DataFrame  # date, series, value
    oracle: pd.DataFrame  # date, ticker, oracle_relevance_hd, oracle_trend_hd


def oracle_columns(horizons: list[int]) -> list[str]:
    return [f"{ORACLE_PREFIX}{kind}_{h}d" for h in horizons for kind in ("relevance", "trend")]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _trailing_vol(cumulative: np.ndarray, day: int, window: int) -> np.ndarray:
    """Root mean square return over the ``window`` days up to ``day`` (fewer at the start)."""
    start = max(day - window, 0)
    count = max(day - start, 1)
    return np.sqrt((cumulative[day] - cumulative[start]) / count + 1e-12)


def _sensitivity(
    scale: np.ndarray, vix_z: float, momentum: np.ndarray, vol_ratio: np.ndarray
) -> np.ndarray:
    """beta per ticker from yesterday's VIX, its 63-day return and its volatility ratio.

    Winners move with the context and losers against it (hedges), more so in stressed
    markets; calmer stocks respond more. All three inputs are observable features
    (``vix_level``, ``ret_63d``, ``vol_ratio_21_126``), but only through this non-linear form.
    """
    stress = _sigmoid(2.5 * vix_z)  # 0 in calm markets, 1 in stressed ones
    damping = 1.25 - 0.5 * np.tanh(vol_ratio - 1.0)
    return scale * (0.3 + 1.2 * np.tanh(momentum / 0.1) * (0.4 + 1.2 * stress)) * damping


def generate_market(
    tickers: list[str],
    start: str,
    end: str,
    *,
    seed: int = 42,
    signal: bool = True,
    horizons: tuple[int, ...] = (7, 30),
) -> SyntheticMarket:
    """Simulate business days from ``start`` to ``end`` for ``tickers``; deterministic per seed."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(start, end)
    n_days, n_tickers = len(days), len(tickers)
    beta_scale = rng.uniform(0.7, 1.3, n_tickers) * signal
    gamma = rng.uniform(0.6, 1.4, n_tickers)
    long_run_vol = rng.uniform(0.011, 0.024, n_tickers)
    news_rate = rng.uniform(1.5, 4.0, n_tickers)

    # Market-wide latent paths.
    regime = np.zeros(n_days, dtype=int)
    for d in range(1, n_days):
        stay = 0.99 if regime[d - 1] == 0 else 0.96
        regime[d] = regime[d - 1] if rng.random() < stay else 1 - regime[d - 1]
    shock = rng.standard_normal(n_days)  # c_d
    unseen = rng.standard_normal(n_days)  # u_d
    tone = np.zeros(n_days)
    log_vix = np.full(n_days, np.log(16.0))
    for d in range(1, n_days):
        tone[d] = 0.97 * tone[d - 1] + 0.12 * shock[d] + 0.06 * rng.standard_normal()
        tone[d] -= 0.01 * regime[d]
        target = np.log(16.0) if regime[d] == 0 else np.log(30.0)
        log_vix[d] = (
            log_vix[d - 1]
            + 0.05 * (target - log_vix[d - 1])
            - 0.05 * shock[d]
            + 0.04 * rng.standard_normal()
        )
    vix = np.exp(log_vix)
    vix_z = (vix - 20.0) / 8.0

    # Per-ticker paths, day by day (GARCH needs yesterday's shock).
    idio_tone = np.zeros((n_days, n_tickers))
    variance = np.tile(long_run_vol**2, (n_days, 1))
    eps = rng.standard_t(5, (n_days, n_tickers)) / np.sqrt(5 / 3)
    beta = np.zeros((n_days, n_tickers))
    mu = np.zeros((n_days, n_tickers))
    returns = np.zeros((n_days, n_tickers))
    log_close = np.zeros((n_days, n_tickers))  # relative to the start price
    squared = np.zeros((n_days, n_tickers))  # cumulative squared returns
    for d in range(1, n_days):
        idio_tone[d] = 0.9 * idio_tone[d - 1] + 0.15 * rng.standard_normal(n_tickers)
        stress = 1.6 if regime[d] else 1.0
        base = long_run_vol**2 * stress**2
        variance[d] = 0.03 * base + 0.08 * returns[d - 1] ** 2 + 0.89 * variance[d - 1]
        momentum = log_close[d - 1] - log_close[max(d - 1 - MOMENTUM_DAYS, 0)]
        vol_ratio = _trailing_vol(squared, d - 1, 21) / _trailing_vol(squared, d - 1, 126)
        beta[d] = _sensitivity(beta_scale, vix_z[d - 1], momentum, vol_ratio)
        own_tone = 0.5 * tone[d - 1] + idio_tone[d - 1]
        mu[d] = (
            signal
            * DRIFT
            * long_run_vol
            * (np.tanh(beta[d] * tone[d - 1] / 0.3) + 0.5 * np.tanh(own_tone / 0.3))
        )
        returns[d] = (
            mu[d]
            + beta[d] * SIGMA_C * shock[d]
            + gamma * SIGMA_M * unseen[d]
            + np.sqrt(variance[d]) * eps[d]
        )
        log_close[d] = log_close[d - 1] + returns[d]
        squared[d] = squared[d - 1] + returns[d] ** 2

    prices = _ohlcv(rng, days, tickers, returns, variance, eps)
    ticker_tone = 0.5 * tone[:, None] + idio_tone
    headlines = _headlines(rng, days, tickers, ticker_tone, news_rate, shock, eps)
    policy = _policy_events(rng, days, shock)
    macro = _macro_series(rng, days, vix, shock, regime)
    total_var = beta**2 * SIGMA_C**2 + gamma**2 * SIGMA_M**2 + variance
    oracle = _oracle(days, tickers, beta * SIGMA_C / np.sqrt(total_var), mu, total_var, horizons)
    return SyntheticMarket(
        prices=prices,
        headlines=headlines,
        policy_events=policy,
        macro_series=macro,
        oracle=oracle,
    )


def _long(days: pd.DatetimeIndex, tickers: list[str], **columns: np.ndarray) -> pd.DataFrame:
    """Long (date, ticker) frame from (days x tickers) arrays, ticker-major order."""
    n_days, n_tickers = len(days), len(tickers)
    data = {
        "date": np.tile(days.to_numpy(), n_tickers),
        "ticker": np.repeat(np.array(tickers, dtype=object), n_days),
    }
    data.update({name: values.T.reshape(-1) for name, values in columns.items()})
    return pd.DataFrame(data)


def _ohlcv(rng, days, tickers, returns, variance, eps) -> pd.DataFrame:
    n_days, n_tickers = returns.shape
    start_price = rng.uniform(20, 400, n_tickers)
    close = start_price * np.exp(np.cumsum(returns, axis=0))
    previous = np.vstack([start_price, close[:-1]])
    sigma = np.sqrt(variance)
    gap = 0.25 * returns + 0.1 * sigma * rng.standard_normal((n_days, n_tickers))
    open_ = previous * np.exp(gap)
    reach = 0.5 * sigma * np.abs(rng.standard_normal((2, n_days, n_tickers)))
    high = np.maximum(open_, close) * np.exp(reach[0])
    low = np.minimum(open_, close) * np.exp(-reach[1])
    base_volume = rng.uniform(5e5, 5e7, n_tickers)
    surprise = np.abs(eps)
    log_volume = np.log(base_volume) + 0.35 * surprise + 0.2 * rng.standard_normal(returns.shape)
    volume = np.round(np.exp(log_volume))
    return _long(days, tickers, open=open_, high=high, low=low, close=close, volume=volume)


def _headlines(rng, days, tickers, ticker_tone, news_rate, shock, eps) -> pd.DataFrame:
    """Scored headlines: more of them on days with large context or own surprises."""
    intensity = news_rate * (1 + 0.5 * np.abs(shock)[:, None] + 0.5 * np.abs(eps))
    counts = rng.poisson(intensity)  # days x tickers
    day_index, ticker_index = np.nonzero(counts)
    repeats = counts[day_index, ticker_index]
    day_index = np.repeat(day_index, repeats)
    ticker_index = np.repeat(ticker_index, repeats)
    tone = ticker_tone[day_index, ticker_index]
    score = np.tanh(tone + 0.5 * rng.standard_normal(len(tone)))
    sources = np.array(["wire", "press", "blog", "broadcast", "newsletter"], dtype=object)
    return pd.DataFrame(
        {
            "date": days.to_numpy()[day_index],
            "ticker": np.array(tickers, dtype=object)[ticker_index],
            "score": np.round(score, 4),
            "source": sources[rng.integers(0, len(sources), len(tone))],
        }
    )


def _policy_events(rng, days, shock) -> pd.DataFrame:
    """About one event a fortnight; easing events are likelier on days of positive shocks."""
    happens = rng.random(len(days)) < 0.08
    index = np.nonzero(happens)[0]
    easing = rng.random(len(index)) < _sigmoid(1.5 * shock[index])
    types = np.array(list(POLICY_STANCE), dtype=object)
    positive = types[[POLICY_STANCE[t] > 0 for t in types]]
    negative = types[[POLICY_STANCE[t] < 0 for t in types]]
    chosen = np.where(
        easing,
        positive[rng.integers(0, len(positive), len(index))],
        negative[rng.integers(0, len(negative), len(index))],
    )
    sectors = np.array([*SECTORS, "all"], dtype=object)
    return pd.DataFrame(
        {
            "date": days.to_numpy()[index],
            "type": chosen,
            "urgency": rng.integers(1, 6, len(index)),
            "sector": sectors[rng.integers(0, len(sectors), len(index))],
        }
    )


def _macro_series(rng, days, vix, shock, regime) -> pd.DataFrame:
    """Daily oil and VIX; monthly core CPI, Aaa and Baa yields (dated by period start)."""
    oil = 60 * np.exp(np.cumsum(0.012 * shock + 0.018 * rng.standard_normal(len(days))))
    months = pd.date_range(days[0].to_period("M").to_timestamp(), days[-1], freq="MS")
    # Start a year early so year-on-year inflation is known from the first day.
    history = pd.date_range(months[0] - pd.DateOffset(months=12), months[-1], freq="MS")
    monthly_infl = np.zeros(len(history))
    aaa = np.zeros(len(history))
    spread = np.zeros(len(history))
    monthly_infl[0], aaa[0], spread[0] = 0.002, 4.0, 1.0
    month_regime = regime[np.clip(days.searchsorted(history), 0, len(days) - 1)]
    for m in range(1, len(history)):
        monthly_infl[m] = 0.002 + 0.8 * (monthly_infl[m - 1] - 0.002) + 0.0008 * rng.normal()
        aaa[m] = max(aaa[m - 1] + 0.12 * rng.normal() + 5 * (monthly_infl[m] - 0.002), 0.5)
        target = 2.2 if month_regime[m] else 1.0
        spread[m] = spread[m - 1] + 0.3 * (target - spread[m - 1]) + 0.08 * rng.normal()
    cpi = 250 * np.exp(np.cumsum(monthly_infl))
    frames = [
        pd.DataFrame({"date": days, "series": "oil", "value": np.round(oil, 2)}),
        pd.DataFrame({"date": days, "series": "vix", "value": np.round(vix, 2)}),
        pd.DataFrame({"date": history, "series": "cpi", "value": np.round(cpi, 3)}),
        pd.DataFrame({"date": history, "series": "aaa", "value": np.round(aaa, 2)}),
        pd.DataFrame({"date": history, "series": "baa", "value": np.round(aaa + spread, 2)}),
    ]
    return pd.concat(frames, ignore_index=True)


def _oracle(days, tickers, correlation, mu, total_var, horizons) -> pd.DataFrame:
    """True relevance (mean correlation with the context shock) and expected trend per window."""
    dates = days.to_numpy(dtype="datetime64[ns]")
    columns: dict[str, np.ndarray] = {}
    sums = {
        "rho": np.cumsum(correlation, axis=0),
        "mu": np.cumsum(mu, axis=0),
        "var": np.cumsum(total_var, axis=0),
    }
    for h in horizons:
        start, end, valid = forward_window(dates, h)
        window = {name: c[end] - c[start] for name, c in sums.items()}
        length = (end - start)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            relevance = window["rho"] / length
            trend = np.tanh(window["mu"] / np.sqrt(window["var"]))
        columns[f"{ORACLE_PREFIX}relevance_{h}d"] = np.where(valid[:, None], relevance, np.nan)
        columns[f"{ORACLE_PREFIX}trend_{h}d"] = np.where(valid[:, None], trend, np.nan)
    return _long(days, tickers, **columns)
