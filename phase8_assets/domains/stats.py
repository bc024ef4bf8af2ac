"""The few distribution functions and tests the performance gate needs, in plain Python.

Student's t (survival function and quantile), the normal quantile, Welch's t-test and the
Mann-Whitney U test, computed as SciPy computes them (same statistics, same choice between the
exact and the normal-approximation U test, same tie and continuity corrections), so that a gate
run does not import ``scipy.stats``: that import alone was half a second of every ``phase8 gate``.
``phase8_assets_tests/domains/test_stats.py`` holds these to SciPy's values over generated inputs.

The t distribution goes through the regularized incomplete beta function, evaluated by its
continued fraction (Lentz's method) on whichever side converges, with the prefactor computed in
logs, so that tail probabilities keep their relative accuracy (p-values of 1e-30 are compared,
after Bonferroni, against thresholds such as 1e-3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from statistics import NormalDist

_TINY = 1e-300
_EPS = 1e-16
_NORMAL = NormalDist()


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (converges fast for x < (a + 1) / (a + b + 2))."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            step = d * c
            h *= step
        if abs(step - 1.0) < _EPS:
            break
    return h


def _log_beta_half(a: float) -> float:
    """ln B(a, 1/2). For large ``a`` the difference lgamma(a) - lgamma(a + 1/2) of two large numbers
    would lose digits, so it comes from the asymptotic series of Gamma(a + 1/2) / Gamma(a)."""
    if a < 1000:
        return math.lgamma(a) + math.lgamma(0.5) - math.lgamma(a + 0.5)
    ratio = math.log1p(-1 / (8 * a) + 1 / (128 * a**2) + 5 / (1024 * a**3) - 21 / (32768 * a**4))
    return math.lgamma(0.5) - 0.5 * math.log(a) - ratio


def _t_tail(t: float, df: float) -> float:
    """P(T >= t) for t >= 0: half of I_x(df / 2, 1 / 2) with x = df / (df + t^2)."""
    a, b = df / 2.0, 0.5
    if t == 0:
        return 0.5
    log_r = 2 * math.log(t) - math.log(df)  # r = t^2 / df, in logs: t^2 overflows for t > 1e154
    if log_r < 700:
        r = math.exp(log_r)
        log_x, log_1mx = -math.log1p(r), log_r - math.log1p(r)  # ln(df / (df + t^2)), ln(t^2 / (df + t^2))
    else:
        log_x, log_1mx = -log_r, 0.0
    x = math.exp(log_x)
    log_beta = _log_beta_half(a)
    if x < (a + 1.0) / (a + b + 2.0):
        ix = math.exp(a * log_x + b * log_1mx - log_beta) * _beta_fraction(a, b, x) / a
    else:  # I_x(a, b) = 1 - I_{1-x}(b, a)
        ix = 1.0 - math.exp(b * log_1mx + a * log_x - log_beta) * _beta_fraction(b, a, -math.expm1(log_x)) / b
    return 0.5 * ix


def t_sf(t: float, df: float) -> float:
    """Survival function of Student's t with ``df`` degrees of freedom (``scipy.stats.t.sf``)."""
    t, df = float(t), float(df)
    if math.isnan(t) or math.isnan(df) or df <= 0:
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    if math.isinf(df):
        return norm_sf(t)
    return _t_tail(t, df) if t >= 0 else 1.0 - _t_tail(-t, df)


def _t_pdf(t: float, df: float) -> float:
    log = (
        math.lgamma((df + 1) / 2)
        - math.lgamma(df / 2)
        - 0.5 * math.log(df * math.pi)
        - (df + 1) / 2 * math.log1p(t * t / df)
    )
    return math.exp(log)


def t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t (``scipy.stats.t.ppf``)."""
    q, df = float(q), float(df)
    if math.isnan(q) or math.isnan(df) or df <= 0 or not 0 <= q <= 1:
        return math.nan
    if q in (0.0, 1.0):
        return -math.inf if q == 0 else math.inf
    if q == 0.5:
        return 0.0
    if math.isinf(df):
        return norm_ppf(q)
    return -_t_upper(q, df) if q < 0.5 else _t_upper(1.0 - q, df)


def _t_upper(tail: float, df: float) -> float:
    """The t >= 0 with P(T >= t) = ``tail`` (< 1/2): Newton's method on ``t_sf`` inside a bracket
    that bisection keeps whenever a Newton step would leave it."""
    lo, hi = 0.0, max(1.0, -norm_ppf(tail))
    while t_sf(hi, df) > tail:
        lo, hi = hi, hi * 2.0
    t = (lo + hi) / 2
    for _ in range(200):
        gap = t_sf(t, df) - tail
        if gap > 0:
            lo = t
        else:
            hi = t
        density = _t_pdf(t, df)
        nxt = t + gap / density if density > 0 else math.nan
        if not lo < nxt < hi:  # also NaN
            nxt = (lo + hi) / 2
        if abs(nxt - t) <= 4 * _EPS * abs(nxt) or hi - lo <= 4 * _EPS * hi:
            return nxt
        t = nxt
    return t


def norm_ppf(q: float) -> float:
    """Quantile of the standard normal (``scipy.stats.norm.ppf``)."""
    q = float(q)
    if math.isnan(q) or not 0 <= q <= 1:
        return math.nan
    if q in (0.0, 1.0):
        return -math.inf if q == 0 else math.inf
    return _NORMAL.inv_cdf(q)


def norm_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def welch_p(x: Sequence[float], y: Sequence[float], alternative: str) -> float:
    """One-sided p-value of Welch's t-test that ``x``'s mean is ``greater``/``less`` than ``y``'s
    (``scipy.stats.ttest_ind(x, y, equal_var=False, alternative=...)``); NaN when undefined."""
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        return math.nan
    try:
        mx, my = math.fsum(x) / nx, math.fsum(y) / ny
        vx = math.fsum((v - mx) ** 2 for v in x) / (nx - 1) / nx
        vy = math.fsum((v - my) ** 2 for v in y) / (ny - 1) / ny
    except (OverflowError, ValueError):  # values near the float limit (or infinite): undefined, as for SciPy
        return math.nan
    se2 = vx + vy
    if not math.isfinite(se2):
        return math.nan
    if se2 <= 0:
        return math.nan
    t = (mx - my) / math.sqrt(se2)
    fx, fy = vx / se2, vy / se2  # the Welch-Satterthwaite df, scaled so that tiny variances do not underflow
    df = 1.0 / (fx * fx / (nx - 1) + fy * fy / (ny - 1))
    return t_sf(t, df) if alternative == "greater" else t_sf(-t, df)


def _average_ranks(values: list[float]) -> tuple[list[float], list[int]]:
    """Ranks 1..n with ties given their average rank, and the size of each group of ties."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


@lru_cache(maxsize=8)  # one entry holds up to m*n + 1 integers
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m + n, m) orderings of two samples give each U = 0..m*n (exact integers):
    the coefficients of the Gaussian binomial prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), built one
    factor at a time (each partial product is itself a polynomial of degree at most m*n)."""
    degree = m * n
    c = [1] + [0] * degree
    for i in range(1, m + 1):
        k = n + i
        for u in range(degree, k - 1, -1):  # times (1 - q^k)
            c[u] -= c[u - k]
        for u in range(i, degree + 1):  # divided by (1 - q^i)
            c[u] += c[u - i]
    return tuple(c)


def mannwhitney_p(x: Sequence[float], y: Sequence[float], alternative: str) -> float:
    """One-sided p-value of the Mann-Whitney U test that ``x`` is stochastically ``greater``/``less``
    than ``y`` (``scipy.stats.mannwhitneyu(x, y, alternative=...)``, method ``auto``: exact when one
    sample has at most 8 values and there are no ties, else the normal approximation with the tie
    correction and the continuity correction)."""
    n1, n2 = len(x), len(y)
    ranks, ties = _average_ranks([float(v) for v in x] + [float(v) for v in y])
    u1 = math.fsum(ranks[:n1]) - n1 * (n1 + 1) / 2
    u = u1 if alternative == "greater" else n1 * n2 - u1
    if (n1 > 8 and n2 > 8) or any(t > 1 for t in ties):
        n = n1 + n2
        tie_term = sum(t**3 - t for t in ties)
        s = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
        numerator = u - n1 * n2 / 2 - 0.5
        z = numerator / s if s > 0 else math.copysign(math.inf, numerator) if numerator else math.nan
        p = norm_sf(z)
    else:
        counts = _u_counts(min(n1, n2), max(n1, n2))
        p = sum(counts[int(round(u)) :]) / math.comb(n1 + n2, n1)
    return min(max(p, 0.0), 1.0)
