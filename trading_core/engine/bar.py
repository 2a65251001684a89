"""Bar processing: one bar of one portfolio (queue, expiry and activation, the intra-bar path,
signals, mark to close) and the time-major loop over a block of portfolios.

Shared by the CPU kernels (``cpu``), the streaming step (``stream``) and the CUDA twin (``cuda``
recompiles these functions' source as device functions), so every device runs the same rules.
"""

from __future__ import annotations

from numba import njit

from trading_core.engine import enums as E
from trading_core.engine.packs import BARS, BOOK_T, F0, F2, F3, I0, I2, I3, MARKET_T, MP
from trading_core.engine.rules import (
    close_slot_nb,
    draw_nb,
    event_nb,
    fill_slot_nb,
    find_slot_nb,
    off_grid_nb,
    roll_day_nb,
    rule,
    signal_fill_nb,
    submit_nb,
)

# ############# Bar processing ############# #
# A symbol with no bar at a step (its market is closed there: a union calendar of 24/7 and session
# venues) has NaN prices (``Bars``: NaN = no bar). Nothing of that symbol activates, fills, triggers
# or signals on such a bar; it is marked at its last traded close. On data without NaN every check
# below is false and the arithmetic is unchanged.


@rule(BARS, I0, I0, inline=True, host=False)
def closed_nb(bars, t_row, s):
    """True when symbol ``s`` has no bar at row ``t_row`` (NaN close)."""
    c = bars[E.B_CLOSE][t_row, s]
    return c != c



@rule(I0, I0, F0, I3, F3, host=False)
def trail_level_nb(p, k, ref, oi, of):
    sell = oi[p, k, E.OI_SIDE] == E.Side.SELL
    if oi[p, k, E.OI_TYPE] == E.OrderType.TRAILING_STOP:
        if sell:
            return ref - of[p, k, E.OF_TRAIL]
        return ref + of[p, k, E.OF_TRAIL]
    if sell:
        return ref * (1.0 - of[p, k, E.OF_TRAIL_PCT])
    return ref * (1.0 + of[p, k, E.OF_TRAIL_PCT])


@rule(I0, I0, I0, I0, BARS, I3, F3, I2, I3, host=False)
def start_bar_nb(p, t_row, bar, ts, bars, oi, of, ai, ei):
    """Expire GTD orders, then activate orders whose latency has elapsed."""
    for k in range(oi.shape[1]):
        st = oi[p, k, E.OI_STATUS]
        if st == E.OrderStatus.ACTIVE and oi[p, k, E.OI_TIF] == E.TimeInForce.GTD:
            eb = oi[p, k, E.OI_EXP_BAR]
            et = oi[p, k, E.OI_EXP_TS]
            if (eb >= 0 and bar >= eb) or (et > 0 and ts >= et):
                close_slot_nb(p, k, E.EventKind.EXPIRED, 0, bar, ts, oi, of, ai, ei)
        elif st == E.OrderStatus.PENDING and oi[p, k, E.OI_ACTIVE] <= bar:
            et = oi[p, k, E.OI_EXP_TS]
            if oi[p, k, E.OI_TIF] == E.TimeInForce.GTD and et > 0 and ts >= et:
                close_slot_nb(p, k, E.EventKind.EXPIRED, 0, bar, ts, oi, of, ai, ei)
                continue
            if closed_nb(bars, t_row, oi[p, k, E.OI_SYM]):
                continue  # its market is closed: the order becomes live on the symbol's next real bar
            oi[p, k, E.OI_STATUS] = E.OrderStatus.ACTIVE
            oi[p, k, E.OI_FIRST] = 1
            nb_ = oi[p, k, E.OI_EXP_BAR]
            oi[p, k, E.OI_EXP_BAR] = bar + nb_ if nb_ > 0 else -1
            typ = oi[p, k, E.OI_TYPE]
            if typ == E.OrderType.TRAILING_STOP or typ == E.OrderType.TRAILING_STOP_PCT:
                ref = bars[E.B_OPEN][t_row, oi[p, k, E.OI_SYM]]
                of[p, k, E.OF_REF] = ref
                of[p, k, E.OF_STOP] = trail_level_nb(p, k, ref, oi, of)


@rule(I0, I0, I0, I0, I0, MARKET_T, BOOK_T, host=False)
def match_point_nb(p, pt, t_row, bar, ts, m, b):
    """Match every active order against path point ``pt`` (0 open, 1-2 extremes, 3 close)."""
    bars, mp, rng = m.bars, m.mp, m.rng
    ai, oi, of, ei = b.ai, b.oi, b.of, b.ei
    half_tick = 0.5 * mp[p, E.MP_TICK]
    for k in range(oi.shape[1]):
        if oi[p, k, E.OI_STATUS] != E.OrderStatus.ACTIVE:
            continue
        s = oi[p, k, E.OI_SYM]
        o = bars[E.B_OPEN][t_row, s]
        c = bars[E.B_CLOSE][t_row, s]
        if c != c:
            continue  # no bar of this symbol here (closed market): nothing of it fills or triggers
        if pt == 0:
            price = o
        elif pt == 3:
            price = c
        elif (c >= o) == (pt == 1):
            price = bars[E.B_LOW][t_row, s]
        else:
            price = bars[E.B_HIGH][t_row, s]
        typ = oi[p, k, E.OI_TYPE]
        side = oi[p, k, E.OI_SIDE]
        buy = side == E.Side.BUY
        is_stop_family = (typ == E.OrderType.STOP or typ == E.OrderType.TAKE_PROFIT
                          or typ == E.OrderType.TRAILING_STOP or typ == E.OrderType.TRAILING_STOP_PCT)
        first = oi[p, k, E.OI_FIRST] == 1
        if typ == E.OrderType.MARKET or (is_stop_family and oi[p, k, E.OI_TRIG] == 1):
            if pt == 0:
                fill_slot_nb(p, k, price, E.Role.TAKER, E.FillReason.OPEN, t_row, bar, ts, m, b)
        elif typ == E.OrderType.MARKET_ON_CLOSE:
            if pt == 3:
                fill_slot_nb(p, k, price, E.Role.TAKER, E.FillReason.CLOSE, t_row, bar, ts, m, b)
                if oi[p, k, E.OI_STATUS] == E.OrderStatus.ACTIVE:
                    oi[p, k, E.OI_TYPE] = E.OrderType.MARKET  # remainder goes at the next open
        elif typ == E.OrderType.LIMIT or (typ == E.OrderType.STOP_LIMIT and oi[p, k, E.OI_TRIG] == 1):
            lim = of[p, k, E.OF_LIMIT]
            if buy:
                touch = price <= lim
                through = price < lim - half_tick
            else:
                touch = price >= lim
                through = price > lim + half_tick
            if touch:
                ok = through or mp[p, E.MP_TOUCH] >= 1.0
                if not ok:
                    ok = draw_nb(p, rng, ai) < mp[p, E.MP_TOUCH]
                if ok:
                    if pt == 0:
                        role = E.Role.TAKER if first else E.Role.MAKER
                        reason = E.FillReason.OPEN if first else E.FillReason.GAP
                        fill_slot_nb(p, k, price, role, reason, t_row, bar, ts, m, b)
                    else:
                        fill_slot_nb(p, k, lim, E.Role.MAKER, E.FillReason.INTRABAR, t_row, bar, ts, m, b)
        else:
            lvl = of[p, k, E.OF_STOP]
            up = buy
            if typ == E.OrderType.TAKE_PROFIT:
                up = not buy
            trig = price >= lvl if up else price <= lvl
            if trig:
                base = price if pt == 0 else lvl
                reason = E.FillReason.GAP if pt == 0 else E.FillReason.INTRABAR
                oi[p, k, E.OI_TRIG] = 1
                if typ == E.OrderType.STOP_LIMIT:
                    event_nb(p, ai, ei, s, bar, ts, oi[p, k, E.OI_ID], E.EventKind.TRIGGERED, 0)
                    lim = of[p, k, E.OF_LIMIT]
                    if (buy and base <= lim) or ((not buy) and base >= lim):
                        fill_slot_nb(p, k, base, E.Role.TAKER, reason, t_row, bar, ts, m, b)
                else:
                    fill_slot_nb(p, k, base, E.Role.TAKER, reason, t_row, bar, ts, m, b)
            elif typ == E.OrderType.TRAILING_STOP or typ == E.OrderType.TRAILING_STOP_PCT:
                ref = of[p, k, E.OF_REF]
                if (not buy and price > ref) or (buy and price < ref):
                    of[p, k, E.OF_REF] = price
                    of[p, k, E.OF_STOP] = trail_level_nb(p, k, price, oi, of)
        # immediate-or-cancel / fill-or-kill get only their first matching opportunity
        moc = typ == E.OrderType.MARKET_ON_CLOSE
        if oi[p, k, E.OI_STATUS] == E.OrderStatus.ACTIVE and first and ((pt == 0 and not moc) or (moc and pt == 3)):
            oi[p, k, E.OI_FIRST] = 0
            tif = oi[p, k, E.OI_TIF]
            if tif == E.TimeInForce.IOC:
                close_slot_nb(p, k, E.EventKind.CANCELED, 0, bar, ts, oi, of, ai, ei)
            elif tif == E.TimeInForce.FOK:
                close_slot_nb(p, k, E.EventKind.REJECTED, E.RejectReason.FOK_UNFILLABLE, bar, ts, oi, of, ai, ei)


@rule(I0, I0, I0, I0, MARKET_T, BOOK_T, host=False)
def process_queue_nb(p, t_row, bar, ts, m, b):
    """Apply queued instructions (NEW / CANCEL / REPLACE) that arrive before this bar's open."""
    oq_i, oq_f, oq_end, mp = m.oq_i, m.oq_f, m.oq_end, m.mp
    ai, pf, oi, of, ei = b.ai, b.pf, b.oi, b.of, b.ei
    j = ai[p, E.AI_OQ]
    end = oq_end[p]
    while j < end and oq_i[j, E.QI_BAR] <= bar:
        act = oq_i[j, E.QI_ACTION]
        oid = oq_i[j, E.QI_ID]
        sym = oq_i[j, E.QI_SYM]
        if act == E.Action.NEW:
            submit_nb(p, bar, bar, ts, oid, sym, oq_i[j, E.QI_TYPE], oq_i[j, E.QI_SIDE], oq_i[j, E.QI_TIF],
                      oq_i[j, E.QI_SIZEMODE], oq_f[j, E.QF_QTY], oq_f[j, E.QF_LIMIT], oq_f[j, E.QF_STOP],
                      oq_f[j, E.QF_TRAIL], oq_f[j, E.QF_TRAIL_PCT], oq_i[j, E.QI_EXP_BARS],
                      oq_i[j, E.QI_EXP_TS], oq_f[j, E.QF_SL], oq_f[j, E.QF_TP], oq_f[j, E.QF_QTY], 0,
                      pf[p, sym, E.PF_LAST], m, b)
        else:
            k = find_slot_nb(p, oid, oi)
            if k < 0:
                event_nb(p, ai, ei, sym, bar, ts, oid, E.EventKind.REJECTED, E.RejectReason.UNKNOWN_ORDER)
            elif act == E.Action.CANCEL:
                close_slot_nb(p, k, E.EventKind.CANCELED, 0, bar, ts, oi, of, ai, ei)
            else:
                nq = oq_f[j, E.QF_QTY]
                nl = oq_f[j, E.QF_LIMIT]
                ns = oq_f[j, E.QF_STOP]
                bad = (nq > 0.0 and (nq <= of[p, k, E.OF_FILLED] or off_grid_nb(nq, mp[p, E.MP_LOT]))) \
                    or off_grid_nb(nl, mp[p, E.MP_TICK]) or off_grid_nb(ns, mp[p, E.MP_TICK])
                if bad:
                    event_nb(p, ai, ei, oi[p, k, E.OI_SYM], bar, ts, oid, E.EventKind.REJECTED,
                             E.RejectReason.INVALID)
                else:
                    if nq > 0.0:
                        of[p, k, E.OF_QTY] = nq
                    if nl > 0.0:
                        of[p, k, E.OF_LIMIT] = nl
                    if ns > 0.0:
                        of[p, k, E.OF_STOP] = ns
                    event_nb(p, ai, ei, oi[p, k, E.OI_SYM], bar, ts, oid, E.EventKind.REPLACED, 0)
        j += 1
    ai[p, E.AI_OQ] = j


@rule(I0, I0, I0, F0, I0, I0, F0, I0, I0, I0, MARKET_T, BOOK_T, inline=True, host=False)
def _signal_order_nb(p, arrival, sm, size, side, s, c, t_row, bar, ts, m, b):
    """Place one signal order and, when it is active at once (fill at close, no latency), fill it at the
    close; on an empty book without a participation cap that is the fused ``signal_fill_nb``."""
    mp, mi, ai, oi = m.mp, m.mi, b.ai, b.oi
    if (arrival == bar and mi[E.MI_LAT_KIND] == E.LAT_NONE and mp[p, E.MP_PART] == 0.0 and ai[p, E.AI_NOPEN] == 0
            and oi.shape[1] > 0):
        signal_fill_nb(p, sm, size, side, s, c, t_row, bar, ts, m, b)
        return
    qty = size if sm == E.SizeMode.QTY else 0.0
    k = submit_nb(p, arrival, bar, ts, 0, s, E.OrderType.MARKET, side, E.TimeInForce.GTC, sm, qty, 0.0, 0.0,
                  0.0, 0.0, 0, 0, 0.0, 0.0, size, 1, c, m, b)
    if k >= 0 and oi[p, k, E.OI_ACTIVE] <= bar:
        oi[p, k, E.OI_STATUS] = E.OrderStatus.ACTIVE
        oi[p, k, E.OI_FIRST] = 0
        fill_slot_nb(p, k, c, E.Role.TAKER, E.FillReason.CLOSE, t_row, bar, ts, m, b)


@rule(I0, I0, I0, I0, MARKET_T, BOOK_T, inline=True, host=False)
def signal_nb(p, t_row, bar, ts, m, b):
    """Turn this bar's entry/exit signal (decided at its close) into orders; fill now if fill_at=close."""
    bars, entries, exits, sig_i, sig_f, mi = m.bars, m.entries, m.exits, m.sig_i, m.sig_f, m.mi
    ai, pf = b.ai, b.pf
    e = entries[t_row, p]
    x = exits[t_row, p]
    if e == x:
        return
    s = sig_i[p, 1]
    if closed_nb(bars, t_row, s):
        return  # a closed bar carries no signal
    pos = pf[p, s, E.PF_QTY]
    if ai[p, E.AI_SIGPEND] > 0:
        state = ai[p, E.AI_SIGTGT]
    elif pos > 0.0:
        state = 1
    elif pos < 0.0:
        state = -1
    else:
        state = 0
    short = mi[E.MI_ALLOW_SHORT] == 1
    if e:
        if state == 1:
            return
        tgt = 1
        side = E.Side.BUY
        close_first = state == -1
    else:
        if state == -1 or (state == 0 and not short):
            return
        tgt = -1 if short else 0
        side = E.Side.SELL
        close_first = state == 1
    ai[p, E.AI_SIGTGT] = tgt
    arrival = bar + mi[E.MI_FILL_NEXT]
    c = bars[E.B_CLOSE][t_row, s]
    if close_first:
        _signal_order_nb(p, arrival, E.SizeMode.CLOSE, 0.0, side, s, c, t_row, bar, ts, m, b)
    if tgt != 0:
        sm = sig_i[p, 2]
        _signal_order_nb(p, arrival, sm, sig_f[p, 0], side, s, c, t_row, bar, ts, m, b)


@rule(I0, I0, I0, I0, BARS, MP, F2, F3, F3, F3, I0, I0, host=False)
def end_bar_nb(p, t_row, single, sym, bars, mp, af, pf, series, pos_series, series_on, pos_on):
    """Borrow cost on shorts, then mark to the close and record equity, cash and position."""
    cash = af[p, E.AF_CASH]
    if single == 1:
        lo = sym
        hi = sym + 1
    else:
        lo = 0
        hi = pf.shape[1]
    borrow = mp[p, E.MP_BORROW]
    eq = 0.0
    for s in range(lo, hi):
        c = bars[E.B_CLOSE][t_row, s]
        if c != c:
            c = pf[p, s, E.PF_LAST]  # closed: valued at its last traded close
        q = pf[p, s, E.PF_QTY]
        if borrow > 0.0 and q < 0.0:
            cost = -q * c * borrow
            cash = cash - cost
            af[p, E.AF_BORROW] = af[p, E.AF_BORROW] + cost
        pf[p, s, E.PF_LAST] = c
        eq = eq + q * c
    af[p, E.AF_CASH] = cash
    if series_on == 1:
        series[E.SE_EQUITY, t_row, p] = cash + eq
        series[E.SE_CASH, t_row, p] = cash
        series[E.SE_POS, t_row, p] = pf[p, sym, E.PF_QTY]
    if pos_on == 1:
        for s in range(pf.shape[1]):
            pos_series[t_row, p, s] = pf[p, s, E.PF_QTY]


@rule(I0, I0, I0, I0, MARKET_T, BOOK_T, host=False)
def step_nb(p, t_row, bar, ts, m, b):
    """One bar of one portfolio: queue -> expiry/activation -> O,(L,H|H,L),C path -> signals -> mark."""
    bars, entries, exits, sig_i, oq_end, mp, mi, tiers = m.bars, m.entries, m.exits, m.sig_i, m.oq_end, m.mp, \
        m.mi, m.tiers
    af, ai, pf, oi, of, ei, series, pos_series = b.af, b.ai, b.pf, b.oi, b.of, b.ei, b.series, b.pos_series
    if mi[E.MI_N_TIERS] > 1:
        roll_day_nb(p, ts, mi, tiers, af, ai)
    if mp[p, E.MP_PART] > 0.0:
        for s in range(pf.shape[1]):
            pf[p, s, E.PF_USED] = 0.0
    if ai[p, E.AI_OQ] < oq_end[p]:
        process_queue_nb(p, t_row, bar, ts, m, b)
    if ai[p, E.AI_NOPEN] > 0:
        start_bar_nb(p, t_row, bar, ts, bars, oi, of, ai, ei)
        for pt in range(4):
            if ai[p, E.AI_NOPEN] == 0:
                break
            match_point_nb(p, pt, t_row, bar, ts, m, b)
    if sig_i[p, 0] == 1 and entries[t_row, p] != exits[t_row, p]:
        signal_nb(p, t_row, bar, ts, m, b)
    end_bar_nb(p, t_row, sig_i[p, 3], sig_i[p, 1], bars, mp, af, pf, series, pos_series, mi[E.MI_SERIES],
               mi[E.MI_POS_SERIES])


@rule(I0, I0, I0, I0, MARKET_T, BOOK_T, host=False)
def run_block_nb(p0, p1, T, bar0, m, b):
    """All T bars of portfolios ``p0 <= p < p1``, time-major (bar t of every portfolio, then t + 1).

    Portfolios share no state, so the order across portfolios does not change any result; time-major
    makes the (T, P) signal and series arrays stream row by row instead of column by column.

    A bar on which a portfolio has no open order, no instruction due and no signal is *idle*: the
    full ``step_nb`` would only reset per-bar counters (fee-tier day roll, participation used) and
    mark to the close. Those counters are only read by fills, and ``step_nb`` resets them on entry,
    so an idle bar runs the mark alone (same arithmetic as ``end_bar_nb``), and every disabled
    feature costs nothing on it.
    """
    ts, bars, entries, exits, sig_i, oq_i, oq_end, mp, mi, tiers = m.ts, m.bars, m.entries, m.exits, m.sig_i, \
        m.oq_i, m.oq_end, m.mp, m.mi, m.tiers
    af, ai, pf, series, pos_series = b.af, b.ai, b.pf, b.series, b.pos_series
    series_on = mi[E.MI_SERIES] == 1
    pos_on = mi[E.MI_POS_SERIES] == 1
    borrow_on = False  # any portfolio of the block pays borrow: its idle short bars take end_bar_nb
    for p in range(p0, p1):
        if mp[p, E.MP_BORROW] > 0.0:
            borrow_on = True
    for t in range(T):
        bar = bar0 + t
        for p in range(p0, p1):
            book = ai[p, E.AI_NOPEN] > 0
            if not book:
                j = ai[p, E.AI_OQ]
                book = j < oq_end[p] and oq_i[j, E.QI_BAR] <= bar
            if book:
                step_nb(p, t, bar, ts[t], m, b)
                continue
            if sig_i[p, 0] == 1 and entries[t, p] != exits[t, p]:
                # what step_nb does on an empty book with no instruction due: counters, signal, then the mark
                if mi[E.MI_N_TIERS] > 1:
                    roll_day_nb(p, ts[t], mi, tiers, af, ai)
                if mp[p, E.MP_PART] > 0.0:
                    for s in range(pf.shape[1]):
                        pf[p, s, E.PF_USED] = 0.0
                signal_nb(p, t, bar, ts[t], m, b)
            sym = sig_i[p, 1]
            if sig_i[p, 3] == 1 and not (borrow_on and pf[p, sym, E.PF_QTY] < 0.0):
                # end_bar_nb(single=1) without a borrow charge: cash is unchanged
                c = bars[E.B_CLOSE][t, sym]
                if c != c:
                    c = pf[p, sym, E.PF_LAST]  # closed: valued at its last traded close
                q = pf[p, sym, E.PF_QTY]
                pf[p, sym, E.PF_LAST] = c
                if series_on:
                    cash = af[p, E.AF_CASH]
                    series[E.SE_EQUITY, t, p] = cash + (0.0 + q * c)
                    series[E.SE_CASH, t, p] = cash
                    series[E.SE_POS, t, p] = q
                if pos_on:
                    for s in range(pf.shape[1]):
                        pos_series[t, p, s] = pf[p, s, E.PF_QTY]
            else:
                end_bar_nb(p, t, sig_i[p, 3], sym, bars, mp, af, pf, series, pos_series, mi[E.MI_SERIES],
                           mi[E.MI_POS_SERIES])


@njit(cache=True)
def run_portfolio_nb(p, T, bar0, m, b):
    """All T bars of portfolio p (one CUDA thread)."""
    run_block_nb(p, p + 1, T, bar0, m, b)
