"""Crisis survival on the real sample history: buy-and-hold through a crisis equals the window's
return and drawdown computed by hand from the same stored bars; uncovered windows say 'no data'."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.unit.stress._stress_support import trading_config, warehouse_copy
from trading_core.stress.catalogue import coverage, load_catalogue, window
from trading_core.stress.config import StrategySpec, SurvivalLimits
from trading_core.stress.crisis import BASELINE, run_crisis, run_window
from trading_core.stress.survival import survival_report, worst_day


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("stress_wh")
    return warehouse_copy(root / "warehouse.duckdb", tmp_path_factory.getbasetemp())


def test_catalogue_names_every_crisis_the_issue_lists() -> None:
    cat = load_catalogue("config/crises.yaml")
    names = {c.name for c in cat.crises}
    assert {"gfc_2008", "flash_crash_2010", "us_downgrade_2011", "china_oil_2015", "volmageddon_2018",
            "q4_selloff_2018", "covid_2020", "rate_shock_2022", "crypto_winter_2018", "crypto_covid_2020",
            "crypto_may_2021", "crypto_terra_ftx_2022"} <= names
    assert all(c.targets for c in cat.crises)


def test_buy_and_hold_through_a_crisis_equals_the_window_return_and_drawdown_of_its_bars(wh, tmp_path: Path) -> None:
    cfg = trading_config(tmp_path, zero_fees=True)
    crisis = load_catalogue(cfg.stress.crises_file).get("gfc_2008")
    start, end = window(crisis)
    target = crisis.targets[0]
    res = run_window(cfg, cfg.stress, wh, crisis.name, target, BASELINE, start, end, risk=False)
    # independently: all-in at the second bar's open (next_open fill, no fees), marked at each close
    bars = wh.read_bars(target.venue, target.symbol, target.timeframe, start, end)
    o, c = bars["open"].to_numpy(), bars["close"].to_numpy()
    equity = np.r_[1.0, c[1:] / o[1]]
    expected_dd = float(np.min(equity / np.maximum.accumulate(equity) - 1.0))
    s = res.survival
    assert s is not None and res.status == "ok"
    assert s.bars == bars.height
    assert s.total_return == pytest.approx(c[-1] / o[1] - 1.0, rel=1e-9)
    assert s.max_drawdown == pytest.approx(expected_dd, rel=1e-9)
    assert s.max_drawdown < -0.3  # the 2008 crash is in the data, not a flat line
    trough = int(np.argmin(equity / np.maximum.accumulate(equity)))
    assert s.drawdown_trough is not None and s.drawdown_trough.date() == bars["ts"][trough].date()
    assert s.survived is False and any("drawdown" in why for why in s.failed_because)


def test_uncovered_crisis_reports_no_data_for_every_cell_never_skips_it(wh, tmp_path: Path) -> None:
    cfg = trading_config(tmp_path, strategies=(StrategySpec(name="macd"),))
    crisis = load_catalogue(cfg.stress.crises_file).get("covid_2020")
    rows = run_crisis(cfg, cfg.stress, wh, crisis)
    assert len(rows) == len(crisis.targets) * 2 * 2  # targets x (buy-and-hold, macd) x risk off/on
    assert {r.status for r in rows} == {"no data"}
    assert all(r.survival is None and "2018-12-31" in r.coverage.note for r in rows if r.target.symbol == "^GSPC")


def test_risk_on_and_off_both_run_and_risk_on_counts_breaker_trips(wh, tmp_path: Path) -> None:
    cfg = trading_config(tmp_path, strategies=(StrategySpec(name="ma_crossover", params={"fast": 10, "slow": 30}),))
    crisis = load_catalogue(cfg.stress.crises_file).get("crypto_winter_2018")
    rows = run_crisis(cfg, cfg.stress, wh, crisis)
    by = {(r.strategy.name, r.risk): r for r in rows}
    assert set(by) == {("buy_and_hold", False), ("buy_and_hold", True), ("ma_crossover", False),
                       ("ma_crossover", True)}
    off, on = by[("buy_and_hold", False)].survival, by[("buy_and_hold", True)].survival
    assert off is not None and on is not None
    assert off.breaker_trips == 0 and on.breaker_trips > 0  # breakers only exist with the risk layer
    assert off.max_drawdown < -0.5  # BTC fell from ~17k to ~6k in the window
    assert on.max_drawdown > off.max_drawdown  # the armed risk layer cut the loss
    assert by[("ma_crossover", False)].baseline is not None  # the normal year before is stored


def test_survival_verdict_follows_the_configured_limits() -> None:
    ts = np.arange(5, dtype=np.int64) * 86_400_000
    eq = np.array([100.0, 90.0, 60.0, 70.0, 80.0])
    strict = survival_report(ts, eq, timeframe="1d", calendar="crypto", limits=SurvivalLimits(max_drawdown=0.3))
    loose = survival_report(ts, eq, timeframe="1d", calendar="crypto",
                            limits=SurvivalLimits(max_drawdown=0.5, min_final_equity=0.5))
    assert strict.max_drawdown == pytest.approx(-0.4) and strict.survived is False
    assert loose.survived is True
    assert worst_day(ts, eq) == (pytest.approx(-1 / 3), "1970-01-03")


def test_coverage_is_partial_when_the_store_ends_inside_the_window(wh) -> None:
    from trading_core.stress.config import CrisisTarget

    t = CrisisTarget(venue="yahoo", symbol="^GSPC", timeframe="1d")
    cov = coverage(wh, t, datetime(2018, 6, 1, tzinfo=UTC), datetime(2019, 6, 1, tzinfo=UTC))
    assert cov.status == "partial" and "2018-12-31" in cov.note
