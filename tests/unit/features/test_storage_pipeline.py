"""Storage (0003 tables, one-transaction writes) and the incremental pipeline end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from feature_helpers import load_bars

from trading_core.cli import main
from trading_core.features import FEATURE_COLUMNS, FeatureSpec, RegimeConfig
from trading_core.features.pipeline import FeaturePipelineConfig, update_features
from trading_core.warehouse import Warehouse
from trading_core.warehouse.features import read_features, read_regimes, stored_state, write_features

KEY = ("yahoo", "^GSPC", "1d")


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    w = Warehouse(tmp_path / "w.duckdb")
    w.migrate()
    return w


def read_all(wh: Warehouse) -> tuple[pl.DataFrame, pl.DataFrame]:
    with wh.connect(read_only=True) as con:
        return read_features(con, *KEY), read_regimes(con, *KEY)


def test_incremental_updates_equal_one_full_update(tmp_path: Path, spx: pl.DataFrame) -> None:
    inc, full = Warehouse(tmp_path / "inc.duckdb"), Warehouse(tmp_path / "full.duckdb")
    for w in (inc, full):
        w.migrate()
    load_bars(full, *KEY, spx)
    r = update_features(full, *KEY, calendar="equity")
    assert (r.mode, r.features_written) == ("full", spx.height)
    # The incremental store receives the history in slices: a big first load, then daily bars.
    cuts = [spx.height - 300, spx.height - 299, spx.height - 250, spx.height - 1, spx.height]
    prev = 0
    for cut in cuts:
        load_bars(inc, *KEY, spx.slice(prev, cut - prev))
        r = update_features(inc, *KEY, calendar="equity")
        assert r.features_written == cut - prev
        assert r.mode == ("full" if prev == 0 else "incremental")
        prev = cut
    assert update_features(inc, *KEY, calendar="equity").mode == "up_to_date"
    (fi, ri), (ff, rf) = read_all(inc), read_all(full)
    assert fi["ts"].to_list() == ff["ts"].to_list()
    for c in FEATURE_COLUMNS:
        x, y = fi[c].to_numpy().astype(float), ff[c].to_numpy().astype(float)
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=c)
    assert ri.equals(rf)


def test_stored_rows_null_for_warm_up_and_carry_versions(wh: Warehouse, spx: pl.DataFrame) -> None:
    load_bars(wh, *KEY, spx.head(400))
    r = update_features(wh, *KEY, calendar="equity")
    f, reg = read_all(wh)
    assert f["adx"].head(27).null_count() == 27 and f["adx"][27] is not None
    assert f["hour"].null_count() == f.height  # daily bars: no hour-of-day
    assert f["feature_version"].unique().to_list() == [r.feature_version]
    assert reg["regime_version"].unique().to_list() == [r.regime_version]
    with wh.connect(read_only=True) as con:
        state = stored_state(con, *KEY)
    assert state.regime is not None and state.regime.last_ts == f["ts"][-1] == state.last_feature_ts
    run = 1
    for x in reversed(reg["regime"].to_list()[:-1]):
        if x != reg["regime"][-1]:
            break
        run += 1
    assert state.regime.dwell == run


def test_new_config_recomputes_the_whole_series(wh: Warehouse, spx: pl.DataFrame) -> None:
    load_bars(wh, *KEY, spx.head(1200))
    update_features(wh, *KEY)
    cfg = FeaturePipelineConfig(regimes=RegimeConfig(min_dwell=8))
    r = update_features(wh, *KEY, cfg)
    assert (r.mode, r.features_written) == ("full", 1200)
    _, reg = read_all(wh)
    assert reg["regime_version"].unique().to_list() == [r.regime_version]
    r2 = update_features(wh, *KEY, FeaturePipelineConfig(features=FeatureSpec(rsi=10), regimes=cfg.regimes))
    assert r2.mode == "full" and r2.feature_version != r.feature_version


def test_a_failed_write_leaves_the_previous_rows(wh: Warehouse, spx: pl.DataFrame) -> None:
    load_bars(wh, *KEY, spx.head(500))
    update_features(wh, *KEY)
    before = read_all(wh)
    feats = before[0].drop("feature_version").with_columns(pl.col(FEATURE_COLUMNS).fill_null(np.nan))
    bad = pl.DataFrame({"ts": feats["ts"].head(3), "regime": [None, None, None], "regime_version": "x"},
                       schema_overrides={"regime": pl.Utf8})
    with wh.connect() as con, pytest.raises(Exception, match="(?i)null|constraint"):
        write_features(con, *KEY, features=feats.tail(10), feature_version="v", regimes=bad,
                       replace_from=feats["ts"][0])
    after = read_all(wh)
    assert after[0].equals(before[0]) and after[1].equals(before[1])


def test_cli_regimes_summary(wh: Warehouse, spx: pl.DataFrame, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    load_bars(wh, *KEY, spx)
    update_features(wh, *KEY, calendar="equity")
    monkeypatch.setenv("TRADING_WAREHOUSE", str(wh.path))
    assert main(["regimes", "--symbol", "^GSPC", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["venue"], doc["timeframe"]) == ("yahoo", "1d")
    assert sum(r["bars"] for r in doc["regimes"].values()) == doc["bars"] > 4000
    assert abs(sum(r["share"] for r in doc["regimes"].values()) - 1) < 1e-12
    assert doc["longest_spans"][0]["bars"] >= doc["longest_spans"][-1]["bars"]
    assert main(["regimes", "--symbol", "^GSPC", "--venue", "yahoo", "--timeframe", "1d"]) == 0
    text = capsys.readouterr().out
    assert "high_vol_stress" in text and "longest spans" in text
    assert main(["regimes", "--symbol", "AAPL"]) == 2
    assert "no configured universe" in capsys.readouterr().err
    assert main(["regimes", "--symbol", "bad;sym", "--venue", "yahoo", "--timeframe", "1d"]) == 2


def test_feature_coverage_counts_bars_features_warmup_nans_and_labels(wh: Warehouse, spx: pl.DataFrame) -> None:
    from datetime import UTC, datetime

    from trading_core.warehouse.features import feature_coverage

    load_bars(wh, *KEY, spx.head(400))
    update_features(wh, *KEY, calendar="equity")
    a, b = datetime(1999, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
    with wh.connect(read_only=True) as con:
        fc = feature_coverage(con, *KEY, a, b, warmup_bars=300, columns=("rsi", "atr"))
        early = feature_coverage(con, *KEY, a, b, warmup_bars=0, columns=("rvol_pct",))
        late = feature_coverage(con, *KEY, a, b, warmup_bars=1_000, columns=("rsi",))
        with pytest.raises(ValueError, match="not feature columns"):
            feature_coverage(con, *KEY, a, b, warmup_bars=0, columns=("rsi; DROP TABLE market.bars",))
    assert (fc.bars, fc.features, fc.nan_rows) == (400, 400, 0)
    assert early.nan_rows and early.nan_rows > 0  # the volatility rank is NaN through its warm-up
    assert late.nan_rows is None  # not past the warm-up yet: nothing to judge
    assert sum(fc.regimes.values()) > 0
