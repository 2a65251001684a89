-- Stress and stability results (trading_core.stress, DML in warehouse/stress.py).
--
-- One row per run in stress.runs with its lineage (data range, strategy config, execution-model
-- hash, seed, code version); everything else hangs off run_id. Rows are written in ONE
-- transaction per run, so a reader never sees half a run.
CREATE SCHEMA IF NOT EXISTS stress;

CREATE TABLE stress.runs (
    run_id               VARCHAR     PRIMARY KEY,
    kind                 VARCHAR     NOT NULL,   -- crisis | montecarlo | stability
    created_at           TIMESTAMPTZ NOT NULL,
    scope                VARCHAR     NOT NULL,   -- crisis name, 'custom', or sweep names
    data_range           JSON        NOT NULL,   -- [{venue, symbol, timeframe, start, end, status}]
    config               JSON        NOT NULL,   -- the stress config and strategies used
    execution_model_hash VARCHAR,
    seed                 BIGINT      NOT NULL,
    code_version         VARCHAR     NOT NULL,
    figures_dir          VARCHAR,
    summary              JSON        NOT NULL,
    recorded_at          TIMESTAMPTZ NOT NULL
);

-- One row per crisis x series x strategy x risk on/off; status 'no data' rows carry no figures.
CREATE TABLE stress.survival (
    run_id               VARCHAR     NOT NULL,
    crisis               VARCHAR     NOT NULL,
    venue                VARCHAR     NOT NULL,
    symbol               VARCHAR     NOT NULL,
    timeframe            VARCHAR     NOT NULL,
    strategy             VARCHAR     NOT NULL,
    risk                 BOOLEAN     NOT NULL,
    status               VARCHAR     NOT NULL,   -- ok | partial | no data
    window_start         TIMESTAMPTZ NOT NULL,
    window_end           TIMESTAMPTZ NOT NULL,
    bars                 INTEGER,
    max_drawdown         DOUBLE,
    drawdown_peak        TIMESTAMPTZ,
    drawdown_trough      TIMESTAMPTZ,
    drawdown_recovery    TIMESTAMPTZ,
    time_to_recover_days DOUBLE,
    worst_day            DOUBLE,
    worst_day_date       DATE,
    breaker_trips        INTEGER,
    final_equity         DOUBLE,
    total_return         DOUBLE,
    survived             BOOLEAN,
    detail               JSON        NOT NULL,   -- coverage, failure reasons, baseline, params
    recorded_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, crisis, venue, symbol, timeframe, strategy, risk)
);

-- Monte Carlo: one summary row per crisis (and series, strategy, risk) and its percentiles.
CREATE TABLE stress.montecarlo (
    run_id               VARCHAR     NOT NULL,
    crisis               VARCHAR     NOT NULL,
    venue                VARCHAR     NOT NULL,
    symbol               VARCHAR     NOT NULL,
    strategy             VARCHAR     NOT NULL,
    risk                 BOOLEAN     NOT NULL,
    mode                 VARCHAR     NOT NULL,   -- bootstrap | execution | both
    paths                INTEGER     NOT NULL,
    draws                INTEGER     NOT NULL,
    device               VARCHAR     NOT NULL,
    prob_ruin            DOUBLE      NOT NULL,
    ruin_drawdown        DOUBLE      NOT NULL,
    prob_loss            DOUBLE      NOT NULL,
    seconds              DOUBLE,
    detail               JSON        NOT NULL,
    recorded_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, crisis, venue, symbol, strategy, risk)
);

CREATE TABLE stress.montecarlo_percentiles (
    run_id      VARCHAR     NOT NULL,
    crisis      VARCHAR     NOT NULL,
    venue       VARCHAR     NOT NULL,
    symbol      VARCHAR     NOT NULL,
    strategy    VARCHAR     NOT NULL,
    risk        BOOLEAN     NOT NULL,
    metric      VARCHAR     NOT NULL,   -- final_equity | total_return | max_drawdown
    stat        VARCHAR     NOT NULL,   -- p1 .. p99 | mean
    value       DOUBLE      NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, crisis, venue, symbol, strategy, risk, metric, stat)
);

-- Every sweep evaluation: full-range grids and each walk-forward fold's in/out-of-sample cells.
CREATE TABLE stress.optimisation_history (
    run_id       VARCHAR     NOT NULL,
    sweep        VARCHAR     NOT NULL,
    fold         INTEGER     NOT NULL,   -- -1: the full-range sweep
    phase        VARCHAR     NOT NULL,   -- full | in_sample | out_of_sample
    strategy     VARCHAR     NOT NULL,
    params       JSON        NOT NULL,
    params_key   VARCHAR     NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    period_end   TIMESTAMPTZ NOT NULL,
    metric       VARCHAR     NOT NULL,
    value        DOUBLE,
    robustness   DOUBLE,
    chosen       BOOLEAN     NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, sweep, fold, phase, params_key)
);

-- One row per sweep: plateau score, optimum drift across folds, in/out-of-sample, overfit flag.
CREATE TABLE stress.stability (
    run_id         VARCHAR     NOT NULL,
    sweep          VARCHAR     NOT NULL,
    strategy       VARCHAR     NOT NULL,
    venue          VARCHAR     NOT NULL,
    symbol         VARCHAR     NOT NULL,
    metric         VARCHAR     NOT NULL,
    best_params    JSON        NOT NULL,
    robust_params  JSON        NOT NULL,
    plateau_score  DOUBLE,
    optimum_drift  DOUBLE,
    in_sample      DOUBLE,
    out_of_sample  DOUBLE,
    overfit        BOOLEAN     NOT NULL,
    detail         JSON        NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, sweep)
);
