"""Issue 36: each market target is judged by its use. A market where a model gets the dates'
common moves right and the order of tickers on a date reversed (pooled correlation > 0, rank
IC < 0, the long/short portfolio loses) is never "beats", and the verdict says why; a lead
whose own portfolio loses is a "conflict"; with too few tickers the pooled correlation is
judged beside the per-ticker portfolio that trades it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.market.evaluation import score_report
from core.market.models import model_spec
from core.market.strategy import StrategyConfig
from core.market.uses import CROSS_SECTION, HEDGE, TIME_SERIES, use_for
from core.market.verdict import EvaluationConfig, declare_primary, uncertainty_report

SPEC = model_spec("lstm_attention")  # a return target: trend score and up / down
H = 7


def reversed_market(tickers: int, *, dates: int = 500, seed: int = 0):
    """Daily returns = a date effect shared by every ticker + each ticker's own move. The
    'model' knows the next week's date effect and the opposite of each ticker's own move:
    dates right, order reversed. Returns (rows, predictors) as the verdict reads them."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2018-01-01", periods=dates + 6)
    common = rng.normal(0, 0.012, len(days))[:, None]
    own = rng.normal(0, 0.008, (len(days), tickers))
    returns = common + own
    window = np.array([returns[i + 1 : i + 6].sum(0) for i in range(dates)])  # (t, t + 5]
    common_ahead = np.array([common[i + 1 : i + 6].sum() for i in range(dates)])
    own_ahead = window - common_ahead[:, None]
    names = [f"T{i:02d}" for i in range(tickers)]
    frame = pd.DataFrame(
        {
            "date": np.repeat(days[:dates], tickers),
            "ticker": np.tile(names, dates),
            f"fwd_return_{H}d": window.ravel(),
            f"trend_{H}d": np.tanh(window.ravel() / 0.03),
            f"up_{H}d": (window.ravel() > 0).astype(float),
            "next_return": returns[1 : dates + 1].ravel(),
        }
    )
    score = np.tanh((common_ahead[:, None] - 0.5 * own_ahead) / 0.03).ravel()
    noise = np.tanh(rng.normal(0, 1, dates * tickers))
    keys = frame[["date", "ticker"]]
    predictors = {
        "model": keys.assign(**{f"score_{H}d": score, f"class_{H}d": (score > 0).astype(int)}),
        "noise": keys.assign(**{f"score_{H}d": noise, f"class_{H}d": (noise > 0).astype(int)}),
    }
    return frame, predictors


def judge(rows, predictors, config: EvaluationConfig | None = None):
    config = config or EvaluationConfig()
    primary = declare_primary(config, rows, kind=SPEC.target.kind)
    reports = {
        name: score_report(SPEC, p, rows, strategy=config.strategy, use=primary["use"])
        for name, p in predictors.items()
    }
    return reports, uncertainty_report(SPEC, predictors, rows, reports, primary=primary)


def test_each_target_declares_one_use() -> None:
    assert use_for("co-movement", "hedge") is HEDGE and not HEDGE.strategies
    assert use_for("return", "rank_ic") is CROSS_SECTION
    assert use_for("return", "pearson") is TIME_SERIES
    assert model_spec("dual_tower").target.kind == "co-movement"
    assert SPEC.target.kind == "return"


def test_dates_right_and_order_reversed_is_never_beats_and_says_why() -> None:
    rows, predictors = reversed_market(30)
    reports, judged = judge(rows, predictors)
    model = reports["model"][f"{H}d"]
    assert judged["primary"]["metric"] == "rank_ic" and judged["primary"]["use"]["name"] == (
        "cross-section"
    )
    assert model["regression"]["pearson"] > 0.3, "the dates' common moves are right"
    assert model["finance"]["rank_ic"] < -0.2, "the order on a date is reversed"
    assert model["finance"]["market_neutral"]["sharpe_high"] < 0, "trading the order loses"
    assert "time_series" not in model["finance"], "no pooled-metric portfolio beside it"
    section = judged["horizons"][f"{H}d"]
    assert "hedge" not in section["intervals"]["model"], "a hedge is a co-movement's use"
    assert all(c["metric"] != "hedge" for c in section["comparisons"])
    pooled = next(c for c in judged["horizons"][f"{H}d"]["comparisons"] if c["metric"] == "pearson")
    assert pooled["verdict"] == "beats", "pooled correlation alone would have said 'beats'"
    verdict = judged["verdict"]
    assert verdict["verdict"] == "no evidence", verdict
    assert "Why: at 7 days its pooled correlation with the target leads" in verdict["sentence"]
    assert "order of tickers on a date" in verdict["sentence"]


def test_a_lead_whose_own_portfolio_loses_is_a_conflict_not_beats() -> None:
    """Real cross-sectional skill, traded at 1,000 bp a unit of turnover: rank IC leads, the
    market-neutral portfolio loses. The verdict says both, and no 'beats'."""
    rows, predictors = reversed_market(30, seed=1)
    own = rows[f"fwd_return_{H}d"] - rows.groupby("date")[f"fwd_return_{H}d"].transform("mean")
    skilled = np.tanh(own.to_numpy() / 0.01)
    predictors["model"] = predictors["model"].assign(**{f"score_{H}d": skilled})
    config = EvaluationConfig(strategy=StrategyConfig(cost_bps=1000))
    reports, judged = judge(rows, predictors, config)
    assert judged["horizons"][f"{H}d"]["primary"]["family_low"] > 0, "rank IC leads"
    assert reports["model"][f"{H}d"]["finance"]["market_neutral"]["sharpe_high"] < 0
    verdict = judged["verdict"]
    assert verdict["verdict"] == "conflict", verdict
    assert "the market-neutral long/short portfolio that trades it loses" in verdict["sentence"]
    cheap = judge(rows, predictors)[1]["verdict"]
    assert cheap["verdict"] == "beats", "at 10 bp the same lead is a 'beats'"


def test_with_too_few_tickers_the_pooled_metric_is_judged_beside_the_portfolio_it_trades() -> None:
    rows, predictors = reversed_market(5)
    reports, judged = judge(rows, predictors)
    assert judged["primary"]["metric"] == "pearson"
    assert "fewer than 20 for a cross-section" in judged["primary"]["reason"]
    finance = reports["model"][f"{H}d"]["finance"]
    assert set(finance) & {"market_neutral", "long_only", "time_series"} == {"time_series"}
    traded = finance["time_series"]
    assert traded["sharpe_low"] > 0, "trading each ticker by its score earns the date effect"
    assert judged["verdict"]["verdict"] == "beats", judged["verdict"]


@pytest.mark.parametrize("tickers", [30, 5])
def test_the_verdict_never_says_beats_while_the_use_s_portfolio_loses(tickers: int) -> None:
    rows, predictors = reversed_market(tickers, seed=2)
    losing = []
    for cost in (10, 1000):
        config = EvaluationConfig(strategy=StrategyConfig(cost_bps=cost))
        reports, judged = judge(rows, predictors, config)
        check = judged["primary"]["use"]["check"]
        traded = reports["model"][f"{H}d"]["finance"][check]
        if traded["sharpe_high"] < 0:
            losing.append(cost)
            assert judged["verdict"]["verdict"] != "beats", (tickers, cost, judged["verdict"])
    assert losing, "at 1,000 bp the portfolio loses, whatever the scores"
