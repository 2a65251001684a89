"""Constants, record dtypes and flat-array field indices of the simulation core.

Everything here is usable inside Numba kernels (CPU and CUDA): enums are NamedTuple instances of
plain ints (vectorbt style), field indices are module-level ints. Records leave the kernels as
plain int64/float64 matrices and are wrapped into the structured dtypes below once, on the host.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# ############# Enums ############# #


class SideT(NamedTuple):
    BUY: int = 0
    SELL: int = 1


Side = SideT()


class OrderTypeT(NamedTuple):
    MARKET: int = 0
    LIMIT: int = 1
    STOP: int = 2
    STOP_LIMIT: int = 3
    TRAILING_STOP: int = 4  # absolute offset (trail_amount)
    TRAILING_STOP_PCT: int = 5  # fractional offset (trail_pct, 0.02 = 2 %)
    TAKE_PROFIT: int = 6  # market-if-touched in the favourable direction
    MARKET_ON_CLOSE: int = 7  # fills at the close of its active bar


OrderType = OrderTypeT()


class TimeInForceT(NamedTuple):
    GTC: int = 0
    IOC: int = 1
    FOK: int = 2
    GTD: int = 3


TimeInForce = TimeInForceT()


class SizeModeT(NamedTuple):
    QTY: int = 0  # qty is a quantity
    ALL_IN: int = 1  # spend all cash (buy) / all equity as short notional (sell), sized at first fill
    RISK: int = 2  # size * equity / (price * model.risk_stop_pct), sized at first fill
    CLOSE: int = 3  # the whole current position of the symbol, sized at first fill


SizeMode = SizeModeT()


class ActionT(NamedTuple):
    NEW: int = 0
    CANCEL: int = 1
    REPLACE: int = 2


Action = ActionT()


class RoleT(NamedTuple):
    MAKER: int = 0
    TAKER: int = 1


Role = RoleT()


class RejectReasonT(NamedTuple):
    NONE: int = 0
    NO_CASH: int = 1
    MIN_NOTIONAL: int = 2
    LOT_SIZE: int = 3
    TICK_SIZE: int = 4
    RATE_LIMIT: int = 5
    RANDOM: int = 6
    FOK_UNFILLABLE: int = 7
    BOOK_FULL: int = 8
    INVALID: int = 9
    SHORT_NOT_ALLOWED: int = 10
    NO_MARGIN: int = 11
    UNKNOWN_ORDER: int = 12


RejectReason = RejectReasonT()


class EventKindT(NamedTuple):
    """Order life-cycle events (NautilusTrader naming: <Entity><PastTense>)."""

    ACCEPTED: int = 0
    REJECTED: int = 1
    CANCELED: int = 2
    EXPIRED: int = 3
    FILLED: int = 4  # completely filled
    TRIGGERED: int = 5  # stop-limit became a limit
    REPLACED: int = 6


EventKind = EventKindT()


class FillReasonT(NamedTuple):
    """Where on the bar a fill happened and why."""

    OPEN: int = 0  # market order at the open
    GAP: int = 1  # stop/take-profit/limit executed at the open because the bar gapped through it
    INTRABAR: int = 2  # level touched along the intra-bar path
    CLOSE: int = 3  # market-on-close / same-bar close signal


FillReason = FillReasonT()


class OrderStatusT(NamedTuple):
    FREE: int = 0
    PENDING: int = 1  # accepted, waiting for latency
    ACTIVE: int = 2
    WAIT_PARENT: int = 3  # bracket child waiting for its parent's fill


OrderStatus = OrderStatusT()

# ############# Record dtypes ############# #

FILL_DTYPE = np.dtype(
    [("portfolio", np.int64), ("symbol", np.int64), ("bar", np.int64), ("ts", np.int64),
     ("order_id", np.int64), ("side", np.int64), ("qty", np.float64), ("price", np.float64),
     ("fee", np.float64), ("slippage_cost", np.float64), ("role", np.int64), ("reason", np.int64),
     ("order_type", np.int64)],
    align=True,
)

EVENT_DTYPE = np.dtype(
    [("portfolio", np.int64), ("symbol", np.int64), ("bar", np.int64), ("ts", np.int64),
     ("order_id", np.int64), ("kind", np.int64), ("reason", np.int64)],
    align=True,
)

ORDER_DTYPE = np.dtype(
    [("portfolio", np.int64), ("bar", np.int64), ("action", np.int64), ("order_id", np.int64),
     ("symbol", np.int64), ("type", np.int64), ("side", np.int64), ("tif", np.int64),
     ("size_mode", np.int64), ("qty", np.float64), ("limit_price", np.float64),
     ("stop_price", np.float64), ("trail_amount", np.float64), ("trail_pct", np.float64),
     ("expire_bars", np.int64), ("expire_ts", np.int64), ("sl_price", np.float64),
     ("tp_price", np.float64)],
    align=True,
)
"""One order instruction. ``bar``: the first bar it may act on (it arrives before that bar's
open). ``order_id`` 0 lets the engine assign one. ``expire_bars``/``expire_ts`` 0 = none.
``sl_price``/``tp_price`` > 0 turn a NEW order into a bracket. CANCEL/REPLACE use ``order_id``
as the target; REPLACE takes the non-zero ones of qty/limit_price/stop_price."""

assert FILL_DTYPE.itemsize == 8 * len(FILL_DTYPE.names or ()) and EVENT_DTYPE.itemsize == 8 * len(EVENT_DTYPE.names or ())

# ############# Flat-array field indices (kernel layout) ############# #

# model float params mp[]
MP_SPREAD_BPS, MP_SLIP_BPS, MP_IMPACT, MP_PART, MP_TOUCH, MP_REJECT, MP_TICK, MP_LOT, MP_MIN_NOTIONAL, \
    MP_MARGIN, MP_BORROW, MP_LAT_A, MP_LAT_B, MP_RISK_STOP = range(14)
N_MP = 14
# model int params mi[]
MI_FILL_NEXT, MI_LAT_KIND, MI_RATE_MAX, MI_RATE_BARS, MI_N_TIERS, MI_ALLOW_SHORT, MI_SERIES, \
    MI_POS_SERIES, MI_N_BLOCKS = range(9)
N_MI = 9
LAT_NONE, LAT_FIXED, LAT_UNIFORM, LAT_EXP = 0, 1, 2, 3

# account floats af[P, .]
AF_CASH, AF_VOL30, AF_FEES, AF_BORROW = range(4)
AF_DAYVOL = 4  # 30 daily traded-notional buckets follow
N_DAYS = 30
N_AF = AF_DAYVOL + N_DAYS
# account ints ai[P, .]
AI_NFILL, AI_NEV, AI_NEXT_ID, AI_RNG, AI_RATE_WIN, AI_RATE_CNT, AI_NOPEN, AI_DAY, AI_TIER, AI_OQ, \
    AI_SEQ, AI_SIGPEND, AI_SIGTGT = range(13)
AI_DAYID = 13
N_AI = AI_DAYID + N_DAYS
# positions pf[P, S, .]
PF_QTY, PF_AVG, PF_REAL, PF_USED, PF_LAST = range(5)
N_PF = 5
# order book oi[P, K, .]
OI_STATUS, OI_ID, OI_SYM, OI_TYPE, OI_SIDE, OI_TIF, OI_ACTIVE, OI_EXP_BAR, OI_EXP_TS, OI_PARENT, \
    OI_OCO, OI_SIZEMODE, OI_SEQ, OI_FIRST, OI_TRIG, OI_SIGNAL = range(16)
N_OI = 16
# order book of[P, K, .]
OF_QTY, OF_FILLED, OF_LIMIT, OF_STOP, OF_TRAIL, OF_TRAIL_PCT, OF_REF, OF_SIZE, OF_SL, OF_TP = range(10)
N_OF = 10
# fills fi/ff[P, C, .]
FI_SYM, FI_BAR, FI_TS, FI_ID, FI_SIDE, FI_ROLE, FI_REASON, FI_TYPE = range(8)
N_FI = 8
FF_QTY, FF_PRICE, FF_FEE, FF_SLIP = range(4)
N_FF = 4
# events ei[P, C, .]
EI_SYM, EI_BAR, EI_TS, EI_ID, EI_KIND, EI_REASON = range(6)
N_EI = 6
# order queue oq_i/oq_f[N, .] (ORDER_DTYPE in flat form)
QI_PORT, QI_BAR, QI_ACTION, QI_ID, QI_SYM, QI_TYPE, QI_SIDE, QI_TIF, QI_SIZEMODE, QI_EXP_BARS, \
    QI_EXP_TS = range(11)
N_QI = 11
QF_QTY, QF_LIMIT, QF_STOP, QF_TRAIL, QF_TRAIL_PCT, QF_SL, QF_TP = range(7)
N_QF = 7
# bars[., T, S] (one (T, S) plane per field)
B_OPEN, B_HIGH, B_LOW, B_CLOSE, B_VOLUME = range(5)
N_B = 5
# series[T, P, .]
SE_EQUITY, SE_CASH, SE_POS = range(3)
N_SE = 3
