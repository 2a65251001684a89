"""Pure-Python reference model of the engine's rules: slow, obvious, for differential tests only.

It re-states docs/simulation.md with objects (``Order``, ``Account``) instead of flat arrays and
performs money arithmetic in the same order as the kernels, so fills, events and equity compare
exactly. It shares only constants and ``MarketModel`` with the kernels, never their code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from trading_core.engine import enums as E
from trading_core.engine.model import MarketModel

OT, TIF, SM, RR, EK, FR = E.OrderType, E.TimeInForce, E.SizeMode, E.RejectReason, E.EventKind, E.FillReason
DAY_MS = 86_400_000


@dataclass
class Order:
    oid: int
    sym: int
    type: int
    side: int
    tif: int
    size_mode: int
    qty: float
    limit: float
    stop: float
    trail: float
    trail_pct: float
    size: float
    active_bar: int
    expire_bars: int
    expire_ts: int
    parent: int = -1
    oco: int = -1
    status: int = E.OrderStatus.PENDING
    filled: float = 0.0
    ref: float = 0.0
    first: bool = True
    triggered: bool = False
    signal: bool = False
    expire_bar: int = -1


@dataclass
class Account:
    cash: float
    pos: list[float]
    avg: list[float]
    last: list[float]
    used: list[float]
    slots: list[Order | None]
    draws: np.ndarray
    cursor: int = 0
    next_id: int = 1
    rate_win: int = -1
    rate_cnt: int = 0
    day: int = -1
    tier: int = 0
    day_vol: dict[int, float] = field(default_factory=dict)
    sig_target: int = 0
    fees: float = 0.0
    borrow: float = 0.0

    def draw(self) -> float:
        u = float(self.draws[self.cursor % len(self.draws)])
        self.cursor += 1
        return u

    def equity(self) -> float:
        eq = self.cash
        for q, c in zip(self.pos, self.last, strict=True):
            eq = eq + q * c
        return eq

    def n_open(self) -> int:
        return sum(o is not None for o in self.slots)

    def signal_pending(self) -> int:
        return sum(o is not None and o.signal for o in self.slots)


class ReferencePortfolio:
    """One portfolio stepped bar by bar; ``fills``/``events`` are lists of plain tuples."""

    def __init__(self, p: int, n_symbols: int, model: MarketModel, cash: float, draws: np.ndarray, bar_ms: float,
                 allow_short: bool | None = None) -> None:
        self.p, self.m = p, model
        self.allow_short = model.allow_short if allow_short is None else allow_short
        self.borrow = model.borrow_rate_annual * bar_ms / (365.0 * 86_400_000.0)
        scale = 1.0 / bar_ms if model.latency_unit == "ms" else 1.0
        self.lat_a, self.lat_b = model.latency_a * scale, model.latency_b * scale
        S = n_symbols
        self.a = Account(float(cash), [0.0] * S, [0.0] * S, [0.0] * S, [0.0] * S, [None] * model.max_open_orders,
                         draws)
        self.fills: list[tuple] = []
        self.events: list[tuple] = []
        self.equity: list[float] = []
        self.cash: list[float] = []

    # ---- helpers ------------------------------------------------------------------------------
    def _lot(self, q: float) -> float:
        lot = self.m.lot_size
        return math.floor(q / lot + 1e-9) * lot if lot > 0 else q

    @staticmethod
    def _off_grid(x: float, step: float) -> bool:
        if step <= 0:
            return False
        r = x / step
        return abs(r - math.floor(r + 0.5)) > 1e-9 * max(1.0, abs(r))

    def _event(self, sym, bar, ts, oid, kind, reason=0):
        self.events.append((self.p, sym, bar, ts, oid, kind, reason))

    def _fee_rate(self, maker: bool) -> float:
        t = self.m.fee_tiers[self.a.tier]
        return (t.maker_bps if maker else t.taker_bps) * 1e-4

    def _taker_price(self, base, side, q, vol, sig):
        m = self.m
        frac = (m.spread_bps * 0.5 + m.slippage_bps) * 1e-4
        if m.impact_coef > 0 and vol > 0 and q > 0:
            frac = frac + m.impact_coef * sig * math.sqrt(q / vol)
        return base * (1.0 + frac) if side == E.Side.BUY else base * (1.0 - frac)

    def _free(self, o: Order) -> None:
        self.a.slots[self.a.slots.index(o)] = None

    def _children(self, parent: Order, qty: float, bar, ts):
        for o in list(self.a.slots):
            if o is not None and o.status == E.OrderStatus.WAIT_PARENT and o.parent == parent.oid:
                if qty > 0:
                    o.status, o.active_bar, o.qty = E.OrderStatus.PENDING, bar + 1, qty
                else:
                    self._event(o.sym, bar, ts, o.oid, EK.CANCELED)
                    self._free(o)

    def _retire(self, o: Order, kind, reason, bar, ts):
        self._event(o.sym, bar, ts, o.oid, kind, reason)
        self._children(o, o.filled, bar, ts)
        self._free(o)

    def _find(self, oid: int) -> Order | None:
        for o in self.a.slots:
            if o is not None and o.oid == oid:
                return o
        return None

    # ---- submission ---------------------------------------------------------------------------
    def _validate(self, bar, typ, sm, qty, lim, stop, trail, pct, sl, tp, ref_px) -> int:
        m, a = self.m, self.a
        if sm == SM.QTY and not qty > 0:
            return RR.INVALID
        if typ in (OT.LIMIT, OT.STOP_LIMIT) and not lim > 0:
            return RR.INVALID
        if typ in (OT.STOP, OT.STOP_LIMIT, OT.TAKE_PROFIT) and not stop > 0:
            return RR.INVALID
        if typ == OT.TRAILING_STOP and not trail > 0:
            return RR.INVALID
        if typ == OT.TRAILING_STOP_PCT and not 0 < pct < 1:
            return RR.INVALID
        if not 0 <= typ <= OT.MARKET_ON_CLOSE:
            return RR.INVALID
        if m.max_orders_per_interval > 0:
            win = bar // m.rate_interval_bars
            if win != a.rate_win:
                a.rate_win, a.rate_cnt = win, 0
            if a.rate_cnt >= m.max_orders_per_interval:
                return RR.RATE_LIMIT
            a.rate_cnt += 1
        if any(self._off_grid(x, m.tick_size) for x in (lim, stop, sl, tp)):
            return RR.TICK_SIZE
        if sm == SM.QTY:
            if self._off_grid(qty, m.lot_size):
                return RR.LOT_SIZE
            if m.min_notional > 0:
                px = lim if lim > 0 else (stop if stop > 0 else ref_px)
                if qty * px < m.min_notional:
                    return RR.MIN_NOTIONAL
        if m.reject_prob > 0 and a.draw() < m.reject_prob:
            return RR.RANDOM
        return RR.NONE

    def _latency(self) -> int:
        k = self.m.latency_kind
        if k == "none":
            return 0
        if k == "fixed":
            lat = self.lat_a
        elif k == "uniform":
            lat = self.lat_a + self.a.draw() * (self.lat_b - self.lat_a)
        else:
            lat = self.lat_a - self.lat_b * math.log(1.0 - self.a.draw())
        return int(math.floor(lat))

    def submit(self, arrival, bar, ts, oid, sym, typ, side, tif, sm, qty, lim=0.0, stop=0.0, trail=0.0, pct=0.0,
               exp_bars=0, exp_ts=0, sl=0.0, tp=0.0, size=0.0, signal=False, ref_px=None) -> Order | None:
        a = self.a
        n_child = int(sl > 0) + int(tp > 0)
        if oid <= 0:
            oid = a.next_id
        a.next_id = max(a.next_id, oid + 1 + n_child)
        ref = a.last[sym] if ref_px is None else ref_px
        reason = self._validate(bar, typ, sm, qty, lim, stop, trail, pct, sl, tp, ref)
        free = [i for i, o in enumerate(a.slots) if o is None]
        need = 1 + (sl > 0) + (tp > 0)
        if reason == RR.NONE and len(free) < need:
            reason = RR.BOOK_FULL
        if reason != RR.NONE:
            self._event(sym, bar, ts, oid, EK.REJECTED, reason)
            return None
        lat = self._latency()
        sl_id = oid + 1 if sl > 0 else -1
        tp_id = oid + n_child if tp > 0 else -1
        o = Order(oid, sym, typ, side, tif, sm, qty if sm == SM.QTY else 0.0, lim, stop, trail, pct, size,
                  arrival + lat, exp_bars, exp_ts, signal=signal)
        a.slots[free[0]] = o
        self._event(sym, bar, ts, oid, EK.ACCEPTED)
        child_side = E.Side.SELL if side == E.Side.BUY else E.Side.BUY
        j = 1
        for cid, ctype, lvl, sib in ((sl_id, OT.STOP, sl, tp_id), (tp_id, OT.TAKE_PROFIT, tp, sl_id)):
            if cid >= 0:
                a.slots[free[j]] = Order(cid, sym, ctype, child_side, TIF.GTC, SM.QTY, 0.0, 0.0, lvl, 0.0, 0.0, 0.0,
                                         -1, 0, 0, parent=oid, oco=sib, status=E.OrderStatus.WAIT_PARENT)
                j += 1
        return o

    # ---- fills --------------------------------------------------------------------------------
    def _size(self, o: Order, px_est: float, maker: bool) -> float:
        a, pos = self.a, self.a.pos[o.sym]
        fee = self._fee_rate(maker)
        if o.size_mode == SM.CLOSE:
            if o.side == E.Side.SELL and pos > 0:
                return pos
            if o.side == E.Side.BUY and pos < 0:
                return -pos
            return 0.0
        q = 0.0
        if o.size_mode == SM.ALL_IN:
            if o.side == E.Side.BUY:
                q = a.cash / (px_est * (1.0 + fee))
            elif pos > 0:
                q = pos
            else:
                eq = a.equity()
                if eq > 0:
                    q = eq / (px_est * (1.0 + fee))
        elif o.size_mode == SM.RISK:
            eq = a.equity()
            if eq > 0:
                q = o.size * eq / (px_est * self.m.risk_stop_pct)
        return max(self._lot(q), 0.0)

    def _apply(self, s, side, q, px, fee):
        a = self.a
        notional = q * px
        cash = a.cash - notional if side == E.Side.BUY else a.cash + notional
        dq = q if side == E.Side.BUY else -q
        a.cash = cash - fee
        a.fees = a.fees + fee
        pos, avg = a.pos[s], a.avg[s]
        new = pos + dq
        if pos == 0.0 or (pos > 0) == (dq > 0):
            a.avg[s] = (avg * abs(pos) + notional) / abs(new)
        elif new == 0.0:
            a.avg[s] = 0.0
        elif (new > 0) != (pos > 0):
            a.avg[s] = px
        a.pos[s] = new
        return notional

    def fill(self, o: Order, base, maker, reason, bar, ts, bar_data, sig) -> float:
        m, a, s = self.m, self.a, o.sym
        vol = bar_data[s][4]
        sigma = sig[s] if m.impact_coef > 0 else 0.0
        if o.size_mode != SM.QTY and o.qty <= 0.0:
            px_est = base if maker else self._taker_price(base, o.side, 0.0, vol, sigma)
            q0 = self._size(o, px_est, maker)
            rr = RR.NONE
            if q0 <= 0:
                rr = RR.INVALID if o.size_mode == SM.CLOSE else RR.NO_CASH
            elif m.min_notional > 0 and q0 * px_est < m.min_notional:
                rr = RR.MIN_NOTIONAL
            if rr != RR.NONE:
                self._retire(o, EK.REJECTED, rr, bar, ts)
                return 0.0
            o.qty = q0
        want = o.qty - o.filled
        q = want
        if m.participation_rate > 0:
            avail = m.participation_rate * vol - a.used[s]
            if avail < q:
                q = self._lot(max(avail, 0.0))
        if q <= 0:
            if o.tif == TIF.FOK:
                self._retire(o, EK.REJECTED, RR.FOK_UNFILLABLE, bar, ts)
            return 0.0
        px = base
        if not maker:
            px = self._taker_price(base, o.side, q, vol, sigma)
            if o.type in (OT.LIMIT, OT.STOP_LIMIT):
                px = min(px, o.limit) if o.side == E.Side.BUY else max(px, o.limit)
        fee_rate = self._fee_rate(maker)
        capped = RR.NONE
        pos = a.pos[s]
        if o.side == E.Side.BUY:
            maxq = a.cash / (px * (1.0 + fee_rate))
            if q > maxq:
                q, capped = self._lot(max(maxq, 0.0)), RR.NO_CASH
        else:
            long_part = max(pos, 0.0)
            if q > long_part:
                if not self.allow_short:
                    q, capped = long_part, RR.SHORT_NOT_ALLOWED
                else:
                    room = a.equity() / (px * m.short_margin) - max(-pos, 0.0)
                    allowed = long_part + max(room, 0.0)
                    if q > allowed:
                        q, capped = self._lot(allowed), RR.NO_MARGIN
        if o.tif == TIF.FOK and q < want:
            self._retire(o, EK.REJECTED, RR.FOK_UNFILLABLE, bar, ts)
            return 0.0
        if q <= 0:
            self._retire(o, EK.REJECTED, capped, bar, ts)
            return 0.0
        notional = q * px
        fee = notional * fee_rate
        self._apply(s, o.side, q, px, fee)
        self.fills.append((self.p, s, bar, ts, o.oid, o.side, q, px, fee, abs(px - base) * q,
                           E.Role.MAKER if maker else E.Role.TAKER, reason, o.type))
        if len(self.m.fee_tiers) > 1:
            day = ts // DAY_MS
            a.day_vol[day] = a.day_vol.get(day, 0.0) + notional
        a.used[s] = a.used[s] + q
        o.filled = o.filled + q
        sib = self._find(o.oco) if o.oco >= 0 else None
        if o.qty - o.filled <= 1e-9 * o.qty:
            self._event(s, bar, ts, o.oid, EK.FILLED)
            self._children(o, o.filled, bar, ts)
            self._free(o)
            if sib is not None:
                self._retire(sib, EK.CANCELED, 0, bar, ts)
        else:
            if sib is not None:
                sib.qty = sib.qty - q
            if capped != RR.NONE:
                self._retire(o, EK.CANCELED, capped, bar, ts)
        return q

    # ---- the bar ------------------------------------------------------------------------------
    def _trail_level(self, o: Order, ref: float) -> float:
        sell = o.side == E.Side.SELL
        if o.type == OT.TRAILING_STOP:
            return ref - o.trail if sell else ref + o.trail
        return ref * (1.0 - o.trail_pct) if sell else ref * (1.0 + o.trail_pct)

    def _roll_day(self, ts):
        a = self.a
        day = ts // DAY_MS
        if day == a.day:
            return
        a.day = day
        vol = 0.0
        for d in sorted(a.day_vol, key=lambda d: d % E.N_DAYS):  # kernel bucket order
            if day - E.N_DAYS <= d < day:
                vol = vol + a.day_vol[d]
        a.tier = max(j for j, t in enumerate(self.m.fee_tiers) if vol >= t.min_volume_30d)

    def step(self, bar, ts, bar_data, sig, instructions=(), signal=None):
        """bar_data: per symbol (open, high, low, close, volume); signal: (entry, exit) or None.

        A symbol whose close is NaN has no bar here (its market is closed): none of its orders
        activates, fills or triggers, its signal is ignored, and it is marked at its last close."""
        m, a = self.m, self.a
        if len(m.fee_tiers) > 1:
            self._roll_day(ts)
        a.used = [0.0] * len(a.used)
        for ins in instructions:
            self._instruction(ins, bar, ts)
        # expiry, activation
        for o in list(a.slots):
            if o is None:
                continue
            if o.status == E.OrderStatus.ACTIVE and o.tif == TIF.GTD:
                if (o.expire_bar >= 0 and bar >= o.expire_bar) or (o.expire_ts > 0 and ts >= o.expire_ts):
                    self._retire(o, EK.EXPIRED, 0, bar, ts)
            elif o.status == E.OrderStatus.PENDING and o.active_bar <= bar:
                if o.tif == TIF.GTD and o.expire_ts > 0 and ts >= o.expire_ts:
                    self._retire(o, EK.EXPIRED, 0, bar, ts)
                    continue
                if math.isnan(bar_data[o.sym][3]):
                    continue  # its market is closed: live from the symbol's next real bar
                o.status, o.first = E.OrderStatus.ACTIVE, True
                o.expire_bar = bar + o.expire_bars if o.expire_bars > 0 else -1
                if o.type in (OT.TRAILING_STOP, OT.TRAILING_STOP_PCT):
                    o.ref = bar_data[o.sym][0]
                    o.stop = self._trail_level(o, o.ref)
        for pt in range(4):
            if a.n_open() == 0:
                break
            for k in range(len(a.slots)):
                o = a.slots[k]
                if o is not None and o.status == E.OrderStatus.ACTIVE and not math.isnan(bar_data[o.sym][3]):
                    self._match(o, pt, bar, ts, bar_data, sig)
        if signal is not None and signal[0] != signal[1] and not math.isnan(bar_data[self.sig_sym][3]):
            self._signal(signal, bar, ts, bar_data, sig)
        cash, eq = a.cash, 0.0
        for s, (_o, _h, _l, c, _v) in enumerate(bar_data):
            if math.isnan(c):
                c = a.last[s]  # no bar (closed market): valued at the last traded close
            if self.borrow > 0 and a.pos[s] < 0:
                cost = -a.pos[s] * c * self.borrow
                cash = cash - cost
                a.borrow = a.borrow + cost
            a.last[s] = c
            eq = eq + a.pos[s] * c
        a.cash = cash
        self.equity.append(cash + eq)
        self.cash.append(cash)

    def _match(self, o: Order, pt, bar, ts, bar_data, sig):
        op, hi, lo, cl, _v = bar_data[o.sym]
        up_bar = cl >= op
        path = (op, lo, hi, cl) if up_bar else (op, hi, lo, cl)  # O->L->H->C up, O->H->L->C down
        price = path[pt]
        buy = o.side == E.Side.BUY
        first = o.first
        typ0 = o.type
        stopish = o.type in (OT.STOP, OT.TAKE_PROFIT, OT.TRAILING_STOP, OT.TRAILING_STOP_PCT)
        if o.type == OT.MARKET or (stopish and o.triggered):
            if pt == 0:
                self.fill(o, price, False, FR.OPEN, bar, ts, bar_data, sig)
        elif o.type == OT.MARKET_ON_CLOSE:
            if pt == 3:
                self.fill(o, price, False, FR.CLOSE, bar, ts, bar_data, sig)
                if self._find(o.oid) is o:
                    o.type = OT.MARKET
        elif o.type == OT.LIMIT or (o.type == OT.STOP_LIMIT and o.triggered):
            half = 0.5 * self.m.tick_size
            touch = price <= o.limit if buy else price >= o.limit
            through = price < o.limit - half if buy else price > o.limit + half
            if touch and (through or self.m.touch_fill_prob >= 1.0 or self.a.draw() < self.m.touch_fill_prob):
                if pt == 0:
                    self.fill(o, price, not first, FR.OPEN if first else FR.GAP, bar, ts, bar_data, sig)
                else:
                    self.fill(o, o.limit, True, FR.INTRABAR, bar, ts, bar_data, sig)
        else:
            up = (not buy) if o.type == OT.TAKE_PROFIT else buy
            if (price >= o.stop) if up else (price <= o.stop):
                base = price if pt == 0 else o.stop
                reason = FR.GAP if pt == 0 else FR.INTRABAR
                o.triggered = True
                if o.type == OT.STOP_LIMIT:
                    self._event(o.sym, bar, ts, o.oid, EK.TRIGGERED)
                    if (buy and base <= o.limit) or (not buy and base >= o.limit):
                        self.fill(o, base, False, reason, bar, ts, bar_data, sig)
                else:
                    self.fill(o, base, False, reason, bar, ts, bar_data, sig)
            elif o.type in (OT.TRAILING_STOP, OT.TRAILING_STOP_PCT) and \
                    ((not buy and price > o.ref) or (buy and price < o.ref)):
                o.ref = price
                o.stop = self._trail_level(o, price)
        moc = typ0 == OT.MARKET_ON_CLOSE
        if self._find(o.oid) is o and o.status == E.OrderStatus.ACTIVE and first and \
                ((pt == 0 and not moc) or (moc and pt == 3)):
            o.first = False
            if o.tif == TIF.IOC:
                self._retire(o, EK.CANCELED, 0, bar, ts)
            elif o.tif == TIF.FOK:
                self._retire(o, EK.REJECTED, RR.FOK_UNFILLABLE, bar, ts)

    def _instruction(self, r, bar, ts):
        act, oid, sym = int(r["action"]), int(r["order_id"]), int(r["symbol"])
        if act == E.Action.NEW:
            self.submit(bar, bar, ts, oid, sym, int(r["type"]), int(r["side"]), int(r["tif"]), int(r["size_mode"]),
                        float(r["qty"]), float(r["limit_price"]), float(r["stop_price"]), float(r["trail_amount"]),
                        float(r["trail_pct"]), int(r["expire_bars"]), int(r["expire_ts"]), float(r["sl_price"]),
                        float(r["tp_price"]), float(r["qty"]))
            return
        o = self._find(oid)
        if o is None:
            self._event(sym, bar, ts, oid, EK.REJECTED, RR.UNKNOWN_ORDER)
        elif act == E.Action.CANCEL:
            self._retire(o, EK.CANCELED, 0, bar, ts)
        else:
            nq, nl, ns = float(r["qty"]), float(r["limit_price"]), float(r["stop_price"])
            bad = (nq > 0 and (nq <= o.filled or self._off_grid(nq, self.m.lot_size))) or \
                self._off_grid(nl, self.m.tick_size) or self._off_grid(ns, self.m.tick_size)
            if bad:
                self._event(o.sym, bar, ts, oid, EK.REJECTED, RR.INVALID)
                return
            if nq > 0:
                o.qty = nq
            if nl > 0:
                o.limit = nl
            if ns > 0:
                o.stop = ns
            self._event(o.sym, bar, ts, oid, EK.REPLACED)

    # ---- signals ------------------------------------------------------------------------------
    def configure_signals(self, symbol: int, size_mode: int, size: float) -> None:
        self.sig_sym, self.sig_mode, self.sig_size = symbol, size_mode, size

    def _signal(self, signal, bar, ts, bar_data, sig):
        a, s = self.a, self.sig_sym
        entry = bool(signal[0])
        pos = a.pos[s]
        state = a.sig_target if a.signal_pending() > 0 else 1 if pos > 0 else -1 if pos < 0 else 0
        if entry:
            if state == 1:
                return
            tgt, side, close_first = 1, E.Side.BUY, state == -1
        else:
            if state == -1 or (state == 0 and not self.allow_short):
                return
            tgt, side, close_first = (-1 if self.allow_short else 0), E.Side.SELL, state == 1
        a.sig_target = tgt
        arrival = bar + (1 if self.m.fill_at == "next_open" else 0)
        c = bar_data[s][3]
        if close_first:
            self._signal_order(arrival, SM.CLOSE, 0.0, side, s, c, bar, ts, bar_data, sig)
        if tgt != 0:
            self._signal_order(arrival, self.sig_mode, self.sig_size, side, s, c, bar, ts, bar_data, sig)

    def _signal_order(self, arrival, sm, size, side, s, c, bar, ts, bar_data, sig):
        qty = size if sm == SM.QTY else 0.0
        o = self.submit(arrival, bar, ts, 0, s, OT.MARKET, side, TIF.GTC, sm, qty, size=size, signal=True, ref_px=c)
        if o is not None and o.active_bar <= bar:
            o.status, o.first = E.OrderStatus.ACTIVE, False
            self.fill(o, c, False, FR.CLOSE, bar, ts, bar_data, sig)


def reference_run(ts, bars, model: MarketModel | Sequence[MarketModel], *, n_portfolios: int, cash: float = 100_000.0, seed: int = 0,
                  orders: np.ndarray | None = None, entries=None, exits=None, symbol_of=None, size_mode: int = 1,
                  size: float = 1.0, allow_short: bool | None = None, sigma: np.ndarray | None = None):
    """Run the reference over bars (T, S, 5); returns (fills list, events list, equity (T,P), cash (T,P)).

    ``model`` is one market model for every portfolio or a sequence of one per portfolio."""
    T, S = bars.shape[0], bars.shape[1]
    bar_ms = float(np.median(np.diff(ts))) if T > 1 else 60_000.0
    models = [model] * n_portfolios if isinstance(model, MarketModel) else list(model)
    draws = (np.random.default_rng(seed).random((n_portfolios, models[0].rng_pool))
             if any(m.uses_rng for m in models) else np.zeros((n_portfolios, 1)))
    ports = [ReferencePortfolio(p, S, models[p], cash, draws[p], bar_ms, allow_short) for p in range(n_portfolios)]
    if entries is not None:
        for p, pr in enumerate(ports):
            pr.configure_signals(int(symbol_of[p]), size_mode, size)
    by_port: dict[int, list] = {p: [] for p in range(n_portfolios)}
    if orders is not None:
        for r in sorted(orders, key=lambda r: (int(r["portfolio"]), int(r["bar"]))):
            by_port[int(r["portfolio"])].append(r)
    for p, pr in enumerate(ports):
        queue = by_port[p]
        j = 0
        for t in range(T):
            ins = []
            while j < len(queue) and int(queue[j]["bar"]) <= t:
                ins.append(queue[j])
                j += 1
            sg = (bool(entries[t, p]), bool(exits[t, p])) if entries is not None else None
            srow = sigma[t] if sigma is not None else None
            pr.step(t, int(ts[t]), [tuple(float(x) for x in bars[t, s]) for s in range(S)], srow, ins, sg)
    fills = [f for pr in ports for f in pr.fills]
    events = [e for pr in ports for e in pr.events]
    equity = np.array([pr.equity for pr in ports]).T
    cash_ = np.array([pr.cash for pr in ports]).T
    return fills, events, equity, cash_
