"""Circuit breakers at four levels -- strategy, portfolio, system, market -- with three states.

States (NautilusTrader's trading states): ``active`` (all orders checked normally),
``reduce_only`` (only orders that shrink a position pass) and ``halted`` (no new orders).
Every (level, scope) pair has its own breaker; the state an order sees is the most severe of the
breakers that apply to it (its strategy, its portfolio, the system, the market).

Transitions follow ``STATE_TABLE`` and nothing else; any other (state, event) pair raises:

=============  ===========  ===========  ======================================================
from           event        to           when
=============  ===========  ===========  ======================================================
active         trip_reduce  reduce_only  a reduce rule fires
active         trip_halt    halted       a halt rule fires
reduce_only    trip_halt    halted       a halt rule fires
reduce_only    recover      active       cooldown over, no rule firing, not latched
halted         recover      reduce_only  cooldown over, no halt rule firing, not latched
reduce_only    reset        active       manual reset (operator), always audited
halted         reset        active       manual reset (operator), always audited
=============  ===========  ===========  ======================================================

Escalation is immediate; recovery is one step at a time, each after the level's ``cooldown_s``
(a halted book spends a further cooldown in reduce-only before it trades freely). At the
portfolio, system and market levels a rule that keeps firing restarts the cooldown. ``portfolio.max_drawdown`` latches: only ``reset`` clears it.
Strategy drawdown and losing streak are measured from a base the breaker keeps; when a
strategy's cooldown ends the base moves to the current equity and streak (freqtrade's
"protection lock" idea: a strategy lock is timed), otherwise a strategy in reduce-only could
never earn its way out; a further loss from the new base trips it again.

Time is always the caller's decision timestamp (bar time in a backtest), never the wall clock,
so a replay gives the same states. ``CircuitBreakers`` collects every transition as a
``BreakerTransition``; ``trading_core.warehouse.risk.save_breakers`` persists states and events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numba
import numpy as np

from ..errors import InvalidInput
from .codes import STATE_CODES, STATE_NAMES, TradingState
from .config import BreakerConfig

__all__ = [
    "Level", "BreakerEvent", "STATE_TABLE", "transition", "InvalidStateTransition", "BreakerState",
    "BreakerTransition", "CircuitBreakers", "LEVELS",
]

Level = Literal["strategy", "portfolio", "system", "market"]
LEVELS: tuple[str, ...] = ("strategy", "portfolio", "system", "market")
BreakerEvent = Literal["trip_reduce", "trip_halt", "recover", "reset"]

A, R, H = TradingState.ACTIVE, TradingState.REDUCE_ONLY, TradingState.HALTED

STATE_TABLE: dict[tuple[int, str], int] = {
    (A, "trip_reduce"): R,
    (A, "trip_halt"): H,
    (R, "trip_halt"): H,
    (R, "recover"): A,
    (H, "recover"): R,
    (R, "reset"): A,
    (H, "reset"): A,
}

_LATCHING_RULES = frozenset({"portfolio_max_drawdown"})


class InvalidStateTransition(InvalidInput):
    """An event that the state table does not allow from the current state."""


def transition(current: int, event: str) -> int:
    """Next state for ``(current, event)`` from ``STATE_TABLE``; any other pair raises."""
    try:
        return STATE_TABLE[(int(current), event)]
    except KeyError:
        raise InvalidStateTransition(
            f"no transition from {STATE_NAMES.get(int(current), current)!r} on {event!r}") from None


def _utc(ts: datetime) -> datetime:
    if not isinstance(ts, datetime):
        raise InvalidInput(f"ts must be a datetime, got {type(ts).__name__}")
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _as_dt(ts: datetime | int) -> datetime:
    return datetime.fromtimestamp(ts / 1000.0, tz=UTC) if isinstance(ts, int) else ts


@dataclass(frozen=True)
class BreakerState:
    """The persisted state of one breaker (one row of ``risk.circuit_breaker_states``)."""

    level: str
    scope: str
    state: int = A
    reason: str | None = None
    since: datetime | None = None
    cooldown_until: datetime | None = None
    latched: bool = False
    memo: dict[str, float] = field(default_factory=dict)  # peaks, day-start equity, streak base
    updated_at: datetime | None = None

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    def to_row(self) -> dict[str, Any]:
        return {"level": self.level, "scope": self.scope, "state": self.state_name,
                "reason": self.reason, "since": self.since, "cooldown_until": self.cooldown_until,
                "latched": self.latched, "memo": dict(self.memo), "updated_at": self.updated_at}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> BreakerState:
        return cls(level=row["level"], scope=row["scope"], state=STATE_CODES[row["state"]],
                   reason=row.get("reason"), since=row.get("since"),
                   cooldown_until=row.get("cooldown_until"), latched=bool(row.get("latched")),
                   memo={k: float(v) for k, v in (row.get("memo") or {}).items()},
                   updated_at=row.get("updated_at"))


@dataclass(frozen=True)
class BreakerTransition:
    """One state change, with the rule and the metrics that caused it (the audit event)."""

    ts: datetime
    level: str
    scope: str
    from_state: str
    to_state: str
    event: str
    rule: str | None
    metrics: dict[str, Any]
    actor: str = "system"


class CircuitBreakers:
    """All breakers of one trading context (a paper session, a backtest run).

    Feed metrics with the ``update_*`` methods at each decision point; ask ``state_for`` before
    sending orders (pass the result to ``verify_orders(state=...)``); persist with
    ``states()`` and ``drain_events()``.
    """

    def __init__(self, config: BreakerConfig | None = None, states: list[BreakerState] | None = None) -> None:
        self.config = config or BreakerConfig()
        self._states: dict[tuple[str, str], BreakerState] = {}
        for s in states or []:
            if s.level not in LEVELS:
                raise InvalidInput(f"unknown breaker level {s.level!r}")
            self._states[(s.level, s.scope)] = s
        self._events: list[BreakerTransition] = []
        self._bank: _AccountBank | None = None
        self._touched: dict[tuple[str, str], datetime | int] = {}  # updated_at not yet written into a state

    # ---- queries ---------------------------------------------------------------------------
    def get(self, level: str, scope: str) -> BreakerState:
        if self._bank is not None:
            self._bank.materialize_one(level, scope)
        if (level, scope) in self._touched:
            self._states[(level, scope)] = replace(self._states[(level, scope)],
                                                   updated_at=_as_dt(self._touched.pop((level, scope))))
        return self._states.get((level, scope)) or BreakerState(level, scope)

    def states(self) -> list[BreakerState]:
        if self._bank is not None:
            self._bank.materialize()
        for key in list(self._touched):
            self.get(*key)
        return [self._states[k] for k in sorted(self._states)]

    def drain_events(self) -> list[BreakerTransition]:
        """Transitions since the last drain (hand them to the warehouse writer)."""
        out, self._events = self._events, []
        return out

    def state_for(self, *, strategy: str | None = None, portfolio: str | None = None) -> int:
        """Most severe state of the breakers that govern an order of ``strategy``/``portfolio``."""
        if not self.config.enabled:
            return A
        worst = A
        for (level, scope), st in self._states.items():
            applies = (level in ("system", "market")
                       or (level == "strategy" and scope == strategy)
                       or (level == "portfolio" and scope == portfolio))
            if applies:
                worst = max(worst, st.state)
        return worst

    def state_dict(self) -> dict[str, Any]:
        """Every breaker's state as plain values (a checkpoint); ``load_state_dict`` restores it."""
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {"states": [[s.level, s.scope, s.state, s.reason, iso(s.since), iso(s.cooldown_until), s.latched,
                            dict(s.memo), iso(s.updated_at)] for s in self.states()]}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        def dt(v: str | None) -> datetime | None:
            return None if v is None else datetime.fromisoformat(v)

        self._states = {}
        for lv, scope, state, reason, since, until, latched, memo, upd in d["states"]:
            self._states[(lv, scope)] = BreakerState(lv, scope, int(state), reason, dt(since), dt(until),
                                                     bool(latched), {k: float(v) for k, v in memo.items()}, dt(upd))
        self._events = []
        self._bank = None
        self._touched = {}

    # ---- metric updates, one per level -----------------------------------------------------
    def update_strategy(self, scope: str, ts: datetime, *, equity: float, losing_streak: int) -> int:
        """Strategy breaker: drawdown of its equity from its peak, and consecutive losing trades."""
        c = self.config.strategy
        st = self.get("strategy", scope)
        memo = dict(st.memo)
        peak = max(memo.get("peak_equity", equity), equity)
        base = memo.get("streak_base", 0.0)
        if losing_streak < base:  # a win reset the streak since the base was taken
            base = 0.0
        memo.update(peak_equity=peak, streak_base=base)
        dd = 0.0 if peak <= 0 else 1.0 - equity / peak
        streak = losing_streak - base
        metrics = {"equity": equity, "peak_equity": peak, "drawdown": dd, "losing_streak": losing_streak,
                   "streak_counted": streak}
        trips = [(H, "strategy_drawdown", dd >= c.drawdown_halt),
                 (H, "strategy_losing_streak", streak >= c.losing_streak_halt),
                 (R, "strategy_drawdown", dd >= c.drawdown_reduce),
                 (R, "strategy_losing_streak", streak >= c.losing_streak_reduce)]
        rebase = {"peak_equity": equity, "streak_base": float(losing_streak)}
        return self._apply("strategy", scope, _utc(ts), trips, metrics, memo, c.cooldown_s, rebase)

    def update_portfolio(self, scope: str, ts: datetime, *, equity: float, gross_exposure: float,
                         largest_position: float) -> int:
        """Portfolio breaker. ``gross_exposure``: sum of |position value|; ``largest_position``:
        the biggest |position value| (both in account currency)."""
        c = self.config.portfolio
        t = _utc(ts)
        st = self.get("portfolio", scope)
        memo = dict(st.memo)
        day = float(t.date().toordinal())
        if memo.get("day") != day:
            # the day opens with the last equity seen before it: with one update per day (daily
            # bars) the loss is then close-to-close, not always zero
            memo.update(day=day, day_start_equity=memo.get("last_equity", equity))
        peak = max(memo.get("peak_equity", equity), equity)
        memo["peak_equity"] = peak
        sod = memo["day_start_equity"]
        daily_loss = 0.0 if sod <= 0 else max(0.0, 1.0 - equity / sod)
        dd = 0.0 if peak <= 0 else 1.0 - equity / peak
        gross = math.inf if equity <= 0 else abs(gross_exposure) / equity
        conc = math.inf if equity <= 0 else abs(largest_position) / equity
        metrics = {"equity": equity, "day_start_equity": sod, "daily_loss": daily_loss,
                   "peak_equity": peak, "drawdown": dd, "gross_exposure": gross, "concentration": conc}
        eps = 1e-9
        trips = [(H, "portfolio_max_drawdown", dd >= c.max_drawdown_halt),
                 (H, "portfolio_daily_loss", daily_loss >= c.daily_loss_halt),
                 (R, "portfolio_daily_loss", daily_loss >= c.daily_loss_reduce),
                 (R, "portfolio_gross_exposure", gross > c.max_gross_exposure + eps),
                 (R, "portfolio_concentration", conc > c.max_concentration + eps)]
        return self._apply("portfolio", scope, t, trips, metrics, memo, c.cooldown_s, None)

    def update_system(self, ts: datetime | int, *, requests: int, errors: int, data_age_bars: float,
                      scope: str = "system") -> int:
        """System breaker: error rate of recent venue/data calls and the age of the newest bar."""
        c = self.config.system
        rate = errors / requests if requests > 0 else 0.0
        metrics = {"requests": requests, "errors": errors, "error_rate": rate, "data_age_bars": data_age_bars}
        trips = [(H, "system_error_rate", requests >= c.min_requests and rate > c.max_error_rate),
                 (H, "system_data_stale", not (data_age_bars <= c.max_data_age_bars))]
        return self._apply_or_touch("system", scope, ts, trips, metrics, c.cooldown_s)

    def update_market(self, ts: datetime | int, *, vix: float | None = None, vol_percentile: float | None = None,
                      scope: str = "market") -> int:
        """Market breaker: VIX (as of ``ts``, see market_filter.vix_asof) and the realised
        volatility percentile of the traded market (0..1). ``None`` = not available, not judged."""
        c = self.config.market
        metrics = {"vix": vix, "vol_percentile": vol_percentile}
        v = vix if vix is not None and math.isfinite(vix) else None
        p = vol_percentile if vol_percentile is not None and math.isfinite(vol_percentile) else None
        # hysteresis: while a rule holds the breaker tripped, it keeps firing down to its recover level
        st = self._states.get(("market", scope))
        held = st.reason if st is not None and st.state != A else None
        vix_level = c.vix_recover if held == "market_vix" and c.vix_recover is not None else c.vix_reduce
        vol_level = (c.vol_percentile_recover if held == "market_vol_percentile"
                     and c.vol_percentile_recover is not None else c.vol_percentile_reduce)
        trips = [(H, "market_vix", v is not None and c.vix_halt is not None and v > c.vix_halt),
                 (R, "market_vix", v is not None and v > vix_level),
                 (R, "market_vol_percentile", p is not None and p > vol_level)]
        return self._apply_or_touch("market", scope, ts, trips, metrics, c.cooldown_s)

    def reset(self, level: str, scope: str, ts: datetime, *, actor: str, note: str = "") -> int:
        """Manual reset to active (clears a latch). Re-bases peaks so the old drawdown is not
        counted again. Raises if the breaker is already active (nothing to reset)."""
        if not actor:
            raise InvalidInput("a manual reset must name its actor")
        t = _utc(ts)
        st = self.get(level, scope)
        new = transition(st.state, "reset")
        memo = dict(st.memo)
        if "last_equity" in memo:
            memo["peak_equity"] = memo["last_equity"]
        self._set(replace(st, state=new, reason=None, since=t, cooldown_until=None, latched=False,
                          memo=memo, updated_at=t),
                  BreakerTransition(t, level, scope, st.state_name, STATE_NAMES[new], "reset", "manual_reset",
                                    {"note": note}, actor))
        return new

    def _apply_or_touch(self, level: str, scope: str, ts: datetime | int, trips: list[tuple[int, str, bool]],
                        metrics: dict[str, Any], cooldown_s: float) -> int:
        """``_apply`` for a level without memo: an active breaker that trips nothing only moves its
        ``updated_at``, which is recorded without rebuilding the state (applied when read).
        ``ts``: a datetime, or epoch milliseconds (the Trader's bar clock)."""
        if isinstance(ts, datetime):
            ts = _utc(ts)
        elif not isinstance(ts, int) or isinstance(ts, bool):
            raise InvalidInput(f"ts must be a datetime or epoch milliseconds, got {type(ts).__name__}")
        st = self._states.get((level, scope))
        if st is not None and st.state == A and not any(fired for _, _, fired in trips):
            self._touched[(level, scope)] = ts
            return A
        return self._apply(level, scope, _as_dt(ts), trips, metrics, dict(self.get(level, scope).memo),
                           cooldown_s, None)

    def state_of(self, level: str, scope: str) -> int:
        """The state of one breaker (active if it never ran), without materialising it."""
        st = self._states.get((level, scope))
        return A if st is None else st.state

    # ---- the one place states change ---------------------------------------------------------
    def _apply(self, level: str, scope: str, t: datetime, trips: list[tuple[int, str, bool]],
               metrics: dict[str, Any], memo: dict[str, float], cooldown_s: float,
               rebase: dict[str, float] | None) -> int:
        if "equity" in metrics:
            memo["last_equity"] = float(metrics["equity"])
        st = replace(self.get(level, scope), memo=memo, updated_at=t)
        cool = timedelta(seconds=cooldown_s)
        expired = st.cooldown_until is None or t >= st.cooldown_until
        if rebase is not None and st.state != A and expired:
            # strategy lock over: measure drawdown/streak afresh from here (see module doc)
            memo = {**memo, **rebase}
            st = replace(st, memo=memo)
            metrics = {**metrics, "rebased": True}
            trips = [(sev, rule, fired and not rule.startswith("strategy_")) for sev, rule, fired in trips]
        worst, rule = A, None
        for sev, name, fired in trips:
            if fired and sev > worst:
                worst, rule = sev, name
        if worst > st.state:
            event = "trip_halt" if worst == H else "trip_reduce"
            new = transition(st.state, event)
            self._set(replace(st, state=new, reason=rule, since=t, cooldown_until=t + cool,
                              latched=st.latched or rule in _LATCHING_RULES),
                      BreakerTransition(t, level, scope, st.state_name, STATE_NAMES[new], event, rule, metrics))
        elif worst == st.state and worst != A:
            latched = st.latched or rule in _LATCHING_RULES
            # strategy locks are timed (the base moves when they end); others restart the wait
            until = st.cooldown_until if rebase is not None else t + cool
            self._set(replace(st, reason=rule, cooldown_until=until, latched=latched), None)
        elif st.state != A and expired and not st.latched:
            new = transition(st.state, "recover")
            self._set(replace(st, state=new, reason=None if new == A else st.reason, since=t,
                              cooldown_until=None if new == A else t + cool),
                      BreakerTransition(t, level, scope, st.state_name, STATE_NAMES[new], "recover", rule,
                                        metrics))
        else:
            self._set(st, None)
        return self._states[(level, scope)].state

    def _set(self, st: BreakerState, event: BreakerTransition | None) -> None:
        self._states[(st.level, st.scope)] = st
        if self._bank is not None:
            self._bank.absorb(st)
        if event is not None:
            self._events.append(event)

    # ---- many accounts at once ------------------------------------------------------------------
    def update_accounts(self, strategy_scopes: list[str], portfolio_scopes: list[str], ts_ms: int, *,
                        equity: np.ndarray, losing_streak: np.ndarray, gross_exposure: np.ndarray,
                        largest_position: np.ndarray) -> np.ndarray:
        """``update_strategy`` + ``update_portfolio`` for every account ``a`` (scopes
        ``strategy_scopes[a]``/``portfolio_scopes[a]``) at one instant, with the same rules and
        arithmetic, vectorised: an account whose breakers are active and whose metrics trip
        nothing only moves its peaks and day-start equity (kept in arrays, written back to its
        ``BreakerState`` when someone reads it); the others take the scalar path. Returns each
        account's state at these two levels."""
        bank = self._bank
        if bank is None or bank.scopes != (tuple(strategy_scopes), tuple(portfolio_scopes)):
            if bank is not None:
                bank.materialize()
            bank = self._bank = _AccountBank(self, list(strategy_scopes), list(portfolio_scopes))
        return bank.update(int(ts_ms), _f64(equity), _f64(losing_streak), _f64(gross_exposure),
                           _f64(largest_position))


_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()
_S_RULES = ("strategy_drawdown", "strategy_losing_streak")
_P_RULES = ("portfolio_max_drawdown", "portfolio_daily_loss", "portfolio_gross_exposure", "portfolio_concentration")


@numba.njit(cache=True)
def _bank_step_nb(ts: float, day: float, eq: np.ndarray, streak: np.ndarray, gx: np.ndarray, lg: np.ndarray,
                  s_f: np.ndarray, s_i: np.ndarray, p_f: np.ndarray, p_i: np.ndarray, lim: np.ndarray,
                  slow: np.ndarray, upd: np.ndarray, dirty: np.ndarray) -> int:
    """One instant of ``_AccountBank.update`` for every selected account, in compiled code.

    Applies ``CircuitBreakers._apply``'s outcome where it changes only numbers (peaks, day start,
    last equity, a restarted portfolio cooldown): an active account that trips nothing, or a
    non-active one whose rules fire below its state before its cooldown ends (or keep firing the
    rule that set it). Everything else -- a trip, a recovery, a rebase -- is marked ``slow`` for
    the scalar path. s_f: peak, base, last, until | s_i: state, reason | p_f: day, sod, peak,
    last, until, restart | p_i: state, reason, latched | lim: the config's thresholds. Returns
    the number of slow accounts.
    """
    n_slow = 0
    for a in range(eq.shape[0]):
        slow[a] = False
        e = eq[a]
        # strategy level (update_strategy)
        pk = s_f[a, 0]
        if np.isnan(pk):
            pk = e
        if e > pk:
            pk = e
        base = s_f[a, 1]
        if streak[a] < base:
            base = 0.0
        dd = 0.0 if pk <= 0 else 1.0 - e / pk
        cnt = streak[a] - base
        sev, rule = 0, -1
        if dd >= lim[1]:
            sev, rule = 2, 0
        elif cnt >= lim[3]:
            sev, rule = 2, 1
        elif dd >= lim[0]:
            sev, rule = 1, 0
        elif cnt >= lim[2]:
            sev, rule = 1, 1
        st = s_i[a, 0]
        s_ok = sev == 0 if st == 0 else ts < s_f[a, 3] and (sev < st or (sev == st and rule == s_i[a, 1]))
        if not s_ok:
            slow[a] = True
            n_slow += 1
            continue
        # portfolio level (update_portfolio)
        new_day = p_f[a, 0] != day
        sod = p_f[a, 1]
        if new_day:
            sod = e if np.isnan(p_f[a, 3]) else p_f[a, 3]
        ppk = p_f[a, 2]
        if np.isnan(ppk):
            ppk = e
        if e > ppk:
            ppk = e
        loss = 0.0 if sod <= 0 else max(0.0, 1.0 - e / sod)
        pdd = 0.0 if ppk <= 0 else 1.0 - e / ppk
        gross = np.inf if e <= 0 else abs(gx[a]) / e
        conc = np.inf if e <= 0 else abs(lg[a]) / e
        psev, prule = 0, -1
        if pdd >= lim[4]:
            psev, prule = 2, 0
        elif loss >= lim[6]:
            psev, prule = 2, 1
        elif loss >= lim[5]:
            psev, prule = 1, 1
        elif gross > lim[7] + 1e-9:
            psev, prule = 1, 2
        elif conc > lim[8] + 1e-9:
            psev, prule = 1, 3
        pst = p_i[a, 0]
        restart = False
        if pst == 0:
            p_ok = psev == 0
        elif psev == pst:
            p_ok = prule == p_i[a, 1]
            restart = True
        else:
            p_ok = psev < pst and (ts < p_f[a, 4] or p_i[a, 2] == 1)
        if not p_ok:
            slow[a] = True
            n_slow += 1
            continue
        s_f[a, 0], s_f[a, 1], s_f[a, 2] = pk, base, e
        p_f[a, 0], p_f[a, 1], p_f[a, 2], p_f[a, 3] = day, sod, ppk, e
        if restart:
            p_f[a, 4] = ts + lim[9]
            p_f[a, 5] = ts
        upd[a] = ts
        dirty[a] = True
    return n_slow


def _f64(a: Any) -> np.ndarray:
    if type(a) is np.ndarray and a.dtype == np.float64 and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dtype=np.float64)


def _ms(t: datetime | None) -> float:
    return -math.inf if t is None else t.timestamp() * 1000.0


class _AccountBank:
    """Array mirror of the strategy and portfolio breakers of A accounts (see ``update_accounts``).

    ``dirty[a]``: the arrays are newer than account a's ``BreakerState`` objects. The arrays are
    a cache: every scalar change (``_set``) is absorbed, every read materialises first.
    """

    def __init__(self, owner: CircuitBreakers, strategy_scopes: list[str], portfolio_scopes: list[str]) -> None:
        self.owner = owner
        self.scopes = (tuple(strategy_scopes), tuple(portfolio_scopes))
        n = len(strategy_scopes)
        self.index = {("strategy", sc): a for a, sc in enumerate(strategy_scopes)}
        self.index.update({("portfolio", sc): a for a, sc in enumerate(portfolio_scopes)})
        self.s_f = np.tile(np.array([np.nan, 0.0, np.nan, -np.inf]), (n, 1))
        self.s_i = np.tile(np.array([A, -1], np.int64), (n, 1))
        self.p_f = np.tile(np.array([np.nan, np.nan, np.nan, np.nan, -np.inf, np.nan]), (n, 1))
        self.p_i = np.tile(np.array([A, -1, 0], np.int64), (n, 1))
        self.upd = np.full(n, -1.0)  # ms of the last array-only update
        self.dirty = np.zeros(n, np.bool_)
        self.slow = np.zeros(n, np.bool_)
        c = owner.config
        cs, cp = c.strategy, c.portfolio
        self.lim = np.array([cs.drawdown_reduce, cs.drawdown_halt, cs.losing_streak_reduce, cs.losing_streak_halt,
                             cp.max_drawdown_halt, cp.daily_loss_reduce, cp.daily_loss_halt, cp.max_gross_exposure,
                             cp.max_concentration, cp.cooldown_s * 1000.0], dtype=np.float64)
        for st in list(owner._states.values()):
            self.absorb(st)

    def absorb(self, st: BreakerState) -> None:
        a = self.index.get((st.level, st.scope))
        if a is None:
            return
        m = st.memo
        if st.level == "strategy":
            self.s_f[a] = (m.get("peak_equity", np.nan), m.get("streak_base", 0.0), m.get("last_equity", np.nan),
                           _ms(st.cooldown_until))
            self.s_i[a] = (st.state, _S_RULES.index(st.reason) if st.reason in _S_RULES else -1)
        else:
            self.p_f[a] = (m.get("day", np.nan), m.get("day_start_equity", np.nan), m.get("peak_equity", np.nan),
                           m.get("last_equity", np.nan), _ms(st.cooldown_until), np.nan)
            self.p_i[a] = (st.state, _P_RULES.index(st.reason) if st.reason in _P_RULES else -1, int(st.latched))

    def materialize_one(self, level: str, scope: str) -> None:
        a = self.index.get((level, scope))
        if a is not None and self.dirty[a]:
            self._write(a)

    def materialize(self) -> None:
        for a in np.flatnonzero(self.dirty).tolist():
            self._write(a)

    def _write(self, a: int) -> None:
        """Account a's arrays back into its two ``BreakerState`` objects."""
        own = self.owner
        t = datetime.fromtimestamp(self.upd[a] / 1000.0, tz=UTC)
        s_sc, p_sc = self.scopes[0][a], self.scopes[1][a]
        s_old = own._states.get(("strategy", s_sc)) or BreakerState("strategy", s_sc)
        p_old = own._states.get(("portfolio", p_sc)) or BreakerState("portfolio", p_sc)
        sf, pf = self.s_f[a], self.p_f[a]
        s_memo = {**s_old.memo, "peak_equity": float(sf[0]), "streak_base": float(sf[1]), "last_equity": float(sf[2])}
        p_memo = {**p_old.memo, "day": float(pf[0]), "day_start_equity": float(pf[1]), "peak_equity": float(pf[2]),
                  "last_equity": float(pf[3])}
        until = p_old.cooldown_until
        if math.isfinite(pf[5]):  # the firing rule restarted the cooldown at that instant
            until = datetime.fromtimestamp(pf[5] / 1000.0, tz=UTC) + timedelta(seconds=own.config.portfolio.cooldown_s)
            pf[5] = np.nan
        self.dirty[a] = False
        own._states[("strategy", s_sc)] = replace(s_old, memo=s_memo, updated_at=t)
        own._states[("portfolio", p_sc)] = replace(p_old, memo=p_memo, updated_at=t, cooldown_until=until)

    def update(self, ts_ms: int, eq: np.ndarray, streak: np.ndarray, gross_x: np.ndarray,
               largest: np.ndarray) -> np.ndarray:
        own = self.owner
        day = float(ts_ms // 86_400_000 + _EPOCH_ORDINAL)
        n_slow = _bank_step_nb(float(ts_ms), day, eq, streak, gross_x, largest, self.s_f, self.s_i, self.p_f,
                               self.p_i, self.lim, self.slow, self.upd, self.dirty)
        if n_slow:
            when = datetime.fromtimestamp(ts_ms / 1000.0, tz=UTC)
            for a in np.flatnonzero(self.slow).tolist():
                if self.dirty[a]:
                    self._write(a)
                own.update_strategy(self.scopes[0][a], when, equity=float(eq[a]), losing_streak=int(streak[a]))
                own.update_portfolio(self.scopes[1][a], when, equity=float(eq[a]),
                                     gross_exposure=float(gross_x[a]), largest_position=float(largest[a]))
        return np.maximum(self.s_i[:, 0], self.p_i[:, 0])
