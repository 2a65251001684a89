"""Golden parity: a replay session's fills are exactly ``trading backtest --risk``'s on the same bars.

Both build the Trader through ``backtest.stepped.build_trader`` from one ``BacktestRequest``; the
session steps the strategy's *stream* bar by bar and writes a ledger, the backtest replays the
batch signals. Real history: BTC/USD 1h (Coinbase, 2019) and ^GSPC 1d (2005-2012, through 2008),
with the default armed risk configuration (breakers trip on real volatility in both).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from paper_support import PaperEnv, btc_request, gspc_request

from trading_core.backtest import run_backtest


def _session_fills(env: PaperEnv, sid: str) -> list[tuple[int, str, float, float, float]]:
    with env.ledger.connect(read_only=True) as con:
        frame = env.ledger.events(con, sid, ["OrderFilled"])
    out = []
    for p in frame["payload"].to_list():
        d = json.loads(p)
        out.append((d["bar"], d["side"], d["qty"], d["price"], d["fee"]))
    return out


def _backtest_fills(request, env: PaperEnv) -> list[tuple[int, str, float, float, float]]:
    res = run_backtest(request, env.warehouse)
    assert res.driver == "stepped"
    f = res.fills
    return [(int(r["bar"]), "buy" if int(r["side"]) == 0 else "sell", float(r["qty"]), float(r["price"]),
             float(r["fee"])) for r in f]


@pytest.mark.parametrize("which", ["btc_1h", "gspc_1d"])
def test_replay_session_fills_equal_the_risk_backtest(which: str, tmp_path: Path,
                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    env = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())
    request = btc_request(start=datetime(2019, 1, 1, tzinfo=UTC), end=datetime(2019, 5, 1, tzinfo=UTC)) \
        if which == "btc_1h" else gspc_request()
    sid = env.session(request)
    out = env.run(sid)
    assert out.state == "completed"
    paper, backtest = _session_fills(env, sid), _backtest_fills(request, env)
    assert len(backtest) > 20  # a real run with trades, not an empty match
    assert paper == backtest  # same bars, sides, quantities, prices and fees, bit for bit
    # the ledger's equity projection is the engine's book the backtest reports
    res = run_backtest(request, env.warehouse)
    with env.ledger.connect(read_only=True) as con:
        eq = env.ledger.equity(con, sid)["equity"].to_numpy()
    np.testing.assert_array_equal(eq, res.equity[:, 0])


def test_risk_breakers_fire_in_the_golden_runs(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The parity above covers the risk layer acting, not only quiet bars: 2008 trips breakers."""
    env = PaperEnv(tmp_path, tmp_path_factory.getbasetemp())
    sid = env.session(gspc_request())
    env.run(sid)
    with env.ledger.connect(read_only=True) as con:
        kinds = set(env.ledger.events(con, sid)["kind"].to_list())
    assert {"BreakerTripped", "OrderDenied", "RiskDecision", "SignalDecision", "OrderFilled"} <= kinds
