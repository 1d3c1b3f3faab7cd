"""The 95% Wilson score interval every reported success rate carries (para_ros.core.stats)."""

from __future__ import annotations

import pytest

from para_ros.core.stats import format_rate, rate, wilson_interval


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (score, no CC)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # symmetric and boundary cases: 5/10 and 0/10 (the upper end is z²/(n + z²))
        (5, 10, 0.2366, 0.7634),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
    ],
)
def test_wilson_matches_published_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=5e-5) and hi == pytest.approx(high, abs=5e-5)


def test_wilson_agrees_with_scipy_everywhere_on_a_grid():
    from scipy.stats import binomtest

    for n in (1, 2, 7, 30, 50, 64, 120):
        for k in range(n + 1):
            ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
            lo, hi = wilson_interval(k, n)
            assert lo == pytest.approx(ref.low, abs=1e-9) and hi == pytest.approx(
                ref.high, abs=1e-9
            )
            assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_rate_record_and_text():
    r = rate(39, 50)
    assert r["k"] == 39 and r["n"] == 50 and r["rate"] == pytest.approx(0.78)
    assert r["ci95"] == pytest.approx(list(wilson_interval(39, 50)))
    assert format_rate(39, 50) == "39/50 = 78% [65–87%]"
    assert rate(0, 0)["ci95"] == [0.0, 1.0] and "not measured" in format_rate(0, 0)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_interval(3, 2)
