"""Context features from raw records, against hand-computed values and the as-of rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.market.context import (
    MACRO_FEATURES,
    MACRO_SERIES,
    NEWS_FEATURES,
    POLICY_FEATURES,
    POLICY_WINDOW,
    macro_features,
    news_features,
    policy_features,
    release_dates,
    score_headlines,
)
from core.market.features import context_asof


def _day(frame: pd.DataFrame, date: str, ticker: str | None = None) -> pd.Series:
    rows = frame[frame["date"] == pd.Timestamp(date)]
    if ticker is not None:
        rows = rows[rows["ticker"] == ticker]
    assert len(rows) == 1
    return rows.iloc[0]


def test_news_features_match_hand_computed_values() -> None:
    headlines = pd.DataFrame(
        {
            "date": ["2024-03-04", "2024-03-04", "2024-03-04", "2024-03-09", "2024-03-12"],
            "ticker": ["AAA"] * 5,
            "score": [0.6, -0.2, 0.0, 0.5, -0.5],
            "source": ["wire", "wire", "blog", "wire", "blog"],
        }
    )
    news = news_features(headlines)
    assert list(news.columns) == ["date", "ticker", *NEWS_FEATURES]
    monday = _day(news, "2024-03-04", "AAA")
    scores = np.array([0.6, -0.2, 0.0])
    assert monday["news_sentiment_mean"] == pytest.approx(scores.mean())
    assert monday["news_sentiment_std"] == pytest.approx(scores.std())
    assert monday["news_positive_share"] == pytest.approx(1 / 3)
    assert monday["news_negative_share"] == pytest.approx(1 / 3)
    assert monday["news_volume_log"] == pytest.approx(np.log(4))
    assert monday["news_source_diversity"] == pytest.approx(2 / 3)
    quiet = _day(news, "2024-03-05", "AAA")  # an observed day without news
    assert quiet["news_volume_log"] == 0 and quiet["news_sentiment_mean"] == 0
    ema = 2 / 6
    assert quiet["news_sentiment_ema5"] == pytest.approx((1 - ema) * scores.mean())
    # Saturday's headline is known on Monday 11 March, not on Friday 8 March.
    assert _day(news, "2024-03-08", "AAA")["news_volume_log"] == 0
    assert _day(news, "2024-03-11", "AAA")["news_sentiment_mean"] == pytest.approx(0.5)
    assert np.isnan(monday["news_volume_z20"]), "z-score needs 20 days of history"


def test_vader_scores_headlines_offline() -> None:
    scores = score_headlines(pd.Series(["Profits soar to a record", "Company faces fraud probe"]))
    assert scores[0] > 0.05 and scores[1] < -0.05


def test_policy_features_match_hand_computed_values() -> None:
    events = pd.DataFrame(
        {
            "date": ["2024-01-02", "2024-01-03", "2024-01-16"],
            "type": ["rate_cut", "tariff", "statement"],
            "urgency": [5, 2, 1],
            "sector": ["all", "energy", "financials"],
        }
    )
    policy = policy_features(events)
    assert list(policy.columns) == ["date", *POLICY_FEATURES]
    second = _day(policy, "2024-01-03")
    assert second["policy_event_count"] == 2
    assert second["policy_urgency_max"] == pytest.approx(1.0)
    alpha = 2 / 11
    stance = (1 - alpha) * 1.0 + alpha * (-0.4)  # the EMA starts at the first day's value
    assert second["policy_stance"] == pytest.approx(stance)
    assert second["policy_sector_breadth"] == pytest.approx(1.0), "'all' covers every sector"
    assert second["policy_recency"] == pytest.approx(1.0)
    later = _day(policy, "2024-01-12")  # 7 business days after the last event
    assert later["policy_recency"] == pytest.approx(np.exp(-0.7))
    assert later["policy_urgency_max"] == 0


def test_monthly_macro_is_known_only_from_its_release() -> None:
    months = pd.date_range("2022-01-01", "2023-06-01", freq="MS")
    cpi = pd.DataFrame({"date": months, "series": "cpi", "value": 100 + np.arange(len(months))})
    daily = pd.bdate_range("2022-01-03", "2023-08-31")
    series = pd.concat(
        [
            cpi,
            pd.DataFrame({"date": months, "series": "aaa", "value": 4.0}),
            pd.DataFrame({"date": months, "series": "baa", "value": 5.5}),
            pd.DataFrame({"date": daily, "series": "oil", "value": 70.0}),
            pd.DataFrame({"date": daily, "series": "vix", "value": 20.0}),
        ]
    )
    macro = macro_features(series)
    assert list(macro.columns) == ["date", *MACRO_FEATURES]
    # March 2023 CPI (value 114) is released 15 days after the month: Monday 17 April 2023.
    assert release_dates("cpi", pd.Series(pd.to_datetime(["2023-03-01"]))).iloc[0] == (
        pd.Timestamp("2023-04-17")
    )
    before = _day(macro, "2023-04-14")["infl_yoy"]
    after = _day(macro, "2023-04-17")["infl_yoy"]
    assert before == pytest.approx(113 / 101 - 1), "February's print until the release"
    assert after == pytest.approx(114 / 102 - 1)
    row = _day(macro, "2023-05-01")
    assert row["credit_spread"] == pytest.approx(0.015)
    assert row["real_rate"] == pytest.approx(0.04 - (114 / 102 - 1))
    assert row["vix_level"] == pytest.approx(0.2) and row["vix_chg_21d"] == pytest.approx(0)
    assert row["oil_vol_21d"] == pytest.approx(0)
    assert np.isnan(_day(macro, "2022-06-01")["infl_yoy"]), "needs twelve months of history"


def test_released_column_overrides_the_default_lag() -> None:
    series = pd.DataFrame(
        {
            "date": pd.to_datetime(["2023-01-02", "2023-01-03"]),
            "series": "vix",
            "value": [20.0, 30.0],
            "released": pd.to_datetime(["2023-01-02", "2023-01-05"]),
        }
    )
    macro = macro_features(series)
    assert _day(macro, "2023-01-04")["vix_level"] == pytest.approx(0.2)
    assert _day(macro, "2023-01-05")["vix_level"] == pytest.approx(0.3)


def _full_macro(
    months: pd.DatetimeIndex, days: pd.DatetimeIndex, cpi_months: pd.DatetimeIndex | None = None
) -> pd.DataFrame:
    """All five series: monthly ones on ``months`` (CPI on ``cpi_months`` if given, valued
    100 + months since the first), daily ones on ``days``."""
    cpi_months = months if cpi_months is None else cpi_months
    cpi = 100 + (cpi_months.year - months[0].year) * 12 + cpi_months.month - months[0].month
    return pd.concat(
        [
            pd.DataFrame({"date": cpi_months, "series": "cpi", "value": cpi.astype(float)}),
            pd.DataFrame({"date": months, "series": "aaa", "value": 4.0}),
            pd.DataFrame({"date": months, "series": "baa", "value": 5.5}),
            pd.DataFrame({"date": days, "series": "oil", "value": 70.0}),
            pd.DataFrame({"date": days, "series": "vix", "value": 20.0}),
        ]
    )


def _context_on(macro: pd.DataFrame, dates: list[str]) -> pd.DataFrame:
    rows = pd.DataFrame({"date": pd.to_datetime(dates), "ticker": "AAA"})
    return context_asof(macro, rows)


def test_daily_macro_older_than_a_week_is_unknown_and_never_carried_for_years() -> None:
    months = pd.date_range("2021-01-01", "2023-12-01", freq="MS")
    days = pd.bdate_range("2022-01-03", "2023-06-30")  # daily series stop on Friday 30 June
    macro = macro_features(_full_macro(months, days))
    assert MACRO_SERIES["vix"].max_age_days == 7
    known = _context_on(macro, ["2023-06-30", "2023-07-07", "2023-07-10", "2023-09-01"])
    assert known["vix_level"].tolist()[:2] == [pytest.approx(0.2)] * 2, "7 days old: known"
    assert known["vix_level"].iloc[2:].isna().all(), "10 days old: stale, unknown"
    assert known["infl_yoy"].notna().all(), "the monthly series are still current"
    assert known["mask_macro"].tolist() == [1.0, 1.0, 0.0, 0.0]
    years_later = _context_on(macro, ["2030-01-02"])
    assert years_later[MACRO_FEATURES].isna().all(axis=None), "nothing carried forward"
    assert years_later["mask_macro"].iloc[0] == 0


def test_monthly_macro_tolerates_one_missed_release_but_not_two() -> None:
    days = pd.bdate_range("2021-01-04", "2023-12-29")
    every = pd.date_range("2021-01-01", "2023-12-01", freq="MS")
    one_missing = every[every != pd.Timestamp("2023-02-01")]
    two_missing = one_missing[one_missing != pd.Timestamp("2023-03-01")]
    # CPI is 100 + months since January 2021. January 2023 (124) is released on 16 February;
    # February would be on 15 March, March on 17 April, April on 16 May.
    dates = ["2023-04-14", "2023-04-19", "2023-04-20", "2023-05-15", "2023-05-16"]
    tolerated = _context_on(macro_features(_full_macro(every, days, one_missing)), dates)
    assert tolerated["mask_macro"].tolist() == [1.0] * 5
    assert tolerated["infl_yoy"].iloc[0] == pytest.approx(124 / 112 - 1), "January, 57 days old"
    # Twelve months along the calendar: March 2023 (126) against March 2022 (114), not
    # against the value twelve rows earlier (February 2022, one row being missing).
    assert tolerated["infl_yoy"].iloc[1] == pytest.approx(126 / 114 - 1)
    stale = _context_on(macro_features(_full_macro(every, days, two_missing)), dates)
    assert stale["infl_yoy"].iloc[:2].notna().all(), "January's print is 62 days old on 19 April"
    assert stale["infl_yoy"].iloc[2:4].isna().all(), "older than two release periods: unknown"
    assert stale["mask_macro"].tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]


def test_news_and_policy_are_unknown_after_their_span() -> None:
    headlines = pd.DataFrame(  # from January: the volume z-score needs 20 days
        {"date": ["2024-01-02", "2024-03-08"], "ticker": ["AAA", "BBB"], "score": [0.5, -0.5]}
    )
    news = news_features(headlines)
    known = context_asof(
        news,
        pd.DataFrame(
            {
                "date": pd.to_datetime(["2024-03-08", "2024-03-08", "2024-03-11", "2025-01-02"]),
                "ticker": ["AAA", "BBB", "AAA", "BBB"],
            }
        ),
    )
    assert known["mask_news"].tolist() == [1.0, 1.0, 0.0, 0.0], "the file ends on 8 March"
    events = pd.DataFrame(
        {"date": ["2024-01-02"], "type": ["rate_cut"], "urgency": [5], "sector": ["all"]}
    )
    policy = policy_features(events)
    window_end = pd.Timestamp("2024-01-02") + pd.offsets.BDay(POLICY_WINDOW)
    known = context_asof(
        policy,
        pd.DataFrame({"date": [window_end, window_end + pd.offsets.BDay(1)], "ticker": "AAA"}),
    )
    assert known["mask_policy"].tolist() == [1.0, 0.0]
    assert known["policy_recency"].iloc[0] == pytest.approx(np.exp(-POLICY_WINDOW / 10))
