"""Volume profile, pivots, support/resistance and Fibonacci against slow, obvious references."""

from __future__ import annotations

import numpy as np
import polars as pl

from trading_core.features import levels

N = 700  # bars of real data compared (the references are O(n^2) Python)


def arrays(bars: pl.DataFrame, n: int = N) -> tuple[np.ndarray, ...]:
    b = bars.tail(n)
    return tuple(b[c].to_numpy().astype(float) for c in ("high", "low", "close", "volume"))


def ref_volume_profile(h, lo, c, v, n, bins, va):  # noqa: ANN001, ANN201
    out = np.full((len(c), 3), np.nan)
    for t in range(n - 1, len(c)):
        sl = slice(t - n + 1, t + 1)
        top, bot, total = h[sl].max(), lo[sl].min(), v[sl].sum()
        if not (top > bot and total > 0):
            continue
        width = (top - bot) / bins
        hist = [0.0] * bins
        for j in range(t - n + 1, t + 1):
            b = min(max(int(((h[j] + lo[j] + c[j]) / 3 - bot) / width), 0), bins - 1)
            hist[b] += v[j]
        p = hist.index(max(hist))
        a = b_ = p
        acc = hist[p]
        while acc < va * total and (a > 0 or b_ < bins - 1):
            up = hist[b_ + 1] if b_ < bins - 1 else -1
            dn = hist[a - 1] if a > 0 else -1
            if up >= dn:
                b_ += 1
                acc += up
            else:
                a -= 1
                acc += dn
        out[t] = (bot + (p + 0.5) * width, bot + (b_ + 1) * width, bot + a * width)
    return out


def test_volume_profile_matches_reference(spx: pl.DataFrame, btc: pl.DataFrame) -> None:
    for bars in (spx, btc):
        h, lo, c, v = arrays(bars)
        poc, vah, val = levels.volume_profile(h, lo, c, v, 100, 24, 0.7)
        ref = ref_volume_profile(h, lo, c, v, 100, 24, 0.7)
        np.testing.assert_allclose(np.c_[poc, vah, val], ref, rtol=1e-12, equal_nan=True)
        ok = ~np.isnan(poc)
        assert ok.sum() == len(c) - 99
        assert (val[ok] <= poc[ok]).all() and (poc[ok] <= vah[ok]).all()


def test_volume_profile_is_nan_without_volume(spx: pl.DataFrame) -> None:
    h, lo, c, _ = arrays(spx, 200)
    assert np.isnan(levels.volume_profile(h, lo, c, np.zeros_like(c), 50)[0]).all()


def ref_pivots(h, lo, k):  # noqa: ANN001, ANN201
    ph = [k <= i < len(h) - k and h[i] > max(h[i - k:i]) and h[i] >= max(h[i + 1:i + k + 1])
          for i in range(len(h))]
    pl_ = [k <= i < len(h) - k and lo[i] < min(lo[i - k:i]) and lo[i] <= min(lo[i + 1:i + k + 1])
           for i in range(len(h))]
    return np.array(ph), np.array(pl_)


def test_pivots_support_resistance_and_fibonacci_match_reference(spx: pl.DataFrame) -> None:
    h, lo, c, _ = arrays(spx)
    k, n, tol = 5, 250, 0.01
    ph, pl_ = levels.swing_pivots(h, lo, k)
    rph, rpl = ref_pivots(h, lo, k)
    assert (ph == rph).all() and (pl_ == rpl).all() and ph.sum() > 10
    sup, res = levels.support_resistance(h, lo, c, k, n, tol, 1)
    fib = levels.fibonacci(h, lo, k, n)
    for t in range(len(c)):
        idx = [i for i in range(max(0, t - n + 1), t - k + 1)]
        prices = sorted([h[i] for i in idx if ph[i]] + [lo[i] for i in idx if pl_[i]])
        clusters: list[list[float]] = []
        for p in prices:
            if clusters and p <= np.mean(clusters[-1]) * (1 + tol):
                clusters[-1].append(p)
            else:
                clusters.append([p])
        lv = [float(np.mean(g)) for g in clusters]
        below = [x for x in lv if x <= c[t]]
        above = [x for x in lv if x > c[t]]
        np.testing.assert_allclose(sup[t], below[-1] if below else np.nan, rtol=1e-12)
        np.testing.assert_allclose(res[t], above[0] if above else np.nan, rtol=1e-12)
        highs = [i for i in range(0, t - k + 1) if ph[i]]
        lows = [i for i in range(0, t - k + 1) if pl_[i]]
        if not highs or not lows or highs[-1] <= t - n or lows[-1] <= t - n:
            assert np.isnan(fib[t]).all()
            continue
        H, L = h[highs[-1]], lo[lows[-1]]
        want = [H - r * (H - L) if highs[-1] > lows[-1] else L + r * (H - L) for r in levels.FIB_RATIOS]
        np.testing.assert_allclose(fib[t], want, rtol=1e-12)
