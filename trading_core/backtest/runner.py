"""Run one backtest: bars from the warehouse -> strategy signals -> engine -> metrics -> warehouse.

The runner only shapes inputs and outputs; fills come from the engine, the same core paper trading
and stress tests use, so a backtest never has its own execution rules. Two drivers of that one
engine: with no risk layer, no filters, no protective stops, no position rules and one symbol,
the whole run is one ``simulate_signals`` call (parameter grids, sweeps); otherwise
``stepped.run_stepped`` replays the bars through the one trading loop (``trading.Trader``), so
circuit breakers and resting stops act as they do in a paper session. With nothing firing both
give the same ledger (tests pin it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import polars as pl

from ..analytics.by_regime import metrics_by_regime
from ..analytics.metrics import PerformanceMetrics, compute_metrics, simple_returns
from ..errors import InvalidInput
from ..strategies import Bars, get_strategy, portfolio_symbols
from ..strategies.base import aligned_bars, own_bar_signals
from ..strategies.filters import decision_rows, filter_counts
from ..strategies.position_rules import PositionRules
from .request import BacktestRequest, parse_slippage
from .stepped import Protection, SteppedResult, run_stepped
from .trades import BUY, Trade, round_trips

__all__ = ["MAX_PORTFOLIO_BARS", "MAX_PORTFOLIOS", "BacktestResult", "PortfolioResult", "build_market_model",
           "check_work", "position_rules_for", "protection_for", "run_backtest", "strategy_history",
           "trader_layout", "warmed_signals"]

# The most work one run may take on: portfolios (grid variants x symbols) and portfolios x bars.
# A portfolio-bar costs about 2 us end to end (signals, engine, metrics, trades), so the second
# limit is well under a minute; a bigger sweep is several runs, not one that says nothing for minutes.
MAX_PORTFOLIOS = 2_000
MAX_PORTFOLIO_BARS = 20_000_000

_FILL_REASONS = {0: "open", 1: "gap", 2: "intrabar", 3: "close"}


class BarSource(Protocol):
    """What the runner needs from a warehouse (``trading_core.warehouse.Warehouse`` fits)."""

    def read_bars(self, venue: str, symbol: str, timeframe: str, start: datetime | None = None,
                  end: datetime | None = None) -> pl.DataFrame: ...


@dataclass(frozen=True)
class PortfolioResult:
    """One portfolio of a run (one grid variant on the run's symbol)."""

    portfolio: int
    symbol: str
    params: dict[str, Any]
    metrics: PerformanceMetrics
    trades: list[Trade]
    by_regime: dict[str, Any] = field(default_factory=dict)  # metrics per regime label (analytics.by_regime)

    def to_dict(self) -> dict[str, Any]:
        return {"portfolio": self.portfolio, "symbol": self.symbol, "params": self.params,
                "metrics": self.metrics.to_dict(), "by_regime": self.by_regime,
                "trades": [t.to_dict() for t in self.trades]}


@dataclass(frozen=True)
class BacktestResult:
    """Everything a run produced; ``to_dict`` is the ``--json`` payload."""

    run_id: str
    created_at: datetime
    request: BacktestRequest
    calendar: str
    execution_model_hash: str
    market_model: dict[str, Any]
    ts: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    position: np.ndarray
    fills: np.ndarray
    portfolios: list[PortfolioResult] = field(default_factory=list)
    persisted: bool = False
    risk: dict[str, Any] | None = None  # enabled, counts by reason, notes (None: risk off)
    filters: dict[str, int] = field(default_factory=dict)  # signal decisions by reason
    risk_rows: pl.DataFrame | None = None  # audit rows for risk.risk_decisions
    signal_rows: pl.DataFrame | None = None  # rows for backtest.signal_decisions
    breaker_events: list[dict[str, Any]] = field(default_factory=list)  # transitions, in order
    breaker_states: list[dict[str, Any]] = field(default_factory=list)  # final state of each breaker
    symbols: tuple[str, ...] = ()  # the symbols fills/trades index (one unless request.symbols)
    regimes: dict[str, Any] = field(default_factory=dict)  # where the by-regime slices come from
    driver: str = "batch"  # batch (one simulate_signals call) | stepped (bar by bar)
    device: str = "cpu"  # the device the engine ran on (``auto`` resolved)

    @property
    def bars(self) -> int:
        return int(self.ts.shape[0])

    def to_dict(self, *, include_fills: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id, "created_at": self.created_at.isoformat(),
            "request": self.request.model_dump(mode="json"), "calendar": self.calendar,
            "execution_model_hash": self.execution_model_hash, "market_model": self.market_model,
            "bars": self.bars,
            "start": _iso(int(self.ts[0])) if self.bars else None,
            "end": _iso(int(self.ts[-1])) if self.bars else None,
            "persisted": self.persisted,
            "risk": self.risk if self.risk is not None else {"enabled": False, "counts": {}, "notes": []},
            "filters": self.filters, "driver": self.driver, "device": self.device, "regimes": self.regimes,
            "breakers": {"events": [_jsonable(e) for e in self.breaker_events],
                         "states": [_jsonable(e) for e in self.breaker_states]},
            "portfolios": [p.to_dict() for p in self.portfolios],
        }
        if self.symbols:
            for p in out["portfolios"]:
                for t in p["trades"]:
                    t["symbol"] = self.symbols[t["symbol"]]
        if include_fills:
            out["fills"] = [{**f, "ts": f["ts"].isoformat()} for f in fill_dicts(self.fills, self.symbols)]
        return out


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC).isoformat()


def fill_dicts(fills: np.ndarray, symbols: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Fill records as JSON-ready dicts, numbered per portfolio in record order; ``symbols``
    names the symbol index (None without it)."""
    out: list[dict[str, Any]] = []
    counters: dict[int, int] = {}
    for f in fills:
        p = int(f["portfolio"])
        n = counters.get(p, 0)
        counters[p] = n + 1
        out.append({
            "portfolio": p, "fill_no": n, "order_id": int(f["order_id"]), "bar": int(f["bar"]),
            "ts": datetime.fromtimestamp(int(f["ts"]) / 1000.0, tz=UTC),
            "symbol": symbols[int(f["symbol"])] if symbols else None,
            "side": "buy" if int(f["side"]) == BUY else "sell", "qty": float(f["qty"]),
            "price": float(f["price"]), "fee": float(f["fee"]),
            "slippage_cost": float(f["slippage_cost"]),
            "reason": _FILL_REASONS.get(int(f["reason"]), str(int(f["reason"]))),
        })
    return out


def build_market_model(request: BacktestRequest) -> Any:
    """The engine's ``MarketModel`` for this request: venue config, then the request's overrides.

    Overrides: ``fill`` always; ``fee_bps`` (one flat tier) when given; the slippage model
    (fixed bps or square-root impact; ``none`` zeroes both); ``short`` allows shorting.
    """
    from ..engine import FeeTier, MarketModel

    slip_bps, impact = parse_slippage(request.slippage)
    overrides: dict[str, Any] = {"fill_at": request.fill, "slippage_bps": slip_bps, "impact_coef": impact}
    if request.fee_bps is not None:
        overrides["fee_tiers"] = (FeeTier(0.0, request.fee_bps, request.fee_bps),)
    if request.short:
        overrides["allow_short"] = True
    try:
        return MarketModel.from_venue_config(dict(request.venue_config), request.venue, **overrides)
    except ValueError as e:  # pydantic ValidationError is a ValueError
        first = str(e).splitlines()
        raise InvalidInput(f"venues.{request.venue}: {' '.join(x.strip() for x in first[:3])}") from None


def check_lot_size(request: BacktestRequest, model: Any) -> None:
    """Refuse a fixed size that the venue's lot size cannot trade (fractions allowed otherwise)."""
    lot = float(getattr(model, "lot_size", 0.0) or 0.0)
    if request.sizing == "fixed" and lot > 0:
        lots = request.size / lot
        if abs(lots - round(lots)) > 1e-9 or round(lots) < 1:
            raise InvalidInput(
                f"size {request.size:g} is not a multiple of venue {request.venue}'s lot size {lot:g}")


def check_work(strategy: str, n_variants: int, n_symbols: int, n_bars: int | None = None) -> None:
    """Refuse a run bigger than ``MAX_PORTFOLIOS`` portfolios or ``MAX_PORTFOLIO_BARS`` portfolio-bars
    before any of it starts; ``n_bars`` None checks the portfolio count only (before bars are read)."""
    portfolios = n_variants * n_symbols
    what = f"{n_variants} variant(s) x {n_symbols} symbol(s) = {portfolios} portfolios"
    if portfolios > MAX_PORTFOLIOS:
        raise InvalidInput(f"strategy {strategy}: {what}, above the limit of {MAX_PORTFOLIOS} per run; "
                           "split the grid into several runs")
    if n_bars is not None and portfolios * n_bars > MAX_PORTFOLIO_BARS:
        raise InvalidInput(f"strategy {strategy}: {what} x {n_bars} bars = {portfolios * n_bars:.3g} "
                           f"portfolio-bars, above the limit of {MAX_PORTFOLIO_BARS:.3g} per run; "
                           "split the grid or shorten --start..--end")


def _default_simulate() -> Callable[..., Any]:
    from ..trading.batch import trade_signals

    return trade_signals


def run_backtest(
    request: BacktestRequest,
    warehouse: BarSource,
    *,
    simulate: Callable[..., Any] | None = None,
    run_id: str | None = None,
    now: datetime | None = None,
) -> BacktestResult:
    """Run ``request`` on the warehouse's bars; write the result to ``backtest`` when ``persist``.

    ``simulate`` defaults to ``trading_core.engine.simulate_signals`` (tests may pass a fake).
    Raises ``InvalidInput`` for an unknown strategy, bad parameters or too few bars.
    """
    from ..engine import resolve_device

    strategy = get_strategy(request.strategy, request.params)
    device = resolve_device(request.device)  # cuda without a GPU fails here, before any work
    variants = strategy.variants()
    check_work(request.strategy, len(variants), len(request.universe))
    frames = _read_frames(request, warehouse)
    bars = _align(frames, request.universe)
    check_work(request.strategy, len(variants), bars.n_symbols, bars.n_bars)
    multi = bars.n_symbols > 1
    entries, exits = warmed_signals(strategy, strategy_history(request, warehouse, tuple(bars.symbols),
                                                               int(bars.ts[0])), bars)
    symbol_of, account_of = trader_layout(len(variants), bars.n_symbols)
    model = build_market_model(request)
    check_lot_size(request, model)
    rid = run_id or uuid.uuid4().hex
    protection = protection_for(request, strategy)
    rules = position_rules_for(strategy)
    if request.risk is None and request.filters is None and not protection.any and not multi and rules is None:
        sim = (simulate or _default_simulate())(
            bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume,
            entries=entries, exits=exits, symbol_of=symbol_of, model=model, cash=request.cash,
            size_mode=request.sizing, size=request.size, short=request.short, device=request.device,
            seed=request.seed,
        )
        stepped = None
        device = str(getattr(sim, "device", device))
        equity_raw, cash_raw, position_raw, fills_raw = sim.equity, sim.cash, sim.position, sim.fills
    else:
        stepped = run_stepped(request, warehouse, bars, entries, exits, symbol_of, account_of, model,
                              protection, rid, rules)
        equity_raw, cash_raw, position_raw, fills_raw = (stepped.equity, stepped.cash, stepped.position,
                                                         stepped.fills)
    calendar = request.resolved_calendar()
    equity = np.asarray(equity_raw, dtype=np.float64).reshape(bars.n_bars, -1)
    cash = np.asarray(cash_raw, dtype=np.float64).reshape(bars.n_bars, -1)
    position = _position_of(position_raw, bars.n_bars, symbol_of) if not multi else \
        (np.asarray(position_raw) != 0).sum(axis=2).astype(np.float64)  # open positions per account
    fills = np.asarray(fills_raw)
    # the benchmark: buy-and-hold of the symbol, or an equal-weight basket of the symbols
    # (a closed symbol -- NaN on a union calendar -- holds its last close: 0 return while closed,
    # Monday's return against Friday; open trades are marked at each symbol's last traded close)
    marks = last_traded_close(bars.close)
    bench = simple_returns(marks[:, 0]) if not multi else np.nanmean(
        np.column_stack([simple_returns(marks[:, s]) for s in range(bars.n_symbols)]), axis=1)
    last_close = marks[-1]

    labels, regimes = _regime_labels(request, warehouse, bars)
    portfolios: list[PortfolioResult] = []
    names = variants if multi else _expand(variants, bars.n_symbols)
    for p, params in enumerate(names):
        pf = fills[fills["portfolio"] == p]
        trades = round_trips(pf, last_close=last_close)
        closed = [t.pnl for t in trades if not t.is_open]
        metrics = compute_metrics(
            equity[:, p], timeframe=request.timeframe, calendar=calendar, ts=bars.ts,
            trade_pnl=closed, open_trades=sum(t.is_open for t in trades),
            position=position[:, p], traded_value=pf["qty"] * pf["price"],
            fees=pf["fee"], slippage=pf["slippage_cost"], benchmark_returns=bench,
        )
        label = ",".join(bars.symbols) if multi else bars.symbols[int(symbol_of[p])]
        sliced = {} if labels is None else metrics_by_regime(
            equity[:, p], labels, timeframe=request.timeframe, calendar=calendar, position=position[:, p],
            benchmark_returns=bench)
        portfolios.append(PortfolioResult(p, label, params, metrics, trades, sliced))

    result = BacktestResult(
        run_id=rid, created_at=now or datetime.now(UTC), request=request,
        calendar=calendar, execution_model_hash=model.execution_model_hash(),
        market_model=_jsonable(model.to_dict()), ts=bars.ts, equity=equity, cash=cash,
        position=position, fills=fills, portfolios=portfolios,
        symbols=bars.symbols, regimes=regimes, device=device,
        **(_stepped_fields(request, stepped, bars, symbol_of, rid) if stepped is not None else {}),
    )
    if request.persist:
        _persist(result, warehouse)
        result = _replace_persisted(result)
    return result


def _regime_labels(request: BacktestRequest, warehouse: Any,
                   bars: Bars) -> tuple[list[str | None] | None, dict[str, Any]]:
    """The regime label of each bar of the run's (first) symbol from ``features.regimes``.

    Labels are data the feature assets write; a warehouse without them gives no slices and says
    how to get them rather than computing labels on the fly with another configuration."""
    symbol = bars.symbols[0]
    info: dict[str, Any] = {"symbol": symbol, "available": False}
    if not hasattr(warehouse, "connect"):
        return None, {**info, "note": "the bar source has no feature store"}
    import duckdb

    from ..errors import WarehouseBusy
    from ..warehouse.features import read_regimes

    try:
        with warehouse.connect(read_only=True) as con:
            frame = read_regimes(con, request.venue, symbol, request.timeframe, request.start, request.end)
    except (duckdb.Error, WarehouseBusy, OSError) as e:  # slices are optional: say why there are none
        return None, {**info, "note": f"regime labels unreadable: {e}"}
    if frame.height == 0:
        return None, {**info, "note": f"no regime labels for {symbol} ({request.venue}, {request.timeframe}); "
                                      f"run `trading features update --symbol {symbol} --venue {request.venue} "
                                      f"--timeframe {request.timeframe}` (or materialise the feature assets "
                                      "in Dagster) to slice metrics by regime"}
    names = frame["regime"].to_list()
    pos, hit = _rows_at(frame["ts"].dt.epoch("ms").to_numpy().astype(np.int64), bars.ts)
    labels: list[str | None] = [names[int(i)] if h else None for i, h in zip(pos, hit, strict=True)]
    return labels, {**info, "available": True, "labelled_bars": int(hit.sum()),
                    "regime_versions": sorted(frame["regime_version"].unique().to_list())}


def parse_universe(spec: str, venue: str | None, timeframe: str | None) -> tuple[list[str], list[str], str | None]:
    """``--symbol`` as (symbols, venues, timeframe): ``A,B`` on ``venue``, or venue-qualified
    ``coinbase:BTC/USD,yahoo:^GSPC`` (the session configs' ``venue`` + ``symbol`` in one token),
    each optionally ``@<timeframe>``. A portfolio steps on ONE timeframe: two different ones are
    refused naming both (resample to a common timeframe first)."""
    from ..symbols import VENUE_PATTERN, check_symbol, check_venue

    symbols: list[str] = []
    venues: list[str] = []
    tfs: list[tuple[str, str]] = []
    for raw in str(spec).split(","):
        tok = raw.strip()
        tf = None
        if "@" in tok:
            tok, tf = (x.strip() for x in tok.rsplit("@", 1))
        v = venue
        head, sep, rest = tok.partition(":")
        if sep and VENUE_PATTERN.fullmatch(head):  # lower case: a venue (BTC/USDT:USDT is a symbol)
            v, tok = check_venue(head), rest
        sym = check_symbol(tok)
        if v is None:
            raise InvalidInput(f"--symbol {raw.strip()}: no venue (give --venue or write venue:SYMBOL)")
        symbols.append(sym)
        venues.append(v)
        tfs.append((sym, tf or timeframe or ""))
    named = [(s, t) for s, t in tfs if t]
    for s, t in named[1:]:
        if t != named[0][1]:
            raise InvalidInput(f"mixed timeframes: {named[0][0]} {named[0][1]} and {s} {t}; a portfolio steps on "
                               "one timeframe (choose one both are stored in, or resample to it)")
    return symbols, venues, (named[0][1] if named else timeframe)


def last_traded_close(close: np.ndarray) -> np.ndarray:
    """(T, S) closes with each NaN (no bar: a closed market) replaced by the symbol's last traded
    close; NaN stays only before a symbol's first bar. Without NaN, ``close`` itself."""
    c = np.asarray(close, dtype=np.float64)
    bad = np.isnan(c)
    if not bad.any():
        return c
    idx = np.where(~bad, np.arange(c.shape[0])[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = c[idx, np.arange(c.shape[1])[None, :]]
    return np.where(bad & (np.cumsum(~bad, axis=0) == 0), np.nan, out)


def _venue_of(request: Any, symbol: str) -> str:
    """The venue a symbol of the request trades on (one venue unless ``request.venues`` names several)."""
    f = getattr(request, "venue_of", None)
    return f(symbol) if f is not None else request.venue  # type: ignore[no-any-return]


def _read_frames(request: BacktestRequest, warehouse: BarSource) -> list[pl.DataFrame]:
    """Each symbol's bars in [start, end); fewer than two bars of any symbol is an error naming it."""
    frames = []
    for sym in request.universe:
        f = warehouse.read_bars(_venue_of(request, sym), sym, request.timeframe, request.start, request.end)
        if f.height < 2:
            raise InvalidInput(_too_few_bars(request, sym, f.height, warehouse))
        frames.append(f)
    return frames


def _too_few_bars(request: BacktestRequest, sym: str, n: int, warehouse: Any) -> str:
    """One line: what was asked (inclusive dates) and what IS stored nearest to it -- the series'
    own first/last bar when the range misses it, else the stored series closest by name."""
    import difflib
    from datetime import timedelta

    def when(ts: datetime) -> str:
        ts = ts.astimezone(UTC) if ts.tzinfo else ts
        return ts.date().isoformat() if (ts.hour, ts.minute, ts.second) == (0, 0, 0) else ts.strftime(
            "%Y-%m-%d %H:%M")

    last = request.end - (timedelta(days=1) if (request.end.hour, request.end.minute, request.end.second,
                                                request.end.microsecond) == (0, 0, 0, 0) else timedelta(0))
    to = when(last) if last != request.end else f"before {when(request.end)} UTC"
    venue = _venue_of(request, sym)  # the symbol's own venue (a portfolio may span venues)
    asked = (f"{n} {request.timeframe} bar(s) of {sym} on {venue} from {when(request.start)} "
             f"to {to}{' (inclusive)' if last != request.end else ''}")
    try:
        stored = list(warehouse.series()) if hasattr(warehouse, "series") else None
    except Exception as e:  # noqa: BLE001 - the hint is optional; the refusal itself must stand
        stored, why = None, f"{type(e).__name__}"
    else:
        why = "the bar source cannot list its series"

    def desc(r: Any) -> str:
        return f"{r.symbol} {r.venue} {r.timeframe} {when(r.first_ts)} .. {when(r.last_ts)}"

    where = f" in {warehouse.path}" if getattr(warehouse, "path", None) is not None else ""
    if stored is None:
        return f"{asked}; ingest them first (trading ingest ...) [stored series unknown: {why}]"
    if not stored:
        return f"{asked}: the warehouse{where} holds no bars; ingest them first (trading ingest sample)"
    same = next((r for r in stored if (r.venue, r.symbol, r.timeframe) == (venue, sym, request.timeframe)),
                None)
    if same is not None:
        return (f"{asked}; stored: {same.bars} bars from {when(same.first_ts)} to {when(same.last_ts)}; "
                "choose --start/--end inside that range, or ingest them first (trading ingest ...)")

    def score(r: Any) -> float:
        name = difflib.SequenceMatcher(None, sym.lower(), r.symbol.lower()).ratio()
        return name + 0.2 * (r.venue == venue) + 0.1 * (r.timeframe == request.timeframe)

    near = sorted((r for r in stored if difflib.SequenceMatcher(None, sym.lower(), r.symbol.lower()).ratio() >= 0.5),
                  key=lambda r: (-score(r), r.symbol, r.venue, r.timeframe))[:3]
    if not near:
        near = sorted(stored, key=lambda r: (-score(r), r.symbol))[:3]
        label = "no stored series is named like it; stored"
    else:
        label = "not stored; nearest stored"
    more = f" ({len(stored) - len(near)} other series stored)" if len(stored) > len(near) else ""
    return f"{asked}: {label}: {'; '.join(desc(r) for r in near)}{more}; or ingest them first (trading ingest ...)"


def _align(frames: list[pl.DataFrame], symbols: tuple[str, ...]) -> Bars:
    """The run's bars: several symbols on the union of their bars (a closed symbol's bar is NaN);
    fewer than two is an error."""
    bars = aligned_bars(frames, symbols)
    if len(frames) > 1 and bars.n_bars < 2:
        raise InvalidInput(f"{', '.join(symbols)} have {bars.n_bars} bar(s) in the range: nothing to trade")
    return bars


def protection_for(request: BacktestRequest, strategy: Any) -> Protection:
    """Resting exits: the strategy's own stop-loss / take-profit (YAML rules) and the trailing
    stop of the risk config. Both are engine orders, so they fill intrabar at their level."""
    stops = getattr(strategy, "stops", None) or {}
    trailing = request.risk.trailing_stop if request.risk is not None else None
    return Protection(stop_loss_pct=stops.get("stop_loss_pct"), take_profit_pct=stops.get("take_profit_pct"),
                      trailing=trailing)


def position_rules_for(strategy: Any) -> PositionRules | None:
    """A YAML strategy's position rules (scale in/out, average down, ADV cap), None when none apply."""
    rules = getattr(strategy, "position", None)
    return rules if rules is not None and rules.any else None


def trader_layout(n_variants: int, n_symbols: int) -> tuple[np.ndarray, np.ndarray]:
    """(symbol_of, account_of) of the signal columns: one account per variant when it holds
    several symbols (shared cash), else one per (variant, symbol) column."""
    symbol_of = portfolio_symbols(n_variants, n_symbols)
    account_of = np.arange(symbol_of.size, dtype=np.int64) // (n_symbols if n_symbols > 1 else 1)
    return symbol_of, account_of


def strategy_history(request: BacktestRequest, warehouse: Any, symbols: tuple[str, ...], first_ms: int) -> Bars | None:
    """The ``warmup_bars`` aligned bars before the run that the strategy is fed first (fewer when
    the warehouse holds fewer); None for none. A paper session warms its stream on exactly these."""
    w = int(getattr(request, "warmup_bars", 0))
    if w <= 0 or not hasattr(warehouse, "read_bars"):
        return None
    from datetime import timedelta

    from ..timeframes import timeframe_ms

    span = timedelta(milliseconds=timeframe_ms(request.timeframe) * (w + 1))
    calendars = {request.calendar_of(s) if hasattr(request, "calendar_of") else request.resolved_calendar()
                 for s in symbols}
    lead = span * 1.6 + timedelta(days=7) if "equity" in calendars else span
    first = datetime.fromtimestamp(int(first_ms) / 1000.0, tz=UTC)
    frames = [warehouse.read_bars(_venue_of(request, s), s, request.timeframe, first - lead, first) for s in symbols]
    if any(f.height == 0 for f in frames):
        return None
    hist = aligned_bars(frames, symbols)
    if not hist.n_bars:
        return None
    k = min(w, hist.n_bars)
    if hist.n_symbols > 1:  # union calendar: enough rows that every symbol has w bars of its own
        for s in range(hist.n_symbols):
            own = np.flatnonzero(np.isfinite(hist.close[:, s]))
            if own.shape[0]:
                k = max(k, hist.n_bars - int(own[-min(w, own.shape[0])]))
    return Bars(ts=hist.ts[-k:], open=hist.open[-k:], high=hist.high[-k:], low=hist.low[-k:],
                close=hist.close[-k:], volume=hist.volume[-k:], symbols=hist.symbols)


def warmed_signals(strategy: Any, history: Bars | None, bars: Bars) -> tuple[np.ndarray, np.ndarray]:
    """The strategy's batch signals on ``bars``, computed after ``history`` (rows of ``bars`` only)."""
    if history is None or not history.n_bars:
        return own_bar_signals(strategy, bars)
    both = Bars(ts=np.concatenate([history.ts, bars.ts]),
                **{k: np.vstack([getattr(history, k), getattr(bars, k)])
                   for k in ("open", "high", "low", "close", "volume")}, symbols=bars.symbols)
    entries, exits = own_bar_signals(strategy, both)
    h = history.n_bars
    return entries[h:], exits[h:]


def _rows_at(src_ts: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``ts``: its row in the sorted ``src_ts`` and whether that row has exactly it."""
    pos = np.searchsorted(src_ts, ts)
    if src_ts.shape[0] == 0:
        return pos, np.zeros(ts.shape[0], np.bool_)
    hit = (pos < src_ts.shape[0]) & (src_ts[np.minimum(pos, src_ts.shape[0] - 1)] == ts)
    return pos, hit


def _stepped_fields(request: BacktestRequest, st: SteppedResult, bars: Bars, symbol_of: np.ndarray,
                    run_id: str) -> dict[str, Any]:
    """The risk/filter/breaker part of a ``BacktestResult`` from a stepped run."""
    from dataclasses import asdict

    summary = None
    if request.risk is not None:
        summary = {"enabled": True, "counts": st.risk_counts, "notes": st.notes,
                   "entries_paused_bars": st.paused_bars,
                   "trailing_stop": request.risk.trailing_stop is not None,
                   "breakers_enabled": request.risk.breakers.enabled,
                   "breaker_transitions": len(st.breaker_events), "bars_by_state": st.state_bars}
    signal_rows = decision_rows(st.decisions, bars.ts, run_id=run_id, strategy=request.strategy,
                                symbols=list(bars.symbols), symbol_of=symbol_of)
    return {"risk": summary, "filters": filter_counts(st.decisions), "risk_rows": st.risk_rows,
            "signal_rows": signal_rows, "breaker_events": [asdict(e) for e in st.breaker_events],
            "breaker_states": st.breaker_states, "driver": "stepped"}


def _expand(variants: list[dict[str, Any]], n_symbols: int) -> list[dict[str, Any]]:
    return [v for v in variants for _ in range(n_symbols)]


def _position_of(position: Any, n_bars: int, symbol_of: np.ndarray) -> np.ndarray:
    """Units held per (bar, portfolio) in the portfolio's own symbol, from (T,P) or (T,P,S)."""
    pos = np.asarray(position, dtype=np.float64)
    if pos.ndim == 3:
        return pos[:, np.arange(symbol_of.size), symbol_of]
    return pos.reshape(n_bars, -1)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(d, default=str))


def _replace_persisted(r: BacktestResult) -> BacktestResult:
    import dataclasses

    return dataclasses.replace(r, persisted=True)


def _persist(result: BacktestResult, warehouse: Any) -> None:
    """Write the run, its risk and signal decisions and its breaker history in ONE transaction."""
    from ..warehouse.backtests import BacktestRecord, write_backtest, write_breaker_history

    req = result.request
    ts = pl.Series("ts", result.ts).cast(pl.Datetime("ms", "UTC"))
    n_bars, n_port = result.equity.shape
    equity = pl.DataFrame({
        "portfolio": np.repeat(np.arange(n_port), n_bars),
        "ts": pl.concat([ts] * n_port) if n_port else ts.clear(),
        "equity": result.equity.T.reshape(-1), "cash": result.cash.T.reshape(-1),
        "position": result.position.T.reshape(-1),
    })
    trades = []
    for pr in result.portfolios:
        for t in pr.trades:
            trades.append({"trade_no": t.trade_no, "portfolio": pr.portfolio,
                           "symbol": result.symbols[t.symbol] if result.symbols else None, "side": t.side,
                           "entry_ts": t.entry_ts, "exit_ts": t.exit_ts, "entry_price": t.entry_price,
                           "exit_price": t.exit_price, "quantity": t.quantity, "fees": t.fees,
                           "pnl": t.pnl})
    first = result.portfolios[0].metrics.to_dict() if result.portfolios else {}
    record = BacktestRecord(
        run_id=result.run_id, created_at=result.created_at, strategy=req.strategy,
        params=dict(req.params), venue=req.venue, symbol=req.symbol, timeframe=req.timeframe,
        start_ts=req.start, end_ts=req.end,
        config={"request": req.model_dump(mode="json"), "calendar": result.calendar,
                "market_model": result.market_model},
        execution_model_hash=result.execution_model_hash,
        metrics={**first, "portfolios": len(result.portfolios)},
        portfolios=[{"portfolio": p.portfolio, "symbol": p.symbol, "params": p.params,
                     "metrics": {**p.metrics.to_dict(), "by_regime": p.by_regime}} for p in result.portfolios],
        trades=trades, fills=fill_dicts(result.fills, result.symbols), equity=equity,
    )
    if hasattr(warehouse, "migrate"):
        warehouse.migrate()
    from ..warehouse.connection import transaction
    from ..warehouse.risk import write_decisions
    from ..warehouse.signals import write_signal_decisions

    with warehouse.connect() as con:
        with transaction(con):  # the run, its audit and its breaker history land together or not at all
            write_backtest(con, record)
            if result.risk_rows is not None and result.risk_rows.height and req.risk is not None \
                    and req.risk.audit:
                write_decisions(con, result.risk_rows)
            if result.signal_rows is not None and result.signal_rows.height:
                write_signal_decisions(con, result.signal_rows)
            if result.breaker_events or result.breaker_states:
                write_breaker_history(con, result.run_id, result.breaker_events, result.breaker_states)
        con.execute("CHECKPOINT")

