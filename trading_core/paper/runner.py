"""One run of a paper session: take the lease, rebuild, warm up, trade bars, commit, hand over.

Crash-only: starting and recovering are the same code path. A run

1. takes the session's lease (generation + 1; refused while another run's heartbeat is fresh),
2. stages: ``data_sync`` (bars of the range, or the live provider), ``warm_up`` (the Trader built
   exactly as a stepped backtest builds it -- ``backtest.stepped.build_trader`` -- then restored
   from the newest snapshot and the ledger's tail replayed through it, its event ids checked
   against the stored ones; a fresh session feeds its strategy ``request.warmup_bars`` of
   history), ``analysis`` (the book and breaker states it starts from), ``activation``; each
   stage publishes its progress and a stop request cancels it leaving nothing behind,
3. steps ``Trader.on_bar`` on every bar after the checkpoint and commits the bar's events, equity,
   alerts, checkpoint and heartbeat in ONE transaction (``PaperLedger.commit``; at max replay
   speed several bars share one transaction, never splitting a bar from its checkpoint),
4. stops within one bar when a stop/pause request arrives (final checkpoint and snapshot), and
   after ``run_budget_s`` commits and exits so the supervisor chains the next run.

Nothing a later run needs is kept in memory: the ledger and the request log are the state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, TradingError
from ..warehouse.paper import BarCommit, LeaseLost, PaperLedger
from .alerts import AlertSink, deliver_outbox
from .config import STAGES, SessionConfig
from .control import SessionStore
from .feeds import FeedItem, Idle, LiveFeed, ReplayFeed, load_replay_bars

__all__ = ["RunOutcome", "SessionRunner", "LedgerMismatch", "code_version", "crash_from_env"]

log = logging.getLogger(__name__)
_MAX_GROUP = 512  # bars per transaction at max speed, at most
_READER_WINDOW_S = 0.25  # a busy session closes the ledger this often so readers and other sessions get in


class LedgerMismatch(TradingError):
    """Recovery re-derived different events than the ledger holds: the inputs changed (bars
    restated, code changed) or the run is not deterministic. Nothing is written."""


@dataclass
class RunOutcome:
    session_id: str
    run_id: str
    generation: int = 0
    state: str = "failed"  # completed | stopped | paused | chained | cancelled | failed | lease_lost | refused
    bars_processed: int = 0
    new_bars: int = 0
    replayed_bars: int = 0  # the tail re-derived from the last snapshot
    recovery_s: float | None = None  # run start -> first new bar committed
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def code_version() -> str:
    """The git commit of the code (the project's HEAD), or the installed package version."""
    root = Path(__file__).resolve().parents[2] / ".git"
    try:
        ref = (root / "HEAD").read_text().strip()
        if not ref.startswith("ref: "):
            return ref[:12]
        name = ref[5:]
        if (root / name).exists():
            return (root / name).read_text().strip()[:12]
        for line in (root / "packed-refs").read_text().splitlines():
            if line.endswith(" " + name):
                return line.split()[0][:12]
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"v{version('trading-platform')}"
    except PackageNotFoundError:
        return "unknown"


def crash_from_env() -> Callable[[str, int], None] | None:
    """``TRADING_PAPER_CRASH=point:bar`` (crash tests): SIGKILL this process at that commit point
    of the transaction holding that bar. Never set in normal operation."""
    spec = os.environ.get("TRADING_PAPER_CRASH")
    if not spec:
        return None
    point, _, bar = spec.partition(":")
    target = int(bar)

    def crash(name: str, bar_index: int) -> None:
        if name == point and bar_index >= target:
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


def _fill_id(session_id: str, order_id: int, bar_ts: int, seq: int) -> str:
    return hashlib.sha256(f"{session_id}|{order_id}|{bar_ts}|{seq}".encode()).hexdigest()[:20]


def _payload(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"), default=float)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000.0, tz=UTC).isoformat()


class SessionRunner:
    """Runs one session for one Dagster run (or a CLI foreground run); see the module docstring."""

    def __init__(self, session_id: str, *, store: SessionStore, ledger: PaperLedger, warehouse: Any,
                 run_id: str, provider: Any = None, validation: Any = None, alerts: AlertSink | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 crash: Callable[[str, int], None] | None = None, budget_s: float | None = None,
                 data_dir: Path | None = None, stale_bars: int = 24, preflight_checks: bool = True) -> None:
        self.sid = session_id
        self.store, self.ledger, self.warehouse = store, ledger, warehouse
        self.run_id = run_id
        self.provider, self.validation = provider, validation
        self.alerts = alerts or AlertSink(store.root / "alerts.jsonl")
        self.clock, self.sleep = clock, sleep
        self.crash_hook = crash or crash_from_env()
        self.budget_s = budget_s
        self.data_dir = data_dir or store.root.parent
        self.stale_bars = stale_bars
        self.preflight_checks = preflight_checks
        self.config: SessionConfig = store.load(session_id)
        self.status: dict[str, Any] = {}
        self._req_dir = str(store.requests_dir(session_id))
        self._stamp = 0
        self._started = clock()

    # ---- status -------------------------------------------------------------------------------
    def _publish(self, **kw: Any) -> None:
        self.status.update(kw)
        self.status.update(session_id=self.sid, name=self.config.name, run_id=self.run_id, pid=os.getpid(),
                           heartbeat_ts=datetime.fromtimestamp(self.clock(), tz=UTC).isoformat(),
                           feed=self.config.feed, speed=self.config.speed or "max")
        self.store.write_status(self.sid, self.status)

    def _book(self, trader: Any, bar_ts: int | None) -> dict[str, Any]:
        eq, cash, pos = trader.engine.equity, trader.engine.cash, trader.engine.positions
        symbols = trader.config.symbols
        return {"equity": float(eq.sum()), "cash": float(cash.sum()),
                "positions": {s: float(pos[:, k].sum()) for k, s in enumerate(symbols) if pos[:, k].any()},
                "last_bar_ts": _iso(bar_ts)}

    def _stop_requested(self) -> str | None:
        """paused | stopped when such a request arrived since the run started, else None."""
        stamp = os.stat(self._req_dir).st_mtime_ns  # the folder changes when a request lands
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        desired = self.store.desired(self.sid)
        return desired if desired in ("paused", "stopped") else None

    # ---- the run ------------------------------------------------------------------------------
    def run(self) -> RunOutcome:
        out = RunOutcome(self.sid, self.run_id)
        cfg = self.config
        desired = self.store.desired(self.sid)
        if desired in ("paused", "stopped"):
            out.state = desired
            out.reasons.append(f"the session is {desired}; nothing to run")
            return out
        self.ledger.migrate()
        with self.ledger.connect() as con:
            before = self.ledger.lease(con, self.sid)
            gen = self.ledger.take_lease(con, self.sid, self.run_id, stale_after_s=cfg.stale_after_s,
                                         now=datetime.fromtimestamp(self.clock(), tz=UTC))
            ckpt = self.ledger.checkpoint(con, self.sid)
            identity = self.ledger.session_row(con, self.sid)
        out.generation = gen
        self._stamp = os.stat(self._req_dir).st_mtime_ns
        # the previous run never released its lease: it died (SIGKILL, reboot) rather than stopping
        crashed = before is not None and before[2].year > 1970 and ckpt is not None
        try:
            return self._run(out, gen, ckpt, identity, crashed, before)
        except LeaseLost as e:
            out.state = "lease_lost"
            out.reasons.append(str(e))
            log.warning("%s", e)
            return out
        except Exception as e:  # an interrupt (BaseException) is not a failure: the session continues later
            self._publish(state="failed", reasons=[f"{type(e).__name__}: {e}"])
            raise
        finally:
            self._release(gen)

    def _release(self, gen: int) -> None:
        try:
            with self.ledger.connect() as con:
                self.ledger.release_lease(con, self.sid, gen)
        except Exception as e:  # releasing is a courtesy: a stale heartbeat does the same
            log.warning("could not release the lease of %s: %s", self.sid, e)

    def _cancelled(self, out: RunOutcome, fresh: bool) -> bool:
        req = self._stop_requested()
        if req is None:
            return False
        out.state = "cancelled" if fresh else req
        if fresh:
            with self.ledger.connect() as con:  # a cancelled start leaves no trace in the ledger
                self.ledger.drop_lease(con, self.sid)
        self._publish(state=out.state, stage=None, progress=None,
                      reasons=[f"{req} requested during {self.status.get('stage')}"])
        return True

    def _run(self, out: RunOutcome, gen: int, ckpt: Any, identity: dict[str, Any] | None, crashed: bool,
             before: Any) -> RunOutcome:
        from ..backtest.runner import (
            build_market_model,
            check_lot_size,
            position_rules_for,
            protection_for,
            strategy_history,
            trader_layout,
        )
        from ..backtest.stepped import build_trader
        from ..strategies import get_strategy
        from ..strategies.streaming import bar_slices
        from ..trading.state import decode_state
        from .feeds import bars_revision as revision_of
        from .preflight import failing, preflight

        cfg, req = self.config, self.config.request
        fresh = ckpt is None
        # ---- data_sync
        self._publish(state="starting" if fresh else "resuming", stage=STAGES[0], progress=0.0, generation=gen,
                      reasons=[])
        if fresh and self.preflight_checks:
            bad = failing(preflight(cfg, self.warehouse, data_dir=self.data_dir, stale_bars=self.stale_bars,
                                    now=datetime.fromtimestamp(self.clock(), tz=UTC), compile_engine=False))
            if bad:
                out.state, out.reasons = "refused", bad
                with self.ledger.connect() as con:
                    self.ledger.drop_lease(con, self.sid)
                self._publish(state="failed", stage=None, reasons=bad)
                return out
        strategy = get_strategy(req.strategy, req.params)
        if len(strategy.variants()) != 1:
            raise InvalidInput(f"a paper session trades one parameter set; {req.strategy} has "
                               f"{len(strategy.variants())} (drop the grid)")
        if cfg.feed == "replay":
            bars = load_replay_bars(req, self.warehouse)
            first_ms, last_ms, total = int(bars.ts[0]), int(bars.ts[-1]), bars.n_bars
            revision = revision_of(self.warehouse, req)
        else:
            if self.provider is None:
                raise InvalidInput("a live session needs a provider (market_data.mode: live)")
            first_ms = int(req.start.timestamp() * 1000)
            last_ms, total, revision = int(self.clock() * 1000), None, 0
        self._publish(progress=1.0, bars_total=total)
        if self._cancelled(out, fresh):
            return out
        # ---- warm_up
        self._publish(stage=STAGES[1], progress=0.0)
        S = len(req.universe)
        symbol_of, account_of = trader_layout(1, S)
        model = build_market_model(req)
        check_lot_size(req, model)
        from ..strategies.base import signal_stream

        stream = signal_stream(strategy, S)  # one per symbol on its own bars (mixed calendars)
        trader = build_trader(req, self.warehouse, tuple(req.universe), first_ms, last_ms, stream, symbol_of,
                              account_of, model, protection_for(req, strategy), self.sid,
                              position_rules_for(strategy), context="paper", record_events=True)
        seq, start_i = 0, 0
        done = ckpt.bar_index if ckpt is not None else 0
        snap_at = -1  # the bar count of the newest snapshot
        replay_src: list[Any] = []
        if cfg.feed == "replay":
            replay_src = bar_slices(bars)
        if ckpt is not None:
            with self.ledger.connect(read_only=False) as con:
                snap = self.ledger.latest_snapshot(con, self.sid, ckpt.bar_index)
                stored = self.ledger.event_ids_after(con, self.sid, (snap.bar_index if snap else 0) - 1)
            if snap is not None:
                trader.load_state(decode_state(snap.state))
                start_i, seq, snap_at = snap.bar_index, snap.ledger_seq, snap.bar_index
            else:
                self._warm_strategy(stream, strategy_history(req, self.warehouse, tuple(req.universe), first_ms))
            if done > start_i:
                tail = self._tail(replay_src, start_i, done, first_ms)
                derived: list[str] = []
                for k, (i, bar) in enumerate(tail):
                    rows, _, _, seq = self._rows(trader, i, bar, seq, gen, revision, False)
                    derived.extend(r[0] for r in rows)
                    if k % 256 == 0:
                        self._publish(progress=round(k / max(done - start_i, 1), 3))
                if derived != stored:
                    raise LedgerMismatch(
                        f"session {self.sid}: replaying bars {start_i}..{done} gave {len(derived)} events, the "
                        f"ledger holds {len(stored)} (first difference at "
                        f"{next((a for a, b in zip(derived, stored, strict=False) if a != b), 'the end')}); "
                        "the bars or the code changed since they were written")
                out.replayed_bars = done - start_i
        else:
            hist = strategy_history(req, self.warehouse, tuple(req.universe), first_ms)
            self._warm_strategy(stream, hist)
        self._publish(progress=1.0)
        if self._cancelled(out, fresh):
            return out
        # ---- analysis
        self._publish(stage=STAGES[2], progress=0.0)
        analysis = {**self._book(trader, None if ckpt is None else ckpt.last_bar_ts),
                    "breakers": [s.to_row() for s in trader.gate.breakers.states()] if trader.gate else [],
                    "bars_done": done, "risk_armed": req.risk is not None}
        self._publish(progress=1.0, analysis=json.loads(json.dumps(analysis, default=str)))
        if self._cancelled(out, fresh):
            return out
        # ---- activation
        self._publish(stage=STAGES[3], progress=0.0)
        activated_at = float(identity["activated_at"]) if identity else self.clock()
        outbox: list[tuple[Any, ...]] = []
        if crashed:
            owner, old_gen, beat = before
            outbox.append(self._alert("session_died", "error", ckpt.last_bar_ts if ckpt else None,
                                      f"run {owner} (generation {old_gen}) stopped heartbeating at {beat.isoformat()}",
                                      key=f"died:g{old_gen}"))
            outbox.append(self._alert("session_resumed", "info", ckpt.last_bar_ts if ckpt else None,
                                      f"resumed by run {self.run_id} (generation {gen}) from bar {done}",
                                      key=f"resumed:g{gen}"))
        if identity is None:
            with self.ledger.connect() as con:
                self.ledger.record_session(con, {
                    "session_id": self.sid, "name": cfg.name, "config_json": cfg.to_json(),
                    "config_hash": cfg.config_hash(), "code_version": code_version(),
                    "execution_model_hash": model.execution_model_hash(),
                    "bar_source": f"warehouse:{req.venue}" if cfg.feed == "replay" else f"live:{req.venue}",
                    "bars_revision": revision, "seed": req.seed, "model_pin": None, "activated_at": activated_at})
        if cfg.feed == "replay":
            missed = 0
            if crashed and cfg.speed is not None:  # what the dead run's schedule traded while it was dead
                missed = int(max(0.0, self.clock() - before[2].timestamp()) * cfg.speed)
            feed: Any = ReplayFeed(bars, speed=cfg.speed, catch_up=min(done + missed, total or 0), clock=self.clock)
        else:
            feed = LiveFeed(self.provider, req.venue, tuple(req.universe), req.timeframe, req.resolved_calendar(),
                            first_ms, cfg.poll_s, self.validation, stale_bars=max(2, self.stale_bars // 8),
                            clock=self.clock, run_started=self._started, venues=tuple(req.venues),
                            calendars=tuple(req.calendar_of(s) for s in req.universe) if req.venues else ())
        self._publish(state="running", stage=None, progress=None, bars_processed=done,
                      **self._book(trader, ckpt.last_bar_ts if ckpt else None))
        return self._loop(out, trader, feed, gen, done, seq, revision, outbox,
                          ckpt.last_bar_ts if ckpt is not None else None, snap_at)

    @staticmethod
    def _warm_strategy(stream: Any, hist: Any) -> None:
        if hist is None:
            return
        from ..strategies.streaming import bar_slices

        for b in bar_slices(hist):
            stream.update(b)

    def _tail(self, replay_src: list[Any], start: int, stop: int, first_ms: int) -> Iterator[tuple[int, Any]]:
        """Bars [start, stop) again: from the replay, or for a live session from the warehouse."""
        if replay_src:
            for i in range(start, stop):
                yield i, replay_src[i]
            return
        raise LedgerMismatch(f"session {self.sid}: a live session has no snapshot at its checkpoint (bar {stop}); its bars since the last snapshot are not stored to replay")

    # ---- per bar ------------------------------------------------------------------------------
    def _rows(self, trader: Any, i: int, bar: Any, seq: int, gen: int, revision: int,
              reconstructed: bool) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
        """Step the Trader on bar ``i``: its ledger rows, equity rows and alerts, and the next seq."""
        from ..risk.codes import STATE_NAMES, reason_name
        from ..strategies.filters import FILTER_REASON_NAMES
        from ..trading.trader import AUDIT_FIELDS

        events = trader.on_bar(bar)
        decisions, audit, _ = trader.drain_records()
        sid, ts = self.sid, int(bar.ts)
        symbols = trader.config.symbols
        rows: list[tuple[Any, ...]] = []
        alerts: list[tuple[Any, ...]] = []
        for e in events:
            seq += 1
            d = e.to_dict()
            if e.kind == "OrderFilled":
                d["fill_id"] = _fill_id(sid, d["order_id"], ts, seq)
            rows.append((e.id, sid, seq, i, ts, e.kind, e.account, e.symbol, e.reason, _payload(d), revision, gen,
                         reconstructed))
            if e.kind in ("BreakerTripped", "BreakerReset"):
                sev = "warning" if e.kind == "BreakerTripped" else "info"
                alerts.append(self._alert(e.kind, sev, ts, f"{d['level']} breaker {d['scope']}: {d['from_state']} -> "
                                                           f"{d['to_state']} ({e.reason})", key=e.id))
        for k, dec in enumerate(decisions):
            seq += 1
            col = int(dec["portfolio"])
            verdict = FILTER_REASON_NAMES.get(int(dec["reason"]), str(int(dec["reason"])))
            d = {"kind": "SignalDecision", "signal": "entry" if int(dec["kind"]) == 0 else "exit", "column": col,
                 "verdict": verdict, "bar": i, "ts_event": ts + trader.bar_ms}
            sym = symbols[int(trader.symbol_of[col])] if col < trader.C else None
            rows.append((f"{sid}:{i}:d{k}", sid, seq, i, ts, "SignalDecision", int(trader.account_of[col])
                         if col < trader.C else 0, sym, verdict, _payload(d), revision, gen, reconstructed))
        for k, rec in enumerate(audit):
            seq += 1
            a = dict(zip(AUDIT_FIELDS, rec, strict=True))
            col = int(a["column"])
            reason = reason_name(int(a["reason"]))
            d = {"kind": "RiskDecision", **{key: (float(v) if isinstance(v, float | np.floating) else
                                                  (int(v) if isinstance(v, int | np.integer | bool) else v))
                                            for key, v in a.items()},
                 "verdict": "approved" if int(a["reason"]) == 0 else reason,
                 "trading_state": STATE_NAMES.get(int(a["state"]), str(int(a["state"])))}
            d = {key: (None if isinstance(v, float) and not math.isfinite(v) else v) for key, v in d.items()}
            rows.append((f"{sid}:{i}:r{k}", sid, seq, i, ts, "RiskDecision", int(trader.account_of[col]),
                         symbols[int(trader.symbol_of[col])], reason, _payload(d), revision, gen, reconstructed))
        eng = trader.engine
        eq, cash = eng.equity, eng.cash
        # each symbol at its last traded close (a closed market's bar is NaN on a union calendar)
        mark = np.asarray(trader.prev_close if trader.prev_close is not None else bar.close, dtype=np.float64)
        gross = np.abs(eng.positions * np.nan_to_num(mark)[None, :]).sum(axis=1)
        equity = [(sid, i, ts, a, float(eq[a]), float(cash[a]), float(gross[a])) for a in range(trader.A)]
        return rows, equity, alerts, seq

    def _alert(self, kind: str, severity: str, bar_ts: int | None, text: str, *, key: str) -> tuple[Any, ...]:
        return (f"{self.sid}:{key}", self.sid, bar_ts, kind, severity,
                _payload({"session_id": self.sid, "name": self.config.name, "text": text}))

    def _loop(self, out: RunOutcome, trader: Any, feed: Any, gen: int, done: int, seq: int, revision: int,
              outbox: list[tuple[Any, ...]], last_ts: int | None, snap_at: int) -> RunOutcome:
        cfg = self.config
        paced = cfg.feed == "live" or cfg.speed is not None
        group_s = 0.0 if paced else cfg.group_commit_ms / 1000.0
        budget = self.budget_s if self.budget_s is not None else cfg.run_budget_s
        pending: list[BarCommit] = []
        # a live session has no replay source for a ledger tail: it snapshots every bar (keeping a few)
        every = 1 if cfg.feed == "live" else cfg.snapshot_every
        keep = 8 if cfg.feed == "live" else None
        crash = self.crash_hook
        stack = ExitStack()
        con: Any = None
        opened = 0.0
        last_commit = last_publish = last_beat = self.clock()
        first_new = True
        swept = False  # undelivered alerts of earlier runs sent yet

        def open_con() -> Any:
            nonlocal con, opened
            if con is None:
                con = stack.enter_context(self.ledger.connect())
                opened = self.clock()
            return con

        def close_con() -> None:
            nonlocal con
            if con is not None:
                stack.close()
                con = None

        def commit(state: str = "running", snapshot: bool = False) -> None:
            nonlocal pending, last_commit, last_publish, last_beat, first_new, outbox, snap_at, swept
            if snapshot and pending and pending[-1].snapshot is None:
                pending[-1].snapshot = trader.snapshot()
            if outbox and not pending and done:  # alerts with no new bar to ride on: the checkpoint's own
                pending.append(BarCommit(done, last_ts if last_ts is not None else 0, seq))
            if outbox:
                pending[0].outbox.extend(outbox)
                outbox = []
            if not pending:
                return
            c = open_con()
            last_bar = pending[-1].bar_index - 1
            hook = (lambda name: crash(name, last_bar)) if crash is not None else (lambda name: None)
            alerts_in = any(b.outbox for b in pending)
            self.ledger.commit(c, self.sid, gen, pending, bars_revision=revision, state=state,
                               now=datetime.fromtimestamp(self.clock(), tz=UTC), crash=hook, keep_snapshots=keep)
            snap_at = max([snap_at, *(b.bar_index for b in pending if b.snapshot is not None)])
            pending = []
            now = self.clock()
            last_commit = last_beat = now
            if first_new and out.new_bars:
                out.recovery_s = now - self._started
                first_new = False
            if alerts_in or not swept:  # the first commit also sends what a crashed run left undelivered
                deliver_outbox(c, self.ledger, self.alerts)
                swept = True
            if paced or now - last_publish >= 0.1 or state != "running":
                self._publish(state=state, bars_processed=done, **self._book(trader, last_ts))
                last_publish = now

        def finish(state: str) -> RunOutcome:
            nonlocal pending
            if not pending and done and (outbox or snap_at != done or state != "running"):
                # nothing traded since the last commit: re-commit the checkpoint (its state, the
                # takeover's alerts) with a snapshot at it, so the next run replays no tail
                pending.append(BarCommit(done, last_ts if last_ts is not None else 0, seq))
            if pending:
                commit(state, snapshot=True)
            else:
                deliver_outbox(open_con(), self.ledger, self.alerts)
            close_con()
            out.state = "chained" if state == "running" else state
            out.bars_processed = done
            self._publish(state=state if state != "running" else "running", bars_processed=done,
                          **self._book(trader, last_ts))
            return out

        try:
            for item in feed.items(done):
                if isinstance(item, Idle):
                    commit()
                    long_wait = item.wait_s > 0.02  # never hold the ledger across a sleep others could use
                    if long_wait:
                        close_con()
                        self._publish(stale=item.stale, note=item.note)
                    end = self.clock() + item.wait_s
                    while (left := end - self.clock()) > 0:
                        req = self._stop_requested()
                        if req:
                            return finish(req)
                        self.sleep(min(left, cfg.heartbeat_s))
                        if self.clock() - last_beat >= cfg.heartbeat_s:
                            self.ledger.heartbeat(open_con(), self.sid, gen,
                                                  datetime.fromtimestamp(self.clock(), tz=UTC))
                            last_beat = self.clock()
                            if long_wait:
                                close_con()
                            self._publish()
                    continue
                assert isinstance(item, FeedItem)
                i, bar = item.index, item.bar
                if i < done:
                    continue  # already in the ledger (the checkpoint guard; the primary key is the second)
                rows, equity, alerts, seq = self._rows(trader, i, bar, seq, gen, revision, item.reconstructed)
                done, last_ts = i + 1, int(bar.ts)
                out.new_bars += 1
                pending.append(BarCommit(done, last_ts, seq, rows, equity, alerts,
                                         trader.snapshot() if done % every == 0 else None))
                req = self._stop_requested()
                if req:
                    return finish(req)
                now = self.clock()
                if paced or now - last_commit >= group_s or len(pending) >= _MAX_GROUP:
                    commit()
                    if con is not None and now - opened >= _READER_WINDOW_S:
                        close_con()  # let readers and other sessions in; reopening costs ~15 ms a second
                if now - self._started >= budget:
                    return finish("running")
            return finish("completed")
        finally:
            stack.close()


def build_runner(session_id: str, *, store: SessionStore, ledger: PaperLedger, warehouse: Any, run_id: str,
                 market_data: Any, data_dir: Path, budget_s: float | None = None, now: datetime | None = None,
                 build_provider: Callable[..., Any] | None = None) -> SessionRunner:
    """A ``SessionRunner`` wired the same way whoever runs it (the Dagster job, ``trading paper
    run``): a live session polls the live providers (``mode: live`` whatever the default run's
    mode is) through the configured validation and stale-data guard. ``build_provider`` lets a
    shell supply its own provider factory (same signature as ``market_data.build_provider``)."""
    config = store.load(session_id)
    provider = validation = None
    if config.feed == "live":
        from ..market_data.providers import build_provider as default_build
        from .supervision import VenueRouter, session_universe

        md = market_data.model_copy(update={"mode": "live"})
        build = build_provider or default_build
        venues = list(dict.fromkeys(config.request.venues)) or [config.request.venue]
        built = {v: build(session_universe(config, md, v), md, now=now or datetime.now(UTC)) for v in venues}
        provider = built[venues[0]] if len(built) == 1 else VenueRouter(built)
        validation = md.validation
    return SessionRunner(session_id, store=store, ledger=ledger, warehouse=warehouse, run_id=run_id,
                         provider=provider, validation=validation, budget_s=budget_s, data_dir=data_dir,
                         stale_bars=market_data.validation.stale_bars)
