"""Numba kernels of the simulation core.

Contract (vectorbt style): NumPy arrays and Numba types only, no Python objects, no allocation
inside the rules. Every rule below is a plain scalar function compiled with ``@njit(cache=True)``
for the CPU; ``trading_core.engine.cuda`` compiles the *same* Python source (``f.py_func``) a
second time with ``numba.cuda.jit(device=True)``. So the rules must stay CUDA-safe: no raise, no
array creation, no prange, no objects; state lives in the flat arrays described in ``enums``.

Floating-point note: the CPU kernel, the CUDA kernel and ``reference.py`` perform the arithmetic in
the same order, so results agree to the last bit on the same platform.
"""

from __future__ import annotations

import math

from numba import njit, prange
from numba import types as nt

from trading_core.engine import enums as E

# ############# Explicit signatures ############# #
# Every rule is compiled once, for one signature, when this module is imported (or loaded from the
# on-disk cache). Without them Numba compiles a rule again for every distinct combination of
# literal constants its callers pass (``_write_slot_nb`` alone had six versions), which made the
# first compile take minutes. A parameter's type follows from its name, the same in every rule.

_I, _F = nt.int64, nt.float64
_ARRAYS = {
    "bars": _F[:, :, ::1], "sigma": _F[:, ::1], "entries": nt.boolean[:, ::1], "exits": nt.boolean[:, ::1],
    "sig_i": _I[:, ::1], "sig_f": _F[:, ::1], "oq_i": _I[:, ::1], "oq_f": _F[:, ::1], "oq_end": _I[::1],
    "mp": _F[::1], "mi": _I[::1], "rng": _F[:, ::1], "tiers": _F[:, ::1], "af": _F[:, ::1], "ai": _I[:, ::1],
    "pf": _F[:, :, ::1], "oi": _I[:, :, ::1], "of": _F[:, :, ::1], "fi": _I[:, :, ::1], "ff": _F[:, :, ::1],
    "ei": _I[:, :, ::1], "series": _F[:, :, ::1], "pos_series": _F[:, :, ::1],
}
_FLOATS = {"base", "fee", "lim", "lot", "notional", "px", "px_est", "q", "qty", "ref", "ref_px", "sig", "size",
           "sl", "stop", "tp", "trail", "trail_pct", "vol_bar", "x", "step", "c"}


def _sig(f, over):
    names = f.__code__.co_varnames[:f.__code__.co_argcount]
    return tuple(over[n] if n in over else _ARRAYS.get(n, _F if n in _FLOATS else _I)
                 for n in names)


def rule(f=None, **over):
    """``@njit(cache=True)`` with the signature implied by the parameter names (``over`` for exceptions)."""
    if f is None:
        return lambda g: njit(_sig(g, over), cache=True, _nrt=False)(g)
    return njit(_sig(f, over), cache=True, _nrt=False)(f)


# ############# Small helpers ############# #


@rule
def draw_nb(p, rng, ai):
    """Next seeded uniform of portfolio ``p`` (host-drawn pool, cursor wraps)."""
    k = ai[p, E.AI_RNG]
    u = rng[p, k % rng.shape[1]]
    ai[p, E.AI_RNG] = k + 1
    return u


@rule
def floor_lot_nb(q, lot):
    if lot > 0.0:
        return math.floor(q / lot + 1e-9) * lot
    return q


@rule
def off_grid_nb(x, step):
    """True when ``x`` is not a multiple of ``step`` (relative tolerance 1e-9)."""
    if step <= 0.0:
        return False
    r = x / step
    return abs(r - math.floor(r + 0.5)) > 1e-9 * max(1.0, abs(r))


@rule
def event_nb(p, ai, ei, sym, bar, ts, oid, kind, reason):
    n = ai[p, E.AI_NEV]
    if n < ei.shape[1]:
        ei[p, n, E.EI_SYM] = sym
        ei[p, n, E.EI_BAR] = bar
        ei[p, n, E.EI_TS] = ts
        ei[p, n, E.EI_ID] = oid
        ei[p, n, E.EI_KIND] = kind
        ei[p, n, E.EI_REASON] = reason
    ai[p, E.AI_NEV] = n + 1


@rule
def fee_rate_nb(p, role, tiers, ai):
    tier = ai[p, E.AI_TIER]
    if role == E.Role.MAKER:
        return tiers[tier, 1] * 1e-4
    return tiers[tier, 2] * 1e-4


@rule
def taker_price_nb(base, side, q, vol_bar, sig, mp):
    """Half spread + fixed bps + square-root impact (coef * sigma * sqrt(q / bar volume))."""
    frac = (mp[E.MP_SPREAD_BPS] * 0.5 + mp[E.MP_SLIP_BPS]) * 1e-4
    if mp[E.MP_IMPACT] > 0.0 and vol_bar > 0.0 and q > 0.0:
        frac = frac + mp[E.MP_IMPACT] * sig * math.sqrt(q / vol_bar)
    if side == E.Side.BUY:
        return base * (1.0 + frac)
    return base * (1.0 - frac)


@rule
def equity_nb(p, af, pf):
    eq = af[p, E.AF_CASH]
    for s in range(pf.shape[1]):
        eq = eq + pf[p, s, E.PF_QTY] * pf[p, s, E.PF_LAST]
    return eq


@rule
def roll_day_nb(p, ts, mi, tiers, af, ai):
    """Re-evaluate the fee tier from the previous 30 days' traded notional on a new UTC day."""
    day = ts // 86_400_000
    if day == ai[p, E.AI_DAY]:
        return
    ai[p, E.AI_DAY] = day
    vol = 0.0
    for i in range(E.N_DAYS):
        d = ai[p, E.AI_DAYID + i]
        if d >= day - E.N_DAYS and d < day:
            vol = vol + af[p, E.AF_DAYVOL + i]
    af[p, E.AF_VOL30] = vol
    tier = 0
    for j in range(mi[E.MI_N_TIERS]):
        if vol >= tiers[j, 0]:
            tier = j
    ai[p, E.AI_TIER] = tier


@rule
def add_day_volume_nb(p, ts, notional, af, ai):
    day = ts // 86_400_000
    i = day % E.N_DAYS
    if ai[p, E.AI_DAYID + i] != day:
        ai[p, E.AI_DAYID + i] = day
        af[p, E.AF_DAYVOL + i] = 0.0
    af[p, E.AF_DAYVOL + i] = af[p, E.AF_DAYVOL + i] + notional


@rule
def apply_fill_nb(p, s, side, q, px, fee, af, pf):
    """Cash, signed position, average entry and realised PnL after one execution."""
    notional = q * px
    cash = af[p, E.AF_CASH]
    if side == E.Side.BUY:
        cash = cash - notional
        dq = q
    else:
        cash = cash + notional
        dq = -q
    af[p, E.AF_CASH] = cash - fee
    af[p, E.AF_FEES] = af[p, E.AF_FEES] + fee
    pos = pf[p, s, E.PF_QTY]
    avg = pf[p, s, E.PF_AVG]
    new = pos + dq
    if pos == 0.0 or (pos > 0.0) == (dq > 0.0):
        pf[p, s, E.PF_AVG] = (avg * abs(pos) + notional) / abs(new)
    else:
        closed = min(q, abs(pos))
        if pos > 0.0:
            pf[p, s, E.PF_REAL] = pf[p, s, E.PF_REAL] + (px - avg) * closed
        else:
            pf[p, s, E.PF_REAL] = pf[p, s, E.PF_REAL] + (avg - px) * closed
        if new == 0.0:
            pf[p, s, E.PF_AVG] = 0.0
        elif (new > 0.0) != (pos > 0.0):
            pf[p, s, E.PF_AVG] = px
    pf[p, s, E.PF_QTY] = new
    return notional


# ############# Order book ############# #


@rule
def find_slot_nb(p, oid, oi):
    for k in range(oi.shape[1]):
        if oi[p, k, E.OI_STATUS] != E.OrderStatus.FREE and oi[p, k, E.OI_ID] == oid:
            return k
    return -1


@rule
def free_slot_nb(p, k, oi, ai):
    if oi[p, k, E.OI_SIGNAL] == 1:
        ai[p, E.AI_SIGPEND] = ai[p, E.AI_SIGPEND] - 1
    oi[p, k, E.OI_STATUS] = E.OrderStatus.FREE
    ai[p, E.AI_NOPEN] = ai[p, E.AI_NOPEN] - 1


@rule
def release_children_nb(p, oid, qty, bar, ts, oi, of, ai, ei):
    """Bracket children of ``oid``: activate with ``qty`` from the next bar, or cancel when qty == 0."""
    for k in range(oi.shape[1]):
        if oi[p, k, E.OI_STATUS] == E.OrderStatus.WAIT_PARENT and oi[p, k, E.OI_PARENT] == oid:
            if qty > 0.0:
                oi[p, k, E.OI_STATUS] = E.OrderStatus.PENDING
                oi[p, k, E.OI_ACTIVE] = bar + 1
                of[p, k, E.OF_QTY] = qty
            else:
                event_nb(p, ai, ei, oi[p, k, E.OI_SYM], bar, ts, oi[p, k, E.OI_ID], E.EventKind.CANCELED, 0)
                free_slot_nb(p, k, oi, ai)


@rule
def close_slot_nb(p, k, kind, reason, bar, ts, oi, of, ai, ei):
    """Retire an order (cancelled, expired, rejected): log it, settle bracket children, free the slot."""
    oid = oi[p, k, E.OI_ID]
    event_nb(p, ai, ei, oi[p, k, E.OI_SYM], bar, ts, oid, kind, reason)
    release_children_nb(p, oid, of[p, k, E.OF_FILLED], bar, ts, oi, of, ai, ei)
    free_slot_nb(p, k, oi, ai)


@rule
def latency_bars_nb(p, mp, mi, rng, ai):
    kind = mi[E.MI_LAT_KIND]
    if kind == E.LAT_NONE:
        return 0
    if kind == E.LAT_FIXED:
        lat = mp[E.MP_LAT_A]
    elif kind == E.LAT_UNIFORM:
        u = draw_nb(p, rng, ai)
        lat = mp[E.MP_LAT_A] + u * (mp[E.MP_LAT_B] - mp[E.MP_LAT_A])
    else:
        u = draw_nb(p, rng, ai)
        lat = mp[E.MP_LAT_A] - mp[E.MP_LAT_B] * math.log(1.0 - u)
    return int(math.floor(lat))


@rule
def validate_nb(p, bar, typ, sm, qty, lim, stop, trail, trail_pct, sl, tp, ref_px, mp, mi, rng, ai):
    """Venue checks in a fixed order; returns a RejectReason (NONE when accepted)."""
    if sm == E.SizeMode.QTY and not qty > 0.0:
        return E.RejectReason.INVALID
    if (typ == E.OrderType.LIMIT or typ == E.OrderType.STOP_LIMIT) and not lim > 0.0:
        return E.RejectReason.INVALID
    if (typ == E.OrderType.STOP or typ == E.OrderType.STOP_LIMIT or typ == E.OrderType.TAKE_PROFIT) \
            and not stop > 0.0:
        return E.RejectReason.INVALID
    if typ == E.OrderType.TRAILING_STOP and not trail > 0.0:
        return E.RejectReason.INVALID
    if typ == E.OrderType.TRAILING_STOP_PCT and not (trail_pct > 0.0 and trail_pct < 1.0):
        return E.RejectReason.INVALID
    if typ < 0 or typ > E.OrderType.MARKET_ON_CLOSE:
        return E.RejectReason.INVALID
    rmax = mi[E.MI_RATE_MAX]
    if rmax > 0:
        win = bar // mi[E.MI_RATE_BARS]
        if win != ai[p, E.AI_RATE_WIN]:
            ai[p, E.AI_RATE_WIN] = win
            ai[p, E.AI_RATE_CNT] = 0
        if ai[p, E.AI_RATE_CNT] >= rmax:
            return E.RejectReason.RATE_LIMIT
        ai[p, E.AI_RATE_CNT] = ai[p, E.AI_RATE_CNT] + 1
    tick = mp[E.MP_TICK]
    if off_grid_nb(lim, tick) or off_grid_nb(stop, tick) or off_grid_nb(sl, tick) or off_grid_nb(tp, tick):
        return E.RejectReason.TICK_SIZE
    if sm == E.SizeMode.QTY:
        if off_grid_nb(qty, mp[E.MP_LOT]):
            return E.RejectReason.LOT_SIZE
        if mp[E.MP_MIN_NOTIONAL] > 0.0:
            px = ref_px
            if lim > 0.0:
                px = lim
            elif stop > 0.0:
                px = stop
            if qty * px < mp[E.MP_MIN_NOTIONAL]:
                return E.RejectReason.MIN_NOTIONAL
    if mp[E.MP_REJECT] > 0.0 and draw_nb(p, rng, ai) < mp[E.MP_REJECT]:
        return E.RejectReason.RANDOM
    return E.RejectReason.NONE


@rule
def _write_slot_nb(p, k, status, oid, sym, typ, side, tif, active, exp_bars, exp_ts, parent, oco, sm, seq,
                   qty, lim, stop, trail, trail_pct, size, sl, tp, is_signal, oi, of, ai):
    oi[p, k, E.OI_STATUS] = status
    oi[p, k, E.OI_ID] = oid
    oi[p, k, E.OI_SYM] = sym
    oi[p, k, E.OI_TYPE] = typ
    oi[p, k, E.OI_SIDE] = side
    oi[p, k, E.OI_TIF] = tif
    oi[p, k, E.OI_ACTIVE] = active
    oi[p, k, E.OI_EXP_BAR] = exp_bars  # turned into an absolute bar on activation
    oi[p, k, E.OI_EXP_TS] = exp_ts
    oi[p, k, E.OI_PARENT] = parent
    oi[p, k, E.OI_OCO] = oco
    oi[p, k, E.OI_SIZEMODE] = sm
    oi[p, k, E.OI_SEQ] = seq
    oi[p, k, E.OI_FIRST] = 1
    oi[p, k, E.OI_TRIG] = 0
    oi[p, k, E.OI_SIGNAL] = is_signal
    if sm == E.SizeMode.QTY:
        of[p, k, E.OF_QTY] = qty
    else:
        of[p, k, E.OF_QTY] = 0.0
    of[p, k, E.OF_FILLED] = 0.0
    of[p, k, E.OF_LIMIT] = lim
    of[p, k, E.OF_STOP] = stop
    of[p, k, E.OF_TRAIL] = trail
    of[p, k, E.OF_TRAIL_PCT] = trail_pct
    of[p, k, E.OF_REF] = 0.0
    of[p, k, E.OF_SIZE] = size
    of[p, k, E.OF_SL] = sl
    of[p, k, E.OF_TP] = tp
    ai[p, E.AI_NOPEN] = ai[p, E.AI_NOPEN] + 1
    if is_signal == 1:
        ai[p, E.AI_SIGPEND] = ai[p, E.AI_SIGPEND] + 1


@rule
def submit_nb(p, arrival, bar, ts, oid, sym, typ, side, tif, sm, qty, lim, stop, trail, trail_pct,
              exp_bars, exp_ts, sl, tp, size, is_signal, ref_px, mp, mi, rng, ai, oi, of, ei):
    """Validate and place a NEW order (and its bracket children); returns its slot or -1."""
    n_child = 0
    if sl > 0.0:
        n_child += 1
    if tp > 0.0:
        n_child += 1
    if oid <= 0:
        oid = ai[p, E.AI_NEXT_ID]
    if oid + 1 + n_child > ai[p, E.AI_NEXT_ID]:
        ai[p, E.AI_NEXT_ID] = oid + 1 + n_child  # bracket children get oid+1 (stop-loss), then take-profit
    reason = validate_nb(p, bar, typ, sm, qty, lim, stop, trail, trail_pct, sl, tp, ref_px, mp, mi, rng, ai)
    K = oi.shape[1]
    k0 = -1
    k1 = -1
    k2 = -1
    if reason == E.RejectReason.NONE:
        for k in range(K):
            if oi[p, k, E.OI_STATUS] == E.OrderStatus.FREE:
                if k0 < 0:
                    k0 = k
                elif sl > 0.0 and k1 < 0:
                    k1 = k
                elif tp > 0.0 and k2 < 0:
                    k2 = k
        if k0 < 0 or (sl > 0.0 and k1 < 0) or (tp > 0.0 and k2 < 0):
            reason = E.RejectReason.BOOK_FULL
    if reason != E.RejectReason.NONE:
        event_nb(p, ai, ei, sym, bar, ts, oid, E.EventKind.REJECTED, reason)
        return -1
    lat = latency_bars_nb(p, mp, mi, rng, ai)
    seq = ai[p, E.AI_SEQ]
    ai[p, E.AI_SEQ] = seq + 3
    sl_id = -1
    tp_id = -1
    if sl > 0.0:
        sl_id = oid + 1
    if tp > 0.0:
        tp_id = oid + n_child
    _write_slot_nb(p, k0, E.OrderStatus.PENDING, oid, sym, typ, side, tif, arrival + lat, exp_bars, exp_ts,
                   -1, -1, sm, seq, qty, lim, stop, trail, trail_pct, size, sl, tp, is_signal, oi, of, ai)
    event_nb(p, ai, ei, sym, bar, ts, oid, E.EventKind.ACCEPTED, 0)
    child_side = E.Side.SELL if side == E.Side.BUY else E.Side.BUY
    if sl > 0.0:
        _write_slot_nb(p, k1, E.OrderStatus.WAIT_PARENT, sl_id, sym, E.OrderType.STOP, child_side,
                       E.TimeInForce.GTC, -1, 0, 0, oid, tp_id, E.SizeMode.QTY, seq + 1, 0.0, 0.0, sl,
                       0.0, 0.0, 0.0, 0.0, 0.0, 0, oi, of, ai)
    if tp > 0.0:
        _write_slot_nb(p, k2, E.OrderStatus.WAIT_PARENT, tp_id, sym, E.OrderType.TAKE_PROFIT, child_side,
                       E.TimeInForce.GTC, -1, 0, 0, oid, sl_id, E.SizeMode.QTY, seq + 2, 0.0, 0.0, tp,
                       0.0, 0.0, 0.0, 0.0, 0.0, 0, oi, of, ai)
    return k0


@rule
def size_order_nb(p, k, px_est, role, mp, tiers, af, ai, pf, oi, of):
    """Quantity of an ALL_IN / RISK / CLOSE order, decided at its first fill attempt."""
    sm = oi[p, k, E.OI_SIZEMODE]
    s = oi[p, k, E.OI_SYM]
    side = oi[p, k, E.OI_SIDE]
    pos = pf[p, s, E.PF_QTY]
    fee = fee_rate_nb(p, role, tiers, ai)
    q = 0.0
    if sm == E.SizeMode.CLOSE:
        if side == E.Side.SELL and pos > 0.0:
            q = pos
        elif side == E.Side.BUY and pos < 0.0:
            q = -pos
        return q
    if sm == E.SizeMode.ALL_IN:
        if side == E.Side.BUY:
            q = af[p, E.AF_CASH] / (px_est * (1.0 + fee))
        elif pos > 0.0:
            q = pos
        else:
            eq = equity_nb(p, af, pf)
            if eq > 0.0:
                q = eq / (px_est * (1.0 + fee))
    elif sm == E.SizeMode.RISK:
        eq = equity_nb(p, af, pf)
        if eq > 0.0:
            q = of[p, k, E.OF_SIZE] * eq / (px_est * mp[E.MP_RISK_STOP])
    q = floor_lot_nb(q, mp[E.MP_LOT])
    if q < 0.0:
        q = 0.0
    return q


# ############# Fills ############# #


@rule
def fill_slot_nb(p, k, base, role, reason, t_row, bar, ts, bars, sigma, mp, mi, tiers, af, ai, pf, oi, of,
                 fi, ff, ei):
    """Execute as much of order ``k`` as the bar, cash and margin allow at ``base``; returns the qty."""
    s = oi[p, k, E.OI_SYM]
    side = oi[p, k, E.OI_SIDE]
    typ = oi[p, k, E.OI_TYPE]
    tif = oi[p, k, E.OI_TIF]
    lot = mp[E.MP_LOT]
    vol_bar = bars[E.B_VOLUME, t_row, s]
    sig = 0.0
    if mp[E.MP_IMPACT] > 0.0:
        sig = sigma[t_row, s]
    if oi[p, k, E.OI_SIZEMODE] != E.SizeMode.QTY and of[p, k, E.OF_QTY] <= 0.0:
        px_est = base
        if role == E.Role.TAKER:
            px_est = taker_price_nb(base, side, 0.0, vol_bar, sig, mp)
        q0 = size_order_nb(p, k, px_est, role, mp, tiers, af, ai, pf, oi, of)
        rr = E.RejectReason.NONE
        if q0 <= 0.0:
            rr = E.RejectReason.NO_CASH
            if oi[p, k, E.OI_SIZEMODE] == E.SizeMode.CLOSE:
                rr = E.RejectReason.INVALID
        elif mp[E.MP_MIN_NOTIONAL] > 0.0 and q0 * px_est < mp[E.MP_MIN_NOTIONAL]:
            rr = E.RejectReason.MIN_NOTIONAL
        if rr != E.RejectReason.NONE:
            close_slot_nb(p, k, E.EventKind.REJECTED, rr, bar, ts, oi, of, ai, ei)
            return 0.0
        of[p, k, E.OF_QTY] = q0
    want = of[p, k, E.OF_QTY] - of[p, k, E.OF_FILLED]
    q = want
    if mp[E.MP_PART] > 0.0:
        avail = mp[E.MP_PART] * vol_bar - pf[p, s, E.PF_USED]
        if avail < q:
            q = floor_lot_nb(max(avail, 0.0), lot)
    if q <= 0.0:
        if tif == E.TimeInForce.FOK:
            close_slot_nb(p, k, E.EventKind.REJECTED, E.RejectReason.FOK_UNFILLABLE, bar, ts, oi, of, ai, ei)
        return 0.0
    px = base
    if role == E.Role.TAKER:
        px = taker_price_nb(base, side, q, vol_bar, sig, mp)
        if typ == E.OrderType.LIMIT or typ == E.OrderType.STOP_LIMIT:
            lim = of[p, k, E.OF_LIMIT]
            if side == E.Side.BUY and px > lim or side == E.Side.SELL and px < lim:
                px = lim
    fee_rate = fee_rate_nb(p, role, tiers, ai)
    capped = E.RejectReason.NONE
    pos = pf[p, s, E.PF_QTY]
    if side == E.Side.BUY:
        maxq = af[p, E.AF_CASH] / (px * (1.0 + fee_rate))
        if q > maxq:
            q = floor_lot_nb(max(maxq, 0.0), lot)
            capped = E.RejectReason.NO_CASH
    else:
        long_part = max(pos, 0.0)
        if q > long_part:
            if mi[E.MI_ALLOW_SHORT] == 0:
                q = long_part
                capped = E.RejectReason.SHORT_NOT_ALLOWED
            else:
                eq = equity_nb(p, af, pf)
                room = eq / (px * mp[E.MP_MARGIN]) - max(-pos, 0.0)
                allowed = long_part + max(room, 0.0)
                if q > allowed:
                    q = floor_lot_nb(allowed, lot)
                    capped = E.RejectReason.NO_MARGIN
    if tif == E.TimeInForce.FOK and q < want:
        close_slot_nb(p, k, E.EventKind.REJECTED, E.RejectReason.FOK_UNFILLABLE, bar, ts, oi, of, ai, ei)
        return 0.0
    if q <= 0.0:
        close_slot_nb(p, k, E.EventKind.REJECTED, capped, bar, ts, oi, of, ai, ei)
        return 0.0
    notional = q * px
    fee = notional * fee_rate
    apply_fill_nb(p, s, side, q, px, fee, af, pf)
    n = ai[p, E.AI_NFILL]
    oid = oi[p, k, E.OI_ID]
    if n < fi.shape[1]:
        fi[p, n, E.FI_SYM] = s
        fi[p, n, E.FI_BAR] = bar
        fi[p, n, E.FI_TS] = ts
        fi[p, n, E.FI_ID] = oid
        fi[p, n, E.FI_SIDE] = side
        fi[p, n, E.FI_ROLE] = role
        fi[p, n, E.FI_REASON] = reason
        fi[p, n, E.FI_TYPE] = typ
        ff[p, n, E.FF_QTY] = q
        ff[p, n, E.FF_PRICE] = px
        ff[p, n, E.FF_FEE] = fee
        ff[p, n, E.FF_SLIP] = abs(px - base) * q
    ai[p, E.AI_NFILL] = n + 1
    if mi[E.MI_N_TIERS] > 1:
        add_day_volume_nb(p, ts, notional, af, ai)
    pf[p, s, E.PF_USED] = pf[p, s, E.PF_USED] + q
    filled = of[p, k, E.OF_FILLED] + q
    of[p, k, E.OF_FILLED] = filled
    sib = oi[p, k, E.OI_OCO]
    ks = -1
    if sib >= 0:
        ks = find_slot_nb(p, sib, oi)
    remaining = of[p, k, E.OF_QTY] - filled
    if remaining <= 1e-9 * of[p, k, E.OF_QTY]:
        event_nb(p, ai, ei, s, bar, ts, oid, E.EventKind.FILLED, 0)
        release_children_nb(p, oid, filled, bar, ts, oi, of, ai, ei)
        free_slot_nb(p, k, oi, ai)
        if ks >= 0:
            close_slot_nb(p, ks, E.EventKind.CANCELED, 0, bar, ts, oi, of, ai, ei)
    else:
        if ks >= 0:
            of[p, ks, E.OF_QTY] = of[p, ks, E.OF_QTY] - q
        if capped != E.RejectReason.NONE:
            close_slot_nb(p, k, E.EventKind.CANCELED, capped, bar, ts, oi, of, ai, ei)
    return q


# ############# Bar processing ############# #


@rule
def trail_level_nb(p, k, ref, oi, of):
    sell = oi[p, k, E.OI_SIDE] == E.Side.SELL
    if oi[p, k, E.OI_TYPE] == E.OrderType.TRAILING_STOP:
        if sell:
            return ref - of[p, k, E.OF_TRAIL]
        return ref + of[p, k, E.OF_TRAIL]
    if sell:
        return ref * (1.0 - of[p, k, E.OF_TRAIL_PCT])
    return ref * (1.0 + of[p, k, E.OF_TRAIL_PCT])


@rule
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
            oi[p, k, E.OI_STATUS] = E.OrderStatus.ACTIVE
            oi[p, k, E.OI_FIRST] = 1
            nb_ = oi[p, k, E.OI_EXP_BAR]
            oi[p, k, E.OI_EXP_BAR] = bar + nb_ if nb_ > 0 else -1
            typ = oi[p, k, E.OI_TYPE]
            if typ == E.OrderType.TRAILING_STOP or typ == E.OrderType.TRAILING_STOP_PCT:
                ref = bars[E.B_OPEN, t_row, oi[p, k, E.OI_SYM]]
                of[p, k, E.OF_REF] = ref
                of[p, k, E.OF_STOP] = trail_level_nb(p, k, ref, oi, of)


@rule
def match_point_nb(p, pt, t_row, bar, ts, bars, sigma, mp, mi, rng, tiers, af, ai, pf, oi, of, fi, ff, ei):
    """Match every active order against path point ``pt`` (0 open, 1-2 extremes, 3 close)."""
    half_tick = 0.5 * mp[E.MP_TICK]
    for k in range(oi.shape[1]):
        if oi[p, k, E.OI_STATUS] != E.OrderStatus.ACTIVE:
            continue
        s = oi[p, k, E.OI_SYM]
        o = bars[E.B_OPEN, t_row, s]
        c = bars[E.B_CLOSE, t_row, s]
        if pt == 0:
            price = o
        elif pt == 3:
            price = c
        elif (c >= o) == (pt == 1):
            price = bars[E.B_LOW, t_row, s]
        else:
            price = bars[E.B_HIGH, t_row, s]
        typ = oi[p, k, E.OI_TYPE]
        side = oi[p, k, E.OI_SIDE]
        buy = side == E.Side.BUY
        is_stop_family = (typ == E.OrderType.STOP or typ == E.OrderType.TAKE_PROFIT
                          or typ == E.OrderType.TRAILING_STOP or typ == E.OrderType.TRAILING_STOP_PCT)
        first = oi[p, k, E.OI_FIRST] == 1
        if typ == E.OrderType.MARKET or (is_stop_family and oi[p, k, E.OI_TRIG] == 1):
            if pt == 0:
                fill_slot_nb(p, k, price, E.Role.TAKER, E.FillReason.OPEN, t_row, bar, ts, bars, sigma, mp, mi,
                             tiers, af, ai, pf, oi, of, fi, ff, ei)
        elif typ == E.OrderType.MARKET_ON_CLOSE:
            if pt == 3:
                fill_slot_nb(p, k, price, E.Role.TAKER, E.FillReason.CLOSE, t_row, bar, ts, bars, sigma, mp, mi,
                             tiers, af, ai, pf, oi, of, fi, ff, ei)
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
                ok = through or mp[E.MP_TOUCH] >= 1.0
                if not ok:
                    ok = draw_nb(p, rng, ai) < mp[E.MP_TOUCH]
                if ok:
                    if pt == 0:
                        role = E.Role.TAKER if first else E.Role.MAKER
                        reason = E.FillReason.OPEN if first else E.FillReason.GAP
                        fill_slot_nb(p, k, price, role, reason, t_row, bar, ts, bars, sigma, mp, mi, tiers,
                                     af, ai, pf, oi, of, fi, ff, ei)
                    else:
                        fill_slot_nb(p, k, lim, E.Role.MAKER, E.FillReason.INTRABAR, t_row, bar, ts, bars, sigma,
                                     mp, mi, tiers, af, ai, pf, oi, of, fi, ff, ei)
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
                        fill_slot_nb(p, k, base, E.Role.TAKER, reason, t_row, bar, ts, bars, sigma, mp, mi, tiers,
                                     af, ai, pf, oi, of, fi, ff, ei)
                else:
                    fill_slot_nb(p, k, base, E.Role.TAKER, reason, t_row, bar, ts, bars, sigma, mp, mi, tiers,
                                 af, ai, pf, oi, of, fi, ff, ei)
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


@rule
def process_queue_nb(p, t_row, bar, ts, bars, oq_i, oq_f, oq_end, mp, mi, rng, ai, pf, oi, of, ei):
    """Apply queued instructions (NEW / CANCEL / REPLACE) that arrive before this bar's open."""
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
                      pf[p, sym, E.PF_LAST], mp, mi, rng, ai, oi, of, ei)
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
                bad = (nq > 0.0 and (nq <= of[p, k, E.OF_FILLED] or off_grid_nb(nq, mp[E.MP_LOT]))) \
                    or off_grid_nb(nl, mp[E.MP_TICK]) or off_grid_nb(ns, mp[E.MP_TICK])
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


@rule
def _signal_order_nb(p, arrival, sm, size, side, s, c, t_row, bar, ts, bars, sigma, mp, mi, rng, tiers, af, ai,
                     pf, oi, of, fi, ff, ei):
    qty = size if sm == E.SizeMode.QTY else 0.0
    k = submit_nb(p, arrival, bar, ts, 0, s, E.OrderType.MARKET, side, E.TimeInForce.GTC, sm, qty, 0.0, 0.0,
                  0.0, 0.0, 0, 0, 0.0, 0.0, size, 1, c, mp, mi, rng, ai, oi, of, ei)
    if k >= 0 and oi[p, k, E.OI_ACTIVE] <= bar:
        oi[p, k, E.OI_STATUS] = E.OrderStatus.ACTIVE
        oi[p, k, E.OI_FIRST] = 0
        fill_slot_nb(p, k, c, E.Role.TAKER, E.FillReason.CLOSE, t_row, bar, ts, bars, sigma, mp, mi, tiers, af,
                     ai, pf, oi, of, fi, ff, ei)


@rule
def signal_nb(p, t_row, bar, ts, bars, sigma, entries, exits, sig_i, sig_f, mp, mi, rng, tiers, af, ai, pf,
              oi, of, fi, ff, ei):
    """Turn this bar's entry/exit signal (decided at its close) into orders; fill now if fill_at=close."""
    e = entries[t_row, p]
    x = exits[t_row, p]
    if e == x:
        return
    s = sig_i[p, 1]
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
    c = bars[E.B_CLOSE, t_row, s]
    if close_first:
        _signal_order_nb(p, arrival, E.SizeMode.CLOSE, 0.0, side, s, c, t_row, bar, ts, bars, sigma, mp, mi, rng,
                         tiers, af, ai, pf, oi, of, fi, ff, ei)
    if tgt != 0:
        sm = sig_i[p, 2]
        _signal_order_nb(p, arrival, sm, sig_f[p, 0], side, s, c, t_row, bar, ts, bars, sigma, mp, mi, rng,
                         tiers, af, ai, pf, oi, of, fi, ff, ei)


@rule
def end_bar_nb(p, t_row, single, sym, bars, mp, af, pf, series, pos_series, series_on, pos_on):
    """Borrow cost on shorts, then mark to the close and record equity, cash and position."""
    cash = af[p, E.AF_CASH]
    if single == 1:
        lo = sym
        hi = sym + 1
    else:
        lo = 0
        hi = pf.shape[1]
    borrow = mp[E.MP_BORROW]
    eq = 0.0
    for s in range(lo, hi):
        c = bars[E.B_CLOSE, t_row, s]
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


@rule
def step_nb(p, t_row, bar, ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi, rng,
            tiers, af, ai, pf, oi, of, fi, ff, ei, series, pos_series):
    """One bar of one portfolio: queue -> expiry/activation -> O,(L,H|H,L),C path -> signals -> mark."""
    if mi[E.MI_N_TIERS] > 1:
        roll_day_nb(p, ts, mi, tiers, af, ai)
    if mp[E.MP_PART] > 0.0:
        for s in range(pf.shape[1]):
            pf[p, s, E.PF_USED] = 0.0
    if ai[p, E.AI_OQ] < oq_end[p]:
        process_queue_nb(p, t_row, bar, ts, bars, oq_i, oq_f, oq_end, mp, mi, rng, ai, pf, oi, of, ei)
    if ai[p, E.AI_NOPEN] > 0:
        start_bar_nb(p, t_row, bar, ts, bars, oi, of, ai, ei)
        for pt in range(4):
            if ai[p, E.AI_NOPEN] == 0:
                break
            match_point_nb(p, pt, t_row, bar, ts, bars, sigma, mp, mi, rng, tiers, af, ai, pf, oi, of, fi, ff, ei)
    if sig_i[p, 0] == 1 and entries[t_row, p] != exits[t_row, p]:
        signal_nb(p, t_row, bar, ts, bars, sigma, entries, exits, sig_i, sig_f, mp, mi, rng, tiers, af, ai, pf,
                  oi, of, fi, ff, ei)
    end_bar_nb(p, t_row, sig_i[p, 3], sig_i[p, 1], bars, mp, af, pf, series, pos_series, mi[E.MI_SERIES],
               mi[E.MI_POS_SERIES])


@rule(ts=_I[::1])
def run_block_nb(p0, p1, T, bar0, ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi, rng,
                 tiers, af, ai, pf, oi, of, fi, ff, ei, series, pos_series):
    """All T bars of portfolios ``p0 <= p < p1``, time-major (bar t of every portfolio, then t + 1).

    Portfolios share no state, so the order across portfolios does not change any result; time-major
    makes the (T, P) signal and series arrays stream row by row instead of column by column.

    A bar on which a portfolio has no open order, no instruction due and no signal is *idle*: the
    full ``step_nb`` would only reset per-bar counters (fee-tier day roll, participation used) and
    mark to the close. Those counters are only read by fills, and ``step_nb`` resets them on entry,
    so an idle bar runs the mark alone (same arithmetic as ``end_bar_nb``), and every disabled
    feature costs nothing on it.
    """
    series_on = mi[E.MI_SERIES] == 1
    pos_on = mi[E.MI_POS_SERIES] == 1
    borrow_on = mp[E.MP_BORROW] > 0.0
    for t in range(T):
        bar = bar0 + t
        for p in range(p0, p1):
            busy = ai[p, E.AI_NOPEN] > 0
            if not busy:
                j = ai[p, E.AI_OQ]
                busy = j < oq_end[p] and oq_i[j, E.QI_BAR] <= bar
            if not busy and sig_i[p, 0] == 1:
                busy = entries[t, p] != exits[t, p]
            if busy:
                step_nb(p, t, bar, ts[t], bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi,
                        rng, tiers, af, ai, pf, oi, of, fi, ff, ei, series, pos_series)
                continue
            sym = sig_i[p, 1]
            if sig_i[p, 3] == 1 and not (borrow_on and pf[p, sym, E.PF_QTY] < 0.0):
                # end_bar_nb(single=1) without a borrow charge: cash is unchanged
                c = bars[E.B_CLOSE, t, sym]
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
def run_portfolio_nb(p, T, bar0, ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi,
                     rng, tiers, af, ai, pf, oi, of, fi, ff, ei, series, pos_series):
    """All T bars of portfolio p (one CUDA thread)."""
    run_block_nb(p, p + 1, T, bar0, ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi,
                 rng, tiers, af, ai, pf, oi, of, fi, ff, ei, series, pos_series)


# ############# CPU kernels ############# #


@njit(cache=True, parallel=True)
def simulate_parallel_nb(T, bar0, ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi, rng,
                         tiers, af, ai, pf, oi, of, fi, ff, ei, series, pos_series):
    """Batch kernel: blocks of portfolios in parallel (prange), each block time-major over all T bars.

    Block edges are multiples of 8 portfolios so two threads never write one cache line of a
    (T, P) row; a few blocks per thread even out uneven work."""
    P = af.shape[0]
    n_units = (P + 7) // 8
    n_blk = max(1, min(n_units, mi[E.MI_N_BLOCKS]))
    for b in prange(n_blk):
        p0 = min(P, (b * n_units // n_blk) * 8)
        p1 = min(P, ((b + 1) * n_units // n_blk) * 8)
        run_block_nb(p0, p1, T, bar0, ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi,
                     rng, tiers, af, ai, pf, oi, of, fi, ff, ei, series, pos_series)


@rule(ts=_I[::1])
def simulate_serial_nb(T, bar0, ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi, rng,
                       tiers, af, ai, pf, oi, of, fi, ff, ei, series, pos_series):
    """Same as ``simulate_parallel_nb`` without the thread pool (streaming steps, tiny batches)."""
    run_block_nb(0, af.shape[0], T, bar0, ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp,
                 mi, rng, tiers, af, ai, pf, oi, of, fi, ff, ei, series, pos_series)


@njit(cache=True)
def ewm_sigma_nb(close, lam, var, prev):
    """Per-bar volatility known *before* each bar (EWMA of squared log returns up to the previous close).

    ``var``/``prev`` (S,) carry the state across calls so streaming and batch agree exactly.
    """
    T, S = close.shape
    out = close.copy()
    for s in range(S):
        v = var[s]
        pc = prev[s]
        for t in range(T):
            out[t, s] = math.sqrt(v)
            c = close[t, s]
            if pc > 0.0 and c > 0.0:
                r = math.log(c / pc)
                v = lam * v + (1.0 - lam) * r * r
            pc = c
        var[s] = v
        prev[s] = pc
    return out


@njit(cache=True)
def stream_step_nb(ts_val, o, h, lo, c, v, ent_in, ex_in, has_sig, reset_oq, bar0, ts, bars, sigma, entries, exits,
                   sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi, rng, tiers, af, ai, pf, oi, of, fi, ff, ei, series,
                   pos_series):
    """Streaming fast path: load one bar (and this bar's signals when ``has_sig``), reset per-step
    counters, run the serial kernel on it, and return (fills, events) counts -- one dispatch per bar
    instead of a dozen NumPy calls."""
    ts[0] = ts_val
    if has_sig:
        for p in range(min(entries.shape[1], ent_in.shape[0], ex_in.shape[0])):
            entries[0, p] = ent_in[p]
            exits[0, p] = ex_in[p]
    for s in range(bars.shape[2]):
        bars[E.B_OPEN, 0, s] = o[s]
        bars[E.B_HIGH, 0, s] = h[s]
        bars[E.B_LOW, 0, s] = lo[s]
        bars[E.B_CLOSE, 0, s] = c[s]
        bars[E.B_VOLUME, 0, s] = v[s]
    for p in range(af.shape[0]):
        ai[p, E.AI_NFILL] = 0
        ai[p, E.AI_NEV] = 0
        if reset_oq:
            ai[p, E.AI_OQ] = 0
    simulate_serial_nb(1, bar0, ts, bars, sigma, entries, exits, sig_i, sig_f, oq_i, oq_f, oq_end, mp, mi, rng,
                       tiers, af, ai, pf, oi, of, fi, ff, ei, series, pos_series)
    nf = 0
    ne = 0
    for p in range(af.shape[0]):
        nf = max(nf, ai[p, E.AI_NFILL])
        ne = max(ne, ai[p, E.AI_NEV])
    return nf, ne


@njit(cache=True)
def pack_fills_nb(fi, ff, ai, out_i, out_f):
    """Fill rows of every portfolio (portfolio order) into an int64 / float64 view pair of a FILL_DTYPE
    buffer; returns the count. The streaming engine's per-bar record wrap, without NumPy fancy indexing."""
    n = 0
    for p in range(ai.shape[0]):
        for j in range(min(ai[p, E.AI_NFILL], fi.shape[1])):
            out_i[n, 0] = p
            out_i[n, 1] = fi[p, j, E.FI_SYM]
            out_i[n, 2] = fi[p, j, E.FI_BAR]
            out_i[n, 3] = fi[p, j, E.FI_TS]
            out_i[n, 4] = fi[p, j, E.FI_ID]
            out_i[n, 5] = fi[p, j, E.FI_SIDE]
            out_f[n, 6] = ff[p, j, E.FF_QTY]
            out_f[n, 7] = ff[p, j, E.FF_PRICE]
            out_f[n, 8] = ff[p, j, E.FF_FEE]
            out_f[n, 9] = ff[p, j, E.FF_SLIP]
            out_i[n, 10] = fi[p, j, E.FI_ROLE]
            out_i[n, 11] = fi[p, j, E.FI_REASON]
            out_i[n, 12] = fi[p, j, E.FI_TYPE]
            n += 1
    return n


@njit(cache=True)
def pack_events_nb(ei, ai, out_i):
    """Event rows of every portfolio into the int64 view of an EVENT_DTYPE buffer; returns the count."""
    n = 0
    for p in range(ai.shape[0]):
        for j in range(min(ai[p, E.AI_NEV], ei.shape[1])):
            out_i[n, 0] = p
            for c in range(E.N_EI):
                out_i[n, 1 + c] = ei[p, j, c]
            n += 1
    return n
