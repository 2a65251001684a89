"""Every decision -- allowed, resized, rejected, halted -- lands in risk.risk_decisions with inputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from risk_helpers import RecordingEngine

from trading_core.engine import ORDER_DTYPE, OrderType, SizeMode
from trading_core.risk import (
    OrderRequest,
    RiskConfig,
    RiskGate,
    RiskReason,
    decision_frame,
    verify_order_records,
)
from trading_core.warehouse import Warehouse
from trading_core.warehouse.risk import read_breaker_events, read_decisions, write_decisions

T0 = datetime(2024, 3, 1, tzinfo=UTC)
PRICES = {"AAPL": 100.0, "MSFT": 50.0}
ADV = {"AAPL": 10_000.0, "MSFT": 20_000.0}


def _gate() -> RiskGate:
    return RiskGate(RiskConfig(), ["AAPL", "MSFT"], run_id="paper-1", context="paper")


def test_gate_allows_resizes_and_rejects_and_only_approved_orders_reach_the_engine(
        engine: RecordingEngine) -> None:
    # Arrange
    gate = _gate()
    orders = [
        OrderRequest("AAPL", 0, 10.0, 100.0, order_ref=1),                      # allowed
        OrderRequest("MSFT", 0, 100.0, 50.0, order_ref=2, correlations=(1.0,), exposures=(1.0,)),  # resized x0.5
        OrderRequest("AAPL", 0, 10.0, 111.0, order_ref=3),                      # price deviation
        OrderRequest("TSLA", 0, 10.0, 100.0, order_ref=4),                      # unknown symbol
    ]
    # Act
    decisions = gate.review(T0, orders, last_price=PRICES, adv=ADV)
    engine.submit([(d.order.order_ref, d.approved_qty) for d in decisions if d.allowed])
    # Assert
    assert [d.decision for d in decisions] == ["allowed", "resized", "rejected", "rejected"]
    assert [d.reason_name for d in decisions] == ["none", "resized", "price_deviation", "unknown_symbol"]
    assert engine.received == [(1, 10.0), (2, 50.0)]


def test_gate_halted_by_a_breaker_denies_with_halted_decision(engine: RecordingEngine) -> None:
    gate = _gate()
    gate.breakers.update_system(T0, requests=0, errors=0, data_age_bars=10.0)
    decisions = gate.review(T0, [OrderRequest("AAPL", 0, 1.0, 100.0)], last_price=PRICES, adv=ADV)
    engine.submit([d for d in decisions if d.allowed])
    assert decisions[0].decision == "halted" and decisions[0].reason == RiskReason.TRADING_HALTED
    assert engine.received == []


def test_gate_decisions_are_written_with_inputs_and_replays_do_not_duplicate(warehouse: Warehouse) -> None:
    # Arrange
    gate = _gate()
    gate.review(T0, [OrderRequest("AAPL", 0, 10.0, 100.0, order_ref=1),
                     OrderRequest("AAPL", 0, 2_000.0, 100.0, order_ref=2)], last_price=PRICES, adv=ADV)
    gate.breakers.update_market(T0, vix=45.0)  # above vix_reduce (40)
    gate.review(T0 + timedelta(days=1), [OrderRequest("MSFT", 0, 1.0, 50.0, order_ref=3)],
                last_price=PRICES, adv=ADV)
    rows = gate.pending_rows()
    # Act
    with warehouse.connect() as con:
        written = gate.flush(con)
        again = write_decisions(con, rows)  # a replayed bar
    with warehouse.connect(read_only=True) as con:
        stored = read_decisions(con, "paper-1")
        events = read_breaker_events(con, level="market")
    # Assert
    assert (written, again) == (3, 0)
    assert stored["decision"].to_list() == ["allowed", "rejected", "rejected"]
    assert stored["reason"].to_list() == ["none", "adv_exceeded", "reduce_only"]
    assert stored["trading_state"].to_list() == ["active", "active", "reduce_only"]
    inputs = json.loads(stored["inputs"][1])
    assert inputs["adv"] == 10_000.0 and inputs["last_price"] == 100.0
    assert inputs["limits"]["max_adv_fraction"] == 0.10 and inputs["order"]["qty"] == 2_000.0
    assert events["to_state"].to_list() == ["reduce_only"]


def test_gate_with_audit_off_queues_nothing() -> None:
    gate = RiskGate(RiskConfig(audit=False), ["AAPL"], run_id="r")
    gate.review(T0, [OrderRequest("AAPL", 0, 1.0, 100.0)], last_price=PRICES, adv=ADV)
    assert gate.pending_rows() == []


def test_backtest_batch_audit_rows_are_written_in_one_call(warehouse: Warehouse) -> None:
    # Arrange: three engine records over two bars, one over the price limit
    o = np.zeros(3, dtype=ORDER_DTYPE)
    o["bar"] = [0, 1, 1]
    o["order_id"] = [11, 12, 13]
    o["type"] = [OrderType.MARKET, OrderType.LIMIT, OrderType.LIMIT]
    o["size_mode"] = SizeMode.QTY
    o["qty"] = [5.0, 5.0, 5.0]
    o["limit_price"] = [0.0, 101.0, 130.0]
    last = np.array([100.0])
    res = verify_order_records(o, last_price=last, adv=np.array([1e6]))
    ts = [T0, T0 + timedelta(days=1), T0 + timedelta(days=1)]
    frame = decision_frame(run_id="bt-1", context="backtest", ts=ts, orders=o, reason=res.reason,
                           symbols=["AAPL"], last_price=np.full(3, 100.0), adv=np.full(3, 1e6),
                           config=RiskConfig())
    # Act
    with warehouse.connect() as con:
        n = write_decisions(con, frame)
    with warehouse.connect(read_only=True) as con:
        stored = read_decisions(con, "bt-1")
    # Assert
    assert n == 3
    assert stored["reason"].to_list() == ["none", "none", "price_deviation"]
    assert stored["approved_qty"].to_list() == [5.0, 5.0, 0.0]
    assert stored["order_ref"].to_list() == [11, 12, 13]
    assert json.loads(stored["inputs"][2])["last_price"] == 100.0


def test_unknown_decision_kind_is_refused_before_anything_is_written(warehouse: Warehouse) -> None:
    row = {"run_id": "r", "context": "paper", "ts": T0, "portfolio": "0", "strategy": "s", "order_ref": 0,
           "symbol": "AAPL", "side": "buy", "requested_qty": 1.0, "approved_qty": 0.0, "price": 1.0,
           "decision": "maybe", "reason": "none", "reason_code": 0, "trading_state": "active", "inputs": {}}
    with warehouse.connect() as con, pytest.raises(ValueError, match="maybe"):
        write_decisions(con, [row])
    with warehouse.connect(read_only=True) as con:
        assert read_decisions(con).height == 0
