"""Scalar rules of the simulation core: costs, venue checks, the order book and fills.

Contract (vectorbt style): NumPy arrays and Numba types only, no Python objects, no allocation
inside the rules. Every rule here (and in ``bar``) is a plain scalar function compiled with
``@rule`` (``njit(cache=True)`` for an explicit signature) for the CPU; ``trading_core.engine.cuda``
compiles the *same* Python source (``f.py_func``) a second time with ``numba.cuda.jit(device=True)``.
So the rules must stay CUDA-safe: no raise, no array creation, no prange, no objects; state lives
in the flat arrays described in ``enums``. The trunk of a bar (``bar.run_block_nb`` -> ``step_nb`` ->
``match_point_nb`` / ``process_queue_nb`` / ``signal_nb`` -> ``fill_slot_nb`` / ``submit_nb``) passes
them as two packs (``packs``): ``m`` (``Market``, the read-only inputs) and ``b`` (``Book``, the
mutable state and records), after its scalars. Leaf rules take the few arrays they touch: Numba
passes a pack as all of its arrays' fields, so a pack at every leaf call made a cold start ~13 %
slower.

Floating-point note: the CPU kernel, the CUDA kernel and ``reference.py`` perform the arithmetic in
the same order, so results agree to the last bit on the same platform.
"""

from __future__ import annotations

import math

from numba import njit
from numba import types as nt

from trading_core.engine import enums as E
from trading_core.engine.packs import (  # noqa: F401 - re-exported: the rules' types live in packs
    B2,
    BOOK_T,
    F0,
    F1,
    F2,
    F3,
    I0,
    I1,
    I2,
    I3,
    MARKET_T,
    MP,
    TIERS,
    Book,
    Market,
)

# ############# Explicit signatures ############# #
# Every rule is compiled once, for one signature, when this module is imported (or loaded from the
# on-disk cache). Without them Numba compiles a rule again for every distinct combination of
# literal constants its callers pass (``_write_slot_nb`` alone had six versions), which made the
# first compile take minutes. Each rule states its parameter types in order; ``rule`` refuses a
# list whose length differs from the parameter list, so a new parameter cannot get a guessed type.

# The array and scalar types, and the two packs every multi-array rule takes (``m``: the read-only
# ``Market``, ``b``: the mutable ``Book``), are defined in ``packs``.


def rule(*argtypes: nt.Type, inline: bool = False, host: bool = True):
    """``@njit(cache=True)`` for exactly the given parameter types (one per parameter, in order).

    ``inline=True`` makes Numba inline the rule's body into its njit callers (``inline="always"``), so
    a hot call passes no arguments; kept to the signal path (``signal_nb`` and the fused fill):
    inlining the small leaf rules everywhere made a cold compile take minutes for no measured gain.

    ``host=False``: the rule is only called from compiled code, so it gets no CPython (and no cfunc)
    wrapper. A wrapper unboxes every parameter (a ``Market`` / ``Book`` pack: every array of it) and is
    optimised again in the module of every compiled caller; the engine's rules and bar functions drop
    theirs, which kept the cold compile of the packed signatures no slower than the flat ones."""

    def deco(f):
        n = f.__code__.co_argcount
        if len(argtypes) != n:
            raise TypeError(f"rule {f.__name__}: {len(argtypes)} types for {n} parameters")
        return njit(tuple(argtypes), cache=True, _nrt=False, inline="always" if inline else "never",
                    no_cpython_wrapper=not host, no_cfunc_wrapper=not host)(f)

    return deco


# ############# Small helpers ############# #


@rule(I0, F2, I2, host=False)
def draw_nb(p, rng, ai):
    """Next seeded uniform of portfolio ``p`` (host-drawn pool, cursor wraps)."""
    k = ai[p, E.AI_RNG]
    u = rng[p, k % rng.shape[1]]
    ai[p, E.AI_RNG] = k + 1
    return u


@rule(F0, F0, host=False)
def floor_lot_nb(q, lot):
    if lot > 0.0:
        return math.floor(q / lot + 1e-9) * lot
    return q


@rule(F0, F0, host=False)
def off_grid_nb(x, step):
    """True when ``x`` is not a multiple of ``step`` (relative tolerance 1e-9)."""
    if step <= 0.0:
        return False
    r = x / step
    return abs(r - math.floor(r + 0.5)) > 1e-9 * max(1.0, abs(r))


@rule(I0, I2, I3, I0, I0, I0, I0, I0, I0, host=False)
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


@rule(I0, I0, TIERS, I2, host=False)
def fee_rate_nb(p, role, tiers, ai):
    tier = ai[p, E.AI_TIER]
    if role == E.Role.MAKER:
        return tiers[p, tier, 1] * 1e-4
    return tiers[p, tier, 2] * 1e-4


@rule(I0, F0, I0, F0, F0, F0, MP, host=False)
def taker_price_nb(p, base, side, q, vol_bar, sig, mp):
    """Half spread + fixed bps + square-root impact (coef * sigma * sqrt(q / bar volume))."""
    frac = (mp[p, E.MP_SPREAD_BPS] * 0.5 + mp[p, E.MP_SLIP_BPS]) * 1e-4
    if mp[p, E.MP_IMPACT] > 0.0 and vol_bar > 0.0 and q > 0.0:
        frac = frac + mp[p, E.MP_IMPACT] * sig * math.sqrt(q / vol_bar)
    if side == E.Side.BUY:
        return base * (1.0 + frac)
    return base * (1.0 - frac)


@rule(I0, F2, F3, host=False)
def equity_nb(p, af, pf):
    eq = af[p, E.AF_CASH]
    for s in range(pf.shape[1]):
        eq = eq + pf[p, s, E.PF_QTY] * pf[p, s, E.PF_LAST]
    return eq


@rule(I0, I0, I1, TIERS, F2, I2, host=False)
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
        if vol >= tiers[p, j, 0]:
            tier = j
    ai[p, E.AI_TIER] = tier


@rule(I0, I0, F0, F2, I2, host=False)
def add_day_volume_nb(p, ts, notional, af, ai):
    day = ts // 86_400_000
    i = day % E.N_DAYS
    if ai[p, E.AI_DAYID + i] != day:
        ai[p, E.AI_DAYID + i] = day
        af[p, E.AF_DAYVOL + i] = 0.0
    af[p, E.AF_DAYVOL + i] = af[p, E.AF_DAYVOL + i] + notional


@rule(I0, I0, I0, F0, F0, F0, F2, F3, host=False)
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


@rule(I0, I0, I3, host=False)
def find_slot_nb(p, oid, oi):
    for k in range(oi.shape[1]):
        if oi[p, k, E.OI_STATUS] != E.OrderStatus.FREE and oi[p, k, E.OI_ID] == oid:
            return k
    return -1


@rule(I0, I0, I3, I2, host=False)
def free_slot_nb(p, k, oi, ai):
    if oi[p, k, E.OI_SIGNAL] == 1:
        ai[p, E.AI_SIGPEND] = ai[p, E.AI_SIGPEND] - 1
    oi[p, k, E.OI_STATUS] = E.OrderStatus.FREE
    ai[p, E.AI_NOPEN] = ai[p, E.AI_NOPEN] - 1


@rule(I0, I0, F0, I0, I0, I3, F3, I2, I3, host=False)
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


@rule(I0, I0, I0, I0, I0, I0, I3, F3, I2, I3, host=False)
def close_slot_nb(p, k, kind, reason, bar, ts, oi, of, ai, ei):
    """Retire an order (cancelled, expired, rejected): log it, settle bracket children, free the slot."""
    oid = oi[p, k, E.OI_ID]
    event_nb(p, ai, ei, oi[p, k, E.OI_SYM], bar, ts, oid, kind, reason)
    release_children_nb(p, oid, of[p, k, E.OF_FILLED], bar, ts, oi, of, ai, ei)
    free_slot_nb(p, k, oi, ai)


@rule(I0, MP, I1, F2, I2, host=False)
def latency_bars_nb(p, mp, mi, rng, ai):
    kind = mi[E.MI_LAT_KIND]
    if kind == E.LAT_NONE:
        return 0
    if kind == E.LAT_FIXED:
        lat = mp[p, E.MP_LAT_A]
    elif kind == E.LAT_UNIFORM:
        u = draw_nb(p, rng, ai)
        lat = mp[p, E.MP_LAT_A] + u * (mp[p, E.MP_LAT_B] - mp[p, E.MP_LAT_A])
    else:
        u = draw_nb(p, rng, ai)
        lat = mp[p, E.MP_LAT_A] - mp[p, E.MP_LAT_B] * math.log(1.0 - u)
    return int(math.floor(lat))


@rule(I0, I0, I0, I0, F0, F0, F0, F0, F0, F0, F0, F0, MP, I1, F2, I2, host=False)
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
    tick = mp[p, E.MP_TICK]
    if off_grid_nb(lim, tick) or off_grid_nb(stop, tick) or off_grid_nb(sl, tick) or off_grid_nb(tp, tick):
        return E.RejectReason.TICK_SIZE
    if sm == E.SizeMode.QTY:
        if off_grid_nb(qty, mp[p, E.MP_LOT]):
            return E.RejectReason.LOT_SIZE
        if mp[p, E.MP_MIN_NOTIONAL] > 0.0:
            px = ref_px
            if lim > 0.0:
                px = lim
            elif stop > 0.0:
                px = stop
            if qty * px < mp[p, E.MP_MIN_NOTIONAL]:
                return E.RejectReason.MIN_NOTIONAL
    if mp[p, E.MP_REJECT] > 0.0 and draw_nb(p, rng, ai) < mp[p, E.MP_REJECT]:
        return E.RejectReason.RANDOM
    return E.RejectReason.NONE


@rule(I0, I0, I0, I0, I0, I0, I0, I0, I0, I0, I0, I0, I0, I0, I0, F0, F0, F0, F0, F0, F0, F0, F0, I0, I3, F3, I2, host=False)
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


@rule(I0, I0, I0, I0, I0, I0, I0, I0, I0, I0, F0, F0, F0, F0, F0, I0, I0, F0, F0, F0, I0, F0, MARKET_T, BOOK_T, host=False)
def submit_nb(p, arrival, bar, ts, oid, sym, typ, side, tif, sm, qty, lim, stop, trail, trail_pct,
              exp_bars, exp_ts, sl, tp, size, is_signal, ref_px, m, b):
    """Validate and place a NEW order (and its bracket children); returns its slot or -1."""
    mp, mi, rng = m.mp, m.mi, m.rng
    ai, oi, of, ei = b.ai, b.oi, b.of, b.ei
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

@rule(I0, I0, I0, I0, F0, F0, I0, MP, TIERS, F2, I2, F3, host=False)
def size_qty_nb(p, sm, s, side, size, px_est, role, mp, tiers, af, ai, pf):
    """Quantity of an ALL_IN / RISK / CLOSE order (``size``: RISK's equity fraction), decided at its
    first fill attempt with the price of that moment."""
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
            q = size * eq / (px_est * mp[p, E.MP_RISK_STOP])
    q = floor_lot_nb(q, mp[p, E.MP_LOT])
    if q < 0.0:
        q = 0.0
    return q


@rule(I0, I0, F0, F0, MP, host=False)
def size_reject_nb(p, sm, q0, px_est, mp):
    """Why a sized quantity cannot be placed (NONE when it can)."""
    if q0 <= 0.0:
        if sm == E.SizeMode.CLOSE:
            return E.RejectReason.INVALID
        return E.RejectReason.NO_CASH
    if mp[p, E.MP_MIN_NOTIONAL] > 0.0 and q0 * px_est < mp[p, E.MP_MIN_NOTIONAL]:
        return E.RejectReason.MIN_NOTIONAL
    return E.RejectReason.NONE


@rule(I0, I0, I0, F0, F0, F0, MP, I1, F2, F3, host=False)
def cap_qty_nb(p, s, side, q, px, fee_rate, mp, mi, af, pf):
    """Cap ``q`` to what cash (buy) or the long position / short margin (sell) allows; returns the
    capped quantity and the RejectReason that capped it (NONE when uncapped)."""
    lot = mp[p, E.MP_LOT]
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
                room = eq / (px * mp[p, E.MP_MARGIN]) - max(-pos, 0.0)
                allowed = long_part + max(room, 0.0)
                if q > allowed:
                    q = floor_lot_nb(allowed, lot)
                    capped = E.RejectReason.NO_MARGIN
    return q, capped


@rule(I0, I0, I0, I0, I0, I0, I0, I0, I0, F0, F0, F0, F0, I1, F2, I2, F3, I3, F3, host=False)
def execute_nb(p, s, bar, ts, oid, side, role, reason, typ, q, px, base, fee_rate, mi, af, ai, pf, fi, ff):
    """Book one execution: cash and position, the fill record, the 30-day volume and the bar's used
    volume; returns its notional."""
    fee = q * px * fee_rate
    notional = apply_fill_nb(p, s, side, q, px, fee, af, pf)
    n = ai[p, E.AI_NFILL]
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
    return notional


# ############# Fills ############# #


@rule(I0, I0, F0, I0, I0, I0, I0, I0, MARKET_T, BOOK_T, host=False)
def fill_slot_nb(p, k, base, role, reason, t_row, bar, ts, m, b):
    """Execute as much of order ``k`` as the bar, cash and margin allow at ``base``; returns the qty."""
    bars, sigma, mp, mi, tiers = m.bars, m.sigma, m.mp, m.mi, m.tiers
    af, ai, pf, oi, of, fi, ff, ei = b.af, b.ai, b.pf, b.oi, b.of, b.fi, b.ff, b.ei
    s = oi[p, k, E.OI_SYM]
    side = oi[p, k, E.OI_SIDE]
    typ = oi[p, k, E.OI_TYPE]
    tif = oi[p, k, E.OI_TIF]
    lot = mp[p, E.MP_LOT]
    vol_bar = bars[E.B_VOLUME][t_row, s]
    sig = 0.0
    if mp[p, E.MP_IMPACT] > 0.0:
        sig = sigma[t_row, s]
    sm = oi[p, k, E.OI_SIZEMODE]
    if sm != E.SizeMode.QTY and of[p, k, E.OF_QTY] <= 0.0:
        px_est = base
        if role == E.Role.TAKER:
            px_est = taker_price_nb(p, base, side, 0.0, vol_bar, sig, mp)
        q0 = size_qty_nb(p, sm, s, side, of[p, k, E.OF_SIZE], px_est, role, mp, tiers, af, ai, pf)
        rr = size_reject_nb(p, sm, q0, px_est, mp)
        if rr != E.RejectReason.NONE:
            close_slot_nb(p, k, E.EventKind.REJECTED, rr, bar, ts, oi, of, ai, ei)
            return 0.0
        of[p, k, E.OF_QTY] = q0
    want = of[p, k, E.OF_QTY] - of[p, k, E.OF_FILLED]
    q = want
    if mp[p, E.MP_PART] > 0.0:
        avail = mp[p, E.MP_PART] * vol_bar - pf[p, s, E.PF_USED]
        if avail < q:
            q = floor_lot_nb(max(avail, 0.0), lot)
    if q <= 0.0:
        if tif == E.TimeInForce.FOK:
            close_slot_nb(p, k, E.EventKind.REJECTED, E.RejectReason.FOK_UNFILLABLE, bar, ts, oi, of, ai, ei)
        return 0.0
    px = base
    if role == E.Role.TAKER:
        px = taker_price_nb(p, base, side, q, vol_bar, sig, mp)
        if typ == E.OrderType.LIMIT or typ == E.OrderType.STOP_LIMIT:
            lim = of[p, k, E.OF_LIMIT]
            if side == E.Side.BUY and px > lim or side == E.Side.SELL and px < lim:
                px = lim
    fee_rate = fee_rate_nb(p, role, tiers, ai)
    q, capped = cap_qty_nb(p, s, side, q, px, fee_rate, mp, mi, af, pf)
    if tif == E.TimeInForce.FOK and q < want:
        close_slot_nb(p, k, E.EventKind.REJECTED, E.RejectReason.FOK_UNFILLABLE, bar, ts, oi, of, ai, ei)
        return 0.0
    if q <= 0.0:
        close_slot_nb(p, k, E.EventKind.REJECTED, capped, bar, ts, oi, of, ai, ei)
        return 0.0
    oid = oi[p, k, E.OI_ID]
    execute_nb(p, s, bar, ts, oid, side, role, reason, typ, q, px, base, fee_rate, mi, af, ai, pf, fi, ff)
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


@rule(I0, I0, F0, I0, I0, F0, I0, I0, I0, MARKET_T, BOOK_T, inline=True, host=False)
def signal_fill_nb(p, sm, size, side, s, c, t_row, bar, ts, m, b):
    """A close-fill market signal on an empty book, as one fused update: exactly what ``submit_nb``
    followed by ``fill_slot_nb`` at the close does for such an order (same checks, draws, ids,
    events, fills and arithmetic, in the same order), without writing, scanning or freeing
    order-book slots.

    Valid only when the order can neither wait nor rest -- fill at the close, no latency, no
    participation cap -- and no other order is live (so slot 0 is free and no bracket child or
    OCO sibling exists); the caller checks."""
    bars, sigma, mp, mi, rng, tiers = m.bars, m.sigma, m.mp, m.mi, m.rng, m.tiers
    af, ai, pf, fi, ff, ei = b.af, b.ai, b.pf, b.fi, b.ff, b.ei
    qty = size if sm == E.SizeMode.QTY else 0.0
    oid = ai[p, E.AI_NEXT_ID]
    ai[p, E.AI_NEXT_ID] = oid + 1
    reason = validate_nb(p, bar, E.OrderType.MARKET, sm, qty, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, c, mp, mi, rng, ai)
    if reason != E.RejectReason.NONE:
        event_nb(p, ai, ei, s, bar, ts, oid, E.EventKind.REJECTED, reason)
        return
    ai[p, E.AI_SEQ] = ai[p, E.AI_SEQ] + 3
    event_nb(p, ai, ei, s, bar, ts, oid, E.EventKind.ACCEPTED, 0)
    vol_bar = bars[E.B_VOLUME][t_row, s]
    sig = 0.0
    if mp[p, E.MP_IMPACT] > 0.0:
        sig = sigma[t_row, s]
    order_qty = qty
    if sm != E.SizeMode.QTY:
        px_est = taker_price_nb(p, c, side, 0.0, vol_bar, sig, mp)
        order_qty = size_qty_nb(p, sm, s, side, size, px_est, E.Role.TAKER, mp, tiers, af, ai, pf)
        rr = size_reject_nb(p, sm, order_qty, px_est, mp)
        if rr != E.RejectReason.NONE:
            event_nb(p, ai, ei, s, bar, ts, oid, E.EventKind.REJECTED, rr)
            return
    q = order_qty - 0.0
    if q <= 0.0:  # pragma: no cover - validated (QTY) or sized (> 0) above
        return
    px = taker_price_nb(p, c, side, q, vol_bar, sig, mp)
    fee_rate = fee_rate_nb(p, E.Role.TAKER, tiers, ai)
    q, capped = cap_qty_nb(p, s, side, q, px, fee_rate, mp, mi, af, pf)
    if q <= 0.0:
        event_nb(p, ai, ei, s, bar, ts, oid, E.EventKind.REJECTED, capped)
        return
    execute_nb(p, s, bar, ts, oid, side, E.Role.TAKER, E.FillReason.CLOSE, E.OrderType.MARKET, q, px, c, fee_rate,
               mi, af, ai, pf, fi, ff)
    if order_qty - (0.0 + q) <= 1e-9 * order_qty:
        event_nb(p, ai, ei, s, bar, ts, oid, E.EventKind.FILLED, 0)
    elif capped != E.RejectReason.NONE:
        event_nb(p, ai, ei, s, bar, ts, oid, E.EventKind.CANCELED, capped)
