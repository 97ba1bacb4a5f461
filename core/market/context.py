"""The 25 context features, built from raw news headlines, policy events and macro series.

Every producer (synthetic generator, bundled data, user imports) feeds raw records through
these three functions, so a feature means the same thing whatever its source. Each returns a
frame dated by the business day on which the value became known; ``features.context_asof``
then gives each (date, ticker) row the latest value known on its date.

- ``news_features``: one row per (business day, ticker); headlines published on a weekend or
  holiday count on the next business day.
- ``policy_features``: one row per business day, market-wide.
- ``macro_features``: one row per business day, market-wide; monthly series are known only
  from their release date (period start + one month + a per-series lag), then carried forward
  until they are stale (``MacroSeries.max_age_days`` after their release).

Each frame ends with a row of NaN on the business day after its source's span (the last
headline; the last policy event's window; the last macro value's staleness), so the as-of
join leaves later dates unknown instead of carrying the last value forward for years.

Formulas are listed in docs/data.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.market.features import CONTEXT_FEATURE_GROUPS, TRADING_DAYS

NEWS_FEATURES = CONTEXT_FEATURE_GROUPS["news"]
POLICY_FEATURES = CONTEXT_FEATURE_GROUPS["policy"]
MACRO_FEATURES = CONTEXT_FEATURE_GROUPS["macro"]

# VADER's own convention for a positive / negative compound score.
SENTIMENT_THRESHOLD = 0.05

POLICY_STANCE: dict[str, int] = {
    "rate_cut": 1,
    "rate_hike": -1,
    "stimulus": 1,
    "austerity": -1,
    "tax_cut": 1,
    "tax_increase": -1,
    "deregulation": 1,
    "regulation": -1,
    "trade_deal": 1,
    "tariff": -1,
    "subsidy": 1,
    "sanction": -1,
    "statement": 0,
}
"""Policy event types and the direction each pushes markets (+1 easing, -1 tightening)."""

SECTORS = [
    "communication",
    "consumer_discretionary",
    "consumer_staples",
    "energy",
    "financials",
    "health_care",
    "industrials",
    "information_technology",
    "materials",
    "real_estate",
    "utilities",
]
"""GICS sectors; a policy event may also name ``all`` (economy-wide)."""

POLICY_WINDOW = 21  # business days a policy event counts towards the count and breadth
POLICY_RECENCY_DAYS = 10  # e-folding time of policy_recency, in business days


MONTHLY_MAX_AGE_DAYS = 62  # two monthly release periods
DAILY_MAX_AGE_DAYS = 7  # five business days


@dataclass(frozen=True)
class MacroSeries:
    """How a raw macro series is published: monthly ones are dated by the period's start."""

    description: str
    monthly: bool
    release_lag_days: int = 0
    """Days after the period ends (monthly) or after the date (daily) until it is known."""

    @property
    def max_age_days(self) -> int:
        """Calendar days after its release that a value still counts as known; older, it is
        stale and unknown. Monthly: two release periods (one missed release is tolerated).
        Daily: a week (five business days without a new value)."""
        return MONTHLY_MAX_AGE_DAYS if self.monthly else DAILY_MAX_AGE_DAYS


MACRO_SERIES: dict[str, MacroSeries] = {
    "cpi": MacroSeries("core consumer price index level (FRED CPILFESL)", True, 15),
    "aaa": MacroSeries("Moody's Aaa corporate bond yield, percent (FRED AAA)", True, 1),
    "baa": MacroSeries("Moody's Baa corporate bond yield, percent (FRED BAA)", True, 1),
    "oil": MacroSeries("WTI crude oil spot price, USD (FRED DCOILWTICO)", False),
    "vix": MacroSeries("CBOE volatility index close (VIX)", False),
}


def business_day(dates: pd.Series) -> pd.Series:
    """Each date rolled forward to a business day (Saturday and Sunday count on Monday)."""
    dates = pd.to_datetime(dates).dt.normalize()
    return dates + pd.offsets.BDay(0)


def _end_of_span(frame: pd.DataFrame, last: pd.Timestamp, by: str | None = None) -> pd.DataFrame:
    """``frame`` with a row of NaN features on the business day after ``last`` (per value of
    ``by``), where what its source tells ends: later dates join to it and stay unknown."""
    keys = {"date": [last + pd.offsets.BDay(1)]}
    if by is not None:
        keys = {"date": keys["date"] * frame[by].nunique(), by: sorted(frame[by].unique())}
    end = pd.DataFrame(keys).reindex(columns=frame.columns)
    return pd.concat([frame, end], ignore_index=True)


def score_headlines(headlines: pd.Series) -> np.ndarray:
    """VADER compound sentiment in [-1, 1] for each headline (lexicon ships with the package)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return np.array([analyzer.polarity_scores(str(text))["compound"] for text in headlines])


def news_features(headlines: pd.DataFrame) -> pd.DataFrame:
    """The 8 news features per (business day, ticker) from scored headlines.

    ``headlines`` has date, ticker, score (compound sentiment in [-1, 1]) and optionally
    source. Days without a headline are observed days with no news: count 0, sentiment 0,
    from the first headline's day to the last one's (of any ticker); later days are unknown.
    """
    frame = headlines.assign(date=business_day(headlines["date"]))
    if "source" not in frame.columns:
        frame = frame.assign(source="unknown")
    frame = frame.assign(
        positive=(frame["score"] > SENTIMENT_THRESHOLD).astype(float),
        negative=(frame["score"] < -SENTIMENT_THRESHOLD).astype(float),
    )
    grouped = frame.groupby(["date", "ticker"], sort=True)
    daily = pd.DataFrame(
        {
            "count": grouped.size(),
            "mean": grouped["score"].mean(),
            "std": grouped["score"].std(ddof=0),
            "positive": grouped["positive"].mean(),
            "negative": grouped["negative"].mean(),
            "sources": grouped["source"].nunique(),
        }
    )
    days = pd.bdate_range(daily.index.get_level_values("date").min(), frame["date"].max())
    tickers = sorted(frame["ticker"].unique())
    full = pd.MultiIndex.from_product([days, tickers], names=["date", "ticker"])
    daily = daily.reindex(full).fillna(0.0)

    def wide(column: str) -> pd.DataFrame:  # business days x tickers
        return daily[column].unstack("ticker")

    count = wide("count")
    volume_log = np.log1p(count)
    rolling = volume_log.rolling(20, min_periods=20)
    volume_z = (volume_log - rolling.mean()) / rolling.std(ddof=0)
    volume_z = volume_z.where(rolling.std(ddof=0) > 0, 0.0).where(rolling.count() >= 20)
    per_day = {
        "news_sentiment_mean": wide("mean"),
        "news_sentiment_std": wide("std"),
        "news_positive_share": wide("positive"),
        "news_negative_share": wide("negative"),
        "news_volume_log": volume_log,
        "news_volume_z20": volume_z,
        "news_source_diversity": (wide("sources") / count).where(count > 0, 0.0),
        "news_sentiment_ema5": wide("mean").ewm(span=5, adjust=False).mean(),
    }
    long = pd.concat({name: table.stack() for name, table in per_day.items()}, axis=1)
    long = long.reset_index()[["date", "ticker", *NEWS_FEATURES]]
    return _end_of_span(long, days[-1], by="ticker")


def policy_features(events: pd.DataFrame) -> pd.DataFrame:
    """The 5 policy features per business day from events (date, type, urgency 1-5, sector).

    An optional ``stance`` column (-1, 0, 1) overrides the stance implied by the type. The
    events are taken to cover their first day to ``POLICY_WINDOW`` business days after the
    last one (the window its count and breadth read); later days are unknown.
    """
    frame = events.assign(date=business_day(events["date"]))
    stance = frame["stance"] if "stance" in frame.columns else frame["type"].map(POLICY_STANCE)
    frame = frame.assign(
        urgency=frame["urgency"].astype(float) / 5.0,
        push=stance.astype(float) * frame["urgency"].astype(float) / 5.0,
    )
    days = pd.bdate_range(frame["date"].min(), frame["date"].max() + pd.offsets.BDay(POLICY_WINDOW))
    grouped = frame.groupby("date")
    count = grouped.size().reindex(days, fill_value=0).astype(float)
    urgency = grouped["urgency"].max().reindex(days, fill_value=0.0)
    push = grouped["push"].sum().reindex(days, fill_value=0.0)
    sectors = np.zeros((len(days), len(SECTORS)))
    position = days.get_indexer(frame["date"])
    for column, sector in enumerate(SECTORS):
        hit = (frame["sector"] == sector) | (frame["sector"] == "all")
        np.maximum.at(sectors[:, column], position[hit.to_numpy()], 1.0)
    breadth = (
        pd.DataFrame(sectors, index=days).rolling(POLICY_WINDOW, min_periods=1).max().mean(axis=1)
    )
    day_number = pd.Series(np.arange(len(days), dtype=float), index=days)
    last_event = day_number.where(count > 0).ffill()
    result = pd.DataFrame(
        {
            "policy_event_count": count.rolling(POLICY_WINDOW, min_periods=1).sum(),
            "policy_urgency_max": urgency.rolling(5, min_periods=1).max(),
            "policy_stance": push.ewm(span=10, adjust=False).mean(),
            "policy_sector_breadth": breadth,
            "policy_recency": np.exp(-(day_number - last_event) / POLICY_RECENCY_DAYS),
        },
        index=days,
    )
    result = result.rename_axis("date").reset_index()[["date", *POLICY_FEATURES]]
    return _end_of_span(result, days[-1])


def release_dates(series: str, dates: pd.Series) -> pd.Series:
    """The business day on which each observation of ``series`` became known."""
    spec = MACRO_SERIES[series]
    dates = pd.to_datetime(dates).dt.normalize()
    if spec.monthly:
        dates = dates.dt.to_period("M").dt.to_timestamp() + pd.DateOffset(months=1)
    return business_day(dates + pd.Timedelta(days=spec.release_lag_days))


def series_spans(series: pd.DataFrame) -> dict[str, list[str]]:
    """Each raw macro series' first and last date (ISO), as recorded in a dataset's recipe."""
    dates = pd.to_datetime(series["date"]).dt.strftime("%Y-%m-%d")
    spans = dates.groupby(series["series"].to_numpy()).agg(["min", "max"])
    return {name: [first, last] for name, (first, last) in spans.iterrows()}


def macro_observed_span(series: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The first and last business day on which every macro feature is known from ``series``
    (``mask_macro`` 1 in between, except where a series has a gap past its staleness limit),
    or None if there is no such day."""
    features = macro_features(series)
    complete = features.loc[features[MACRO_FEATURES].notna().all(axis=1), "date"]
    return (complete.min(), complete.max()) if len(complete) else None


def _in_own_periods(values: pd.Series, derive, *, monthly: bool) -> pd.Series:
    """``derive`` applied to a series indexed by date; a monthly series is laid on a calendar
    of months first, so ``shift(12)`` means twelve months earlier even when a month is
    missing (the missing month's own value stays unknown)."""
    if not monthly:
        return derive(values)
    months = values.index.to_period("M")
    by_month = pd.Series(values.to_numpy(), index=months).groupby(level=0).last()
    calendar = pd.period_range(by_month.index.min(), by_month.index.max(), freq="M")
    derived = derive(by_month.reindex(calendar))
    return pd.Series(derived.reindex(months).to_numpy(), index=values.index)


def macro_features(series: pd.DataFrame) -> pd.DataFrame:
    """The 12 macro features per business day from raw series (date, series, value).

    Series names are the keys of ``MACRO_SERIES``. An optional ``released`` column gives the
    day each value became known; otherwise the series' publication lag is applied. A value
    is carried forward for at most its series' ``max_age_days`` after its release; a feature
    is NaN while any series it needs is unknown or stale.
    """
    frame = series.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.normalize()
    if "released" in frame.columns:
        frame["released"] = business_day(frame["released"])
    else:
        frame["released"] = pd.NaT
        for name in frame["series"].unique():
            rows = frame["series"] == name
            frame.loc[rows, "released"] = release_dates(name, frame.loc[rows, "date"])
    frame["released"] = pd.to_datetime(frame["released"])
    max_age = frame["series"].map(lambda name: MACRO_SERIES[name].max_age_days)
    stale_from = frame["released"] + pd.to_timedelta(max_age, unit="D")
    days = pd.bdate_range(frame["released"].min(), stale_from.max())

    def known(name: str, derive=None) -> pd.Series:
        """A series (optionally transformed in its own periods) as known on each day."""
        rows = frame[frame["series"] == name].sort_values("date")
        if rows.empty:
            return pd.Series(np.nan, index=days)
        values = rows.set_index("date")["value"].astype(float)
        if derive is not None:
            values = _in_own_periods(values, derive, monthly=MACRO_SERIES[name].monthly)
        by_release = pd.Series(values.to_numpy(), index=rows["released"].to_numpy())
        by_release = by_release[~by_release.index.duplicated(keep="last")].sort_index()
        current = by_release.reindex(days, method="ffill")
        released = pd.Series(by_release.index, index=by_release.index).reindex(days, method="ffill")
        age = days - pd.DatetimeIndex(released)
        return current.where(age <= pd.Timedelta(days=MACRO_SERIES[name].max_age_days))

    infl_yoy = known("cpi", lambda v: v / v.shift(12) - 1)
    rate_long = known("aaa") / 100
    credit_spread = (known("baa") - known("aaa")) / 100
    oil = known("oil")
    vix = known("vix")
    oil_returns = np.log(oil).diff()
    result = pd.DataFrame(
        {
            "infl_yoy": infl_yoy,
            "infl_3m_ann": known("cpi", lambda v: (v / v.shift(3)) ** 4 - 1),
            "rate_long": rate_long,
            "rate_long_chg_63d": rate_long.diff(63),
            "credit_spread": credit_spread,
            "credit_spread_chg_63d": credit_spread.diff(63),
            "real_rate": rate_long - infl_yoy,
            "oil_ret_21d": np.log(oil).diff(21),
            "oil_ret_63d": np.log(oil).diff(63),
            "oil_vol_21d": oil_returns.rolling(21, min_periods=21).std() * np.sqrt(TRADING_DAYS),
            "vix_level": vix / 100,
            "vix_chg_21d": np.log(vix).diff(21),
        },
        index=days,
    )
    result = result.rename_axis("date").reset_index()[["date", *MACRO_FEATURES]]
    return _end_of_span(result, days[-1])
