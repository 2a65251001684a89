-- Schemas of the warehouse and the market-data tables. Applied once, in one transaction.
CREATE SCHEMA IF NOT EXISTS market;
CREATE SCHEMA IF NOT EXISTS features;
CREATE SCHEMA IF NOT EXISTS ml;
CREATE SCHEMA IF NOT EXISTS paper;
CREATE SCHEMA IF NOT EXISTS backtest;
CREATE SCHEMA IF NOT EXISTS stress;

-- Current value of every bar: one row per (venue, symbol, timeframe, ts). Uniqueness is kept by
-- the only write path (warehouse.bars.write_bars, single writer); no index, so loads stay fast.
-- ts is the bar's OPEN time in UTC.
CREATE TABLE market.bars (
    venue      VARCHAR     NOT NULL,
    symbol     VARCHAR     NOT NULL,
    timeframe  VARCHAR     NOT NULL,
    ts         TIMESTAMPTZ NOT NULL,
    open       DOUBLE      NOT NULL,
    high       DOUBLE      NOT NULL,
    low        DOUBLE      NOT NULL,
    close      DOUBLE      NOT NULL,
    volume     DOUBLE      NOT NULL,
    revision   INTEGER     NOT NULL,
    batch_id   VARCHAR     NOT NULL
);

-- Superseded values: when a provider restates a bar, the old row moves here (never overwritten
-- in place without a trace), so a replay can use the revision it recorded.
CREATE TABLE market.bar_revisions (
    venue         VARCHAR     NOT NULL,
    symbol        VARCHAR     NOT NULL,
    timeframe     VARCHAR     NOT NULL,
    ts            TIMESTAMPTZ NOT NULL,
    open          DOUBLE      NOT NULL,
    high          DOUBLE      NOT NULL,
    low           DOUBLE      NOT NULL,
    close         DOUBLE      NOT NULL,
    volume        DOUBLE      NOT NULL,
    revision      INTEGER     NOT NULL,
    batch_id      VARCHAR     NOT NULL,
    superseded_by VARCHAR     NOT NULL
);

-- One row per batch offered to the warehouse, accepted or rejected.
CREATE TABLE market.ingest_batches (
    batch_id         VARCHAR     PRIMARY KEY,
    venue            VARCHAR     NOT NULL,
    symbol           VARCHAR     NOT NULL,
    timeframe        VARCHAR     NOT NULL,
    source           VARCHAR     NOT NULL,
    status           VARCHAR     NOT NULL,   -- accepted | rejected
    reason           VARCHAR,
    first_ts         TIMESTAMPTZ,
    last_ts          TIMESTAMPTZ,
    rows_in          BIGINT      NOT NULL,
    rows_inserted    BIGINT      NOT NULL,
    rows_revised     BIGINT      NOT NULL,
    rows_unchanged   BIGINT      NOT NULL,
    rows_dropped     BIGINT      NOT NULL,
    rows_quarantined BIGINT      NOT NULL,
    rows_repaired    BIGINT      NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL
);

-- Every finding of the validation contract, with its rule code and the action taken.
CREATE TABLE market.quality_issues (
    batch_id    VARCHAR     NOT NULL,
    venue       VARCHAR     NOT NULL,
    symbol      VARCHAR     NOT NULL,
    timeframe   VARCHAR     NOT NULL,
    rule        VARCHAR     NOT NULL,
    action      VARCHAR     NOT NULL,
    row_count   BIGINT      NOT NULL,
    first_ts    TIMESTAMPTZ,
    last_ts     TIMESTAMPTZ,
    detail      VARCHAR     NOT NULL,
    detected_at TIMESTAMPTZ NOT NULL
);

-- Rows held back for review, as received (raw holds the original values as JSON).
CREATE TABLE market.quarantine (
    batch_id       VARCHAR     NOT NULL,
    venue          VARCHAR     NOT NULL,
    symbol         VARCHAR     NOT NULL,
    timeframe      VARCHAR     NOT NULL,
    row_id         BIGINT      NOT NULL,
    rule           VARCHAR     NOT NULL,
    detail         VARCHAR     NOT NULL,
    ts             TIMESTAMPTZ,
    open           DOUBLE,
    high           DOUBLE,
    low            DOUBLE,
    close          DOUBLE,
    volume         DOUBLE,
    raw            VARCHAR,
    quarantined_at TIMESTAMPTZ NOT NULL
);
