-- The paper-trading ledger: its own file (data/paper.duckdb), written only by the paper job.
-- paper.events is append-only and the only truth; the other tables are its checkpoint, the run
-- lease that fences an old run off, Trader snapshots (so recovery replays a short tail), the
-- equity projection written in the same transaction as the events, and the alerts outbox.
-- No wall-clock column in paper.events: a resumed session writes byte-identical rows.
CREATE SCHEMA IF NOT EXISTS paper;

CREATE TABLE paper.sessions (
    session_id           VARCHAR PRIMARY KEY,
    name                 VARCHAR NOT NULL,
    config_json          VARCHAR NOT NULL,
    config_hash          VARCHAR NOT NULL,
    code_version         VARCHAR NOT NULL,
    execution_model_hash VARCHAR NOT NULL,
    bar_source           VARCHAR NOT NULL,
    bars_revision        INTEGER NOT NULL,
    seed                 BIGINT  NOT NULL,
    model_pin            VARCHAR,
    activated_at         DOUBLE  NOT NULL,  -- epoch s: a paced replay's schedule starts here
    created_at           TIMESTAMPTZ NOT NULL
);

CREATE TABLE paper.events (
    event_id      VARCHAR PRIMARY KEY,
    session_id    VARCHAR NOT NULL,
    seq           BIGINT  NOT NULL,
    bar_index     BIGINT  NOT NULL,
    bar_ts        BIGINT  NOT NULL,   -- epoch ms of the bar's open (UTC)
    kind          VARCHAR NOT NULL,
    account       INTEGER NOT NULL,
    symbol        VARCHAR,
    reason        VARCHAR,
    payload       VARCHAR NOT NULL,   -- the event as JSON (sorted keys)
    bars_revision INTEGER NOT NULL,
    generation    BIGINT  NOT NULL,   -- provenance: which run generation wrote it
    reconstructed BOOLEAN NOT NULL    -- provenance: caught up after downtime
);

CREATE TABLE paper.checkpoint (
    session_id    VARCHAR PRIMARY KEY,
    bar_index     BIGINT  NOT NULL,   -- bars processed
    last_bar_ts   BIGINT  NOT NULL,
    ledger_seq    BIGINT  NOT NULL,
    bars_revision INTEGER NOT NULL,
    generation    BIGINT  NOT NULL,
    state         VARCHAR NOT NULL    -- running | paused | completed | stopped
);

CREATE TABLE paper.session_lease (
    session_id   VARCHAR PRIMARY KEY,
    owner_run_id VARCHAR NOT NULL,
    generation   BIGINT  NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    acquired_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE paper.snapshots (
    session_id  VARCHAR NOT NULL,
    bar_index   BIGINT  NOT NULL,
    last_bar_ts BIGINT  NOT NULL,
    ledger_seq  BIGINT  NOT NULL,
    state       BLOB    NOT NULL,     -- Trader.snapshot() bytes
    sha256      VARCHAR NOT NULL,
    PRIMARY KEY (session_id, bar_index)
);

CREATE TABLE paper.equity (
    session_id VARCHAR NOT NULL,
    bar_index  BIGINT  NOT NULL,
    bar_ts     BIGINT  NOT NULL,
    account    INTEGER NOT NULL,
    equity     DOUBLE  NOT NULL,
    cash       DOUBLE  NOT NULL,
    gross      DOUBLE  NOT NULL,      -- sum |position x close|
    PRIMARY KEY (session_id, bar_index, account)
);

CREATE TABLE paper.outbox (
    message_id VARCHAR PRIMARY KEY,
    session_id VARCHAR NOT NULL,
    bar_ts     BIGINT,
    kind       VARCHAR NOT NULL,
    severity   VARCHAR NOT NULL,
    payload    VARCHAR NOT NULL
);

CREATE TABLE paper.outbox_delivered (
    message_id VARCHAR PRIMARY KEY,
    channel    VARCHAR NOT NULL,
    delivered_at TIMESTAMPTZ NOT NULL
);
