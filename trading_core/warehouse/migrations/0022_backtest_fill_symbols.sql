-- A portfolio may hold several symbols (trading backtest --symbol A,B): each fill and trade names
-- its symbol. Rows written before this migration are single-symbol runs: their symbol is the run's.
ALTER TABLE backtest.fills ADD COLUMN symbol VARCHAR;
ALTER TABLE backtest.trades ADD COLUMN symbol VARCHAR;
UPDATE backtest.fills f SET symbol = r.symbol FROM backtest.runs r WHERE f.run_id = r.run_id;
UPDATE backtest.trades t SET symbol = r.symbol FROM backtest.runs r WHERE t.run_id = r.run_id;
