-- Features and regime labels, one row per bar (ts = the bar's OPEN time, UTC), written by
-- trading_core.warehouse.features only (delete the recomputed window, then insert, in one
-- transaction), so (venue, symbol, timeframe, ts) stays unique without an index.
--
-- WIDE layout: one DOUBLE per feature. Every consumer (regimes, strategies, ML datasets) reads
-- many features of the same bars, which here is a single columnar scan with projection, and the
-- features of a bar are computed and replaced together. A long (feature, value) layout would
-- multiply rows by ~34 and need a pivot on every read. Adding a feature is a new migration adding
-- a column. NULL means "not defined yet" (warm-up, no level in range, no volume), never 0.
-- feature_version hashes the parameters and code that produced the row (features.compute).
CREATE TABLE features.indicators (
    venue        VARCHAR     NOT NULL,
    symbol       VARCHAR     NOT NULL,
    timeframe    VARCHAR     NOT NULL,
    ts           TIMESTAMPTZ NOT NULL,
    sma_fast     DOUBLE,
    sma_slow     DOUBLE,
    ema_fast     DOUBLE,
    ema_slow     DOUBLE,
    rsi          DOUBLE,
    macd         DOUBLE,
    macd_signal  DOUBLE,
    macd_hist    DOUBLE,
    bb_mid       DOUBLE,
    bb_upper     DOUBLE,
    bb_lower     DOUBLE,
    bb_pctb      DOUBLE,
    bb_width     DOUBLE,
    atr          DOUBLE,
    adx          DOUBLE,
    plus_di      DOUBLE,
    minus_di     DOUBLE,
    ma_slope     DOUBLE,
    ma_slope_atr DOUBLE,
    rvol         DOUBLE,
    rvol_pct     DOUBLE,
    vp_poc       DOUBLE,
    vp_vah       DOUBLE,
    vp_val       DOUBLE,
    support      DOUBLE,
    resistance   DOUBLE,
    fib_236      DOUBLE,
    fib_382      DOUBLE,
    fib_500      DOUBLE,
    fib_618      DOUBLE,
    fib_786      DOUBLE,
    day_of_week  DOUBLE,
    month        DOUBLE,
    hour         DOUBLE,
    feature_version VARCHAR  NOT NULL
);

-- One label per bar after the features' warm-up; regime_version hashes the RegimeConfig and the
-- rules' code version, so any metric joined on (venue, symbol, timeframe, ts) can be sliced by a
-- named, reproducible definition of regime.
CREATE TABLE features.regimes (
    venue          VARCHAR     NOT NULL,
    symbol         VARCHAR     NOT NULL,
    timeframe      VARCHAR     NOT NULL,
    ts             TIMESTAMPTZ NOT NULL,
    regime         VARCHAR     NOT NULL,
    regime_version VARCHAR     NOT NULL
);
