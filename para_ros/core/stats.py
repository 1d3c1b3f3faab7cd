"""Success rates with their uncertainty (pure Python): every rate the evaluation tools and the
model card report goes through `rate`, so each carries N and a 95% Wilson score interval.

Wilson (1927) score interval for k successes in n trials at normal quantile z:

    centre = (k + z²/2) / (n + z²),  half = z·√(k(n−k)/n + z²/4) / (n + z²)

It stays inside [0, 1] and behaves at 0/n and n/n, where the normal (Wald) interval collapses.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval for `k` successes of `n` (fractions in [0, 1]).

    n = 0 gives (0.0, 1.0): nothing is known. Raises ValueError unless 0 <= k <= n."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    z2 = z * z
    centre = (k + z2 / 2) / (n + z2)
    half = z * math.sqrt(k * (n - k) / n + z2 / 4) / (n + z2)
    # exact ends at 0/n and n/n (the formula gives them up to rounding)
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def rate(k: int, n: int) -> dict:
    """{"k", "n", "rate", "ci95": [low, high]}: a success rate with N and its 95% interval
    (fractions; rate is 0.0 when n = 0)."""
    lo, hi = wilson_interval(k, n)
    return {"k": int(k), "n": int(n), "rate": k / n if n else 0.0, "ci95": [lo, hi]}


def format_rate(k: int, n: int) -> str:
    """'7/13 = 54% [29–77%]' (the 95% Wilson interval in brackets); 'n=0' when nothing ran."""
    if n == 0:
        return "0/0 (not measured)"
    lo, hi = wilson_interval(k, n)
    return f"{k}/{n} = {100 * k / n:.0f}% [{100 * lo:.0f}–{100 * hi:.0f}%]"
