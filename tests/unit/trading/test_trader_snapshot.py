"""A Trader's checkpoint: ``snapshot()`` bytes restored in a fresh process continue the run
exactly -- the same events, the same book, the same final state bytes -- as the run that was
never interrupted. That is a paper session resuming after a crash.

The scenario (``trader_helpers.snapshot_scenario``) has risk on with breakers that trip (daily
loss, losing streak, volatility rank; one loss halt flattens an account), a percent trailing
stop, a min-hold filter, shorts and an account trading two symbols.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trader_helpers import SNAP_T, book_json, events_json, snapshot_scenario

from trading_core.trading import ReplaySignals, Trader, bar_slices
from trading_core.trading.state import StateFormatError, decode_state

HERE = Path(__file__).resolve().parent
CUTS = tuple(sorted(int(k) for k in np.random.default_rng(2024).choice(np.arange(20, SNAP_T - 20), 3,
                                                                      replace=False)))

_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from trader_helpers import book_json, events_json, snapshot_scenario
from trading_core.trading import ReplaySignals, Trader, bar_slices

tmp = Path(sys.argv[2])
cuts = [int(k) for k in sys.argv[3].split(",")]
cfg, warm, bars, ent, ex = snapshot_scenario()
slices = bar_slices(bars)
out = {}
for k in cuts:
    data = (tmp / f"snap_{k}.bin").read_bytes()
    tr = Trader.restore(cfg, ReplaySignals(ent, ex), data)
    again = tr.snapshot() == data
    events = [e for b in slices[k:] for e in tr.on_bar(b)]
    out[str(k)] = {"again": again, "events": events_json(events), "book": book_json(tr),
                   "audit": repr(tr.audit), "breakers": repr(tr.breaker_events),
                   "final": tr.snapshot().hex()}
(tmp / "child.json").write_text(json.dumps(out))
"""


def _uninterrupted() -> dict[str, Any]:
    """The run never stopped: a snapshot before every bar, and what came after it."""
    cfg, warm, bars, ent, ex = snapshot_scenario()
    tr = Trader(cfg, ReplaySignals(ent, ex))
    tr.warm_up(bar_slices(warm), strategy=False)
    snaps: dict[int, bytes] = {}
    info: dict[int, dict[str, Any]] = {}
    events: list[Any] = []
    audit_at: dict[int, int] = {}
    breakers_at: dict[int, int] = {}
    for t, b in enumerate(bar_slices(bars)):
        snaps[t] = tr.snapshot()
        audit_at[t], breakers_at[t] = len(tr.audit), len(tr.breaker_events)
        info[t] = {"open": bool(np.any(tr.positions != 0)), "trail": any("trail" in p for p in tr.protective),
                   "state": bool(tr.acct_state.any()), "in_flight": bool(tr.engine._queue)}
        events.extend(tr.on_bar(b))
    final = tr.snapshot()

    def rest(k: int) -> dict[str, Any]:
        return {"events": events_json([e for e in events if e.bar >= k]), "book": book_json(tr),
                "audit": repr(tr.audit[audit_at[k]:]), "breakers": repr(tr.breaker_events[breakers_at[k]:]),
                "final": final.hex()}

    # the seeded cuts moved on to the next bar with no instruction waiting in the engine's queue
    quiet = tuple(next(t for t in range(k, SNAP_T) if not info[t]["in_flight"]) for k in CUTS)
    return {"trader": tr, "events": events, "snaps": snaps, "info": info, "rest": rest, "quiet": quiet}


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    return _uninterrupted()


@pytest.fixture(scope="module")
def child(run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    """One fresh interpreter restores every cut (seeded and quiet) and runs each to the end."""
    tmp = tmp_path_factory.mktemp("snap")
    cuts = sorted(set(CUTS) | set(run["quiet"]))
    for k in cuts:
        (tmp / f"snap_{k}.bin").write_bytes(run["snaps"][k])
    script = tmp / "child.py"
    script.write_text(_CHILD)
    env = {**os.environ, "PYTHONHASHSEED": "4321"}  # another process, another str hash seed
    subprocess.run([sys.executable, str(script), str(HERE), str(tmp), ",".join(map(str, cuts))],
                   check=True, timeout=300, env=env, cwd=str(tmp))
    out = json.loads((tmp / "child.json").read_text())
    return {int(k): v for k, v in out.items()}


def _assert_continues(run: dict[str, Any], child: dict[int, dict[str, Any]], cuts: tuple[int, ...]) -> None:
    for k in cuts:
        got, want = child[k], run["rest"](k)
        assert got["again"], f"cut {k}: snapshot() right after restore differs from the restored bytes"
        assert got["events"] == want["events"], f"cut {k}: events after the restore differ"
        assert got["book"] == want["book"], f"cut {k}: final book differs"
        assert got["audit"] == want["audit"], f"cut {k}: risk audit records differ"
        assert got["breakers"] == want["breakers"], f"cut {k}: breaker transitions differ"
        assert got["final"] == want["final"], f"cut {k}: final snapshot bytes differ"
        assert json.loads(got["events"]), f"cut {k}: nothing happened after it"


def test_the_scenario_checkpoints_mid_position_with_live_stops_and_tripped_breakers(run: dict[str, Any]) -> None:
    kinds = {e.kind for e in run["events"]}
    assert {"BreakerTripped", "BreakerReset", "OrderDenied", "SignalFiltered", "OrderCanceled"} <= kinds
    assert any(e.kind == "BreakerTripped" and e.to_state == "halted" for e in run["events"])
    assert any(getattr(e, "purpose", None) == "kill_switch" for e in run["events"])
    for cuts in (CUTS, run["quiet"]):
        info = [run["info"][k] for k in cuts]
        assert any(s["open"] and s["trail"] for s in info)  # a checkpoint with a position and its trailing stop
        assert any(s["state"] for s in info)  # ... and one taken while a breaker holds an account
    assert any(run["info"][k]["in_flight"] for k in CUTS)


BUG_QUEUE = (
    "trading/trader.py Trader.state() stores self.engine.snapshot(), and engine/api.py Engine.snapshot() "
    "leaves out Engine._queue (Engine.restore() even clears it): what a Trader sends at a bar's close "
    "(entries, exits, protective stops, trailing-stop REPLACEs) waits in that queue until the next step, so "
    "a snapshot taken between bars drops it. {example}")
EX_SCENARIO = ("Here: restored at bar 53 the uninterrupted run's fill of order 8 at bar 53's open never "
               "happens, and every later event differs")
EX_ENTRY = ("Here: an entry sent at bar 5 fills at bar 6's open in the uninterrupted run "
            "(OrderFilled, PositionOpened); restored from the bar-5 snapshot, bar 6 has no event at all")


def test_restore_in_a_fresh_process_continues_byte_identically(run: dict[str, Any],
                                                                child: dict[int, dict[str, Any]]) -> None:
    _assert_continues(run, child, CUTS)


def test_restore_in_a_fresh_process_at_bars_with_nothing_in_flight_continues_byte_identically(
        run: dict[str, Any], child: dict[int, dict[str, Any]]) -> None:
    _assert_continues(run, child, run["quiet"])


def test_orders_sent_at_the_close_before_a_checkpoint_survive_the_restore() -> None:
    from trader_helpers import FREE, config, flags, path_bars

    T = 12
    bars = path_bars(np.linspace(100, 101, T))
    cfg = config(("X",), (0,), model=FREE)
    sig = (flags(T, 1, {5: [0]}), flags(T, 1))
    tr = Trader(cfg, ReplaySignals(*sig))
    slices = bar_slices(bars)
    for b in slices[:6]:
        tr.on_bar(b)  # bar 5 sends the entry; it fills at bar 6's open
    data = tr.snapshot()
    want = [e.kind for b in slices[6:] for e in tr.on_bar(b)]
    back = Trader.restore(cfg, ReplaySignals(*sig), data)
    got = [e.kind for b in slices[6:] for e in back.on_bar(b)]
    assert want[:2] == ["OrderFilled", "PositionOpened"]
    assert got == want


def test_a_restored_trader_snapshots_to_the_bytes_it_was_restored_from(run: dict[str, Any],
                                                                      child: dict[int, dict[str, Any]]) -> None:
    cfg, _, bars, ent, ex = snapshot_scenario()
    for k in range(0, SNAP_T, 37):
        data = run["snaps"][k]
        tr = Trader.restore(cfg, ReplaySignals(ent, ex), data)
        assert tr.snapshot() == data, f"cut {k}"
        assert tr.t == k
    assert all(child[k]["again"] for k in child)  # in the fresh process too


def test_restore_continues_identically_in_process_from_every_cut(run: dict[str, Any]) -> None:
    cfg, _, bars, ent, ex = snapshot_scenario()
    slices = bar_slices(bars)
    for k in range(0, SNAP_T, 20):
        tr = Trader.restore(cfg, ReplaySignals(ent, ex), run["snaps"][k])
        events = [e for b in slices[k:] for e in tr.on_bar(b)]
        assert events_json(events) == run["rest"](k)["events"], f"cut {k}"
        assert tr.snapshot().hex() == run["rest"](k)["final"], f"cut {k}"


def test_restore_continues_identically_in_process_from_every_quiet_cut(run: dict[str, Any]) -> None:
    cfg, _, bars, ent, ex = snapshot_scenario()
    slices = bar_slices(bars)
    quiet = [k for k in range(0, SNAP_T, 23) if not run["info"][k]["in_flight"]]
    assert len(quiet) > 6
    for k in quiet:
        tr = Trader.restore(cfg, ReplaySignals(ent, ex), run["snaps"][k])
        events = [e for b in slices[k:] for e in tr.on_bar(b)]
        assert events_json(events) == run["rest"](k)["events"], f"cut {k}"
        assert tr.snapshot().hex() == run["rest"](k)["final"], f"cut {k}"


def test_the_same_run_writes_the_same_snapshot_bytes(run: dict[str, Any]) -> None:
    again = _uninterrupted()
    assert again["snaps"] == run["snaps"]
    assert again["trader"].snapshot() == run["trader"].snapshot()


def test_a_snapshot_is_plain_data_not_pickle(run: dict[str, Any]) -> None:
    cfg, _, _, ent, ex = snapshot_scenario()
    data = run["snaps"][CUTS[0]]
    assert data.startswith(b"TRST2\n")
    state = decode_state(data)
    assert state["version"] == 1 and state["t"] == CUTS[0] and isinstance(state["engine"], dict)
    with pytest.raises(StateFormatError):
        Trader.restore(cfg, ReplaySignals(ent, ex), data[:-1])


def test_restore_refuses_a_state_written_under_another_market_model(run: dict[str, Any]) -> None:
    cfg, _, _, ent, ex = snapshot_scenario()
    other = cfg.model_copy(update={"model": cfg.model.replace(slippage_bps=9.0)})
    with pytest.raises(ValueError, match="market model"):
        Trader.restore(other, ReplaySignals(ent, ex), run["snaps"][CUTS[0]])
