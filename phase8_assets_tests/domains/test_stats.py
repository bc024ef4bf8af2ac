"""The performance gate's own distribution functions and tests agree with SciPy's.

SciPy is the reference here (a test dependency); the gate itself does not import it."""

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from phase8_assets.domains import stats as ours

DFS = [1, 2, 3, 4.5, 7, 10, 29.3, 100, 999, 1000, 1001, 5000, 10**5]
TS = [0.0, 1e-12, 1e-6, 0.01, 0.3, 1, 1.96, 2.5, 4, 8, 15, 40, 120, 1e3]


def close(a: float, b: float, rtol: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b or abs(a - b) <= rtol * max(abs(a), abs(b))


@pytest.mark.parametrize("df", DFS)
def test_t_survival_function_matches_scipy_in_both_tails(df):
    for t in TS:
        for signed in (t, -t):
            # relative accuracy in the far tail too (p-values of 1e-30 and less are compared after Bonferroni)
            assert close(ours.t_sf(signed, df), float(stats.t.sf(signed, df)), 1e-10), (df, signed)


def test_t_survival_function_at_the_edges():
    assert ours.t_sf(math.inf, 5) == 0.0 and ours.t_sf(-math.inf, 5) == 1.0
    assert close(ours.t_sf(2.5, math.inf), float(stats.t.sf(2.5, math.inf)), 1e-12)
    assert close(ours.t_ppf(0.95, math.inf), float(stats.t.ppf(0.95, math.inf)), 1e-12)
    assert math.isnan(ours.t_sf(math.nan, 5)) and math.isnan(ours.t_sf(1.0, 0))
    assert ours.t_sf(1e200, 3) == pytest.approx(float(stats.t.sf(1e200, 3)), abs=1e-300)
    # Cauchy (df = 1) has a closed form: sf(t) = atan(1/t)/pi for t > 0
    for t in (1e-9, 0.5, 3.0, 1e6, 1e150):
        assert close(ours.t_sf(t, 1), math.atan(1 / t) / math.pi, 1e-13)


@settings(max_examples=300, deadline=None)
@given(t=st.floats(-60, 60), df=st.floats(0.5, 5000))
def test_t_survival_function_matches_scipy_anywhere(t, df):
    reference = float(stats.t.sf(t, df))
    assert close(ours.t_sf(t, df), reference, 1e-9) or abs(ours.t_sf(t, df) - reference) < 1e-15


@pytest.mark.parametrize("df", DFS)
def test_t_quantile_matches_scipy(df):
    for q in (1e-12, 1e-6, 0.001, 0.05, 0.3, 0.5, 0.7, 0.95, 0.975, 0.999, 1 - 1e-9):
        assert close(ours.t_ppf(q, df), float(stats.t.ppf(q, df)), 1e-10), (df, q)
    assert ours.t_ppf(0, df) == -math.inf and ours.t_ppf(1, df) == math.inf and math.isnan(ours.t_ppf(1.5, df))


def test_normal_quantile_matches_scipy():
    for q in (0.0, 1e-300, 1e-12, 0.001, 0.2, 0.5, 0.8, 0.95, 1 - 1e-12, 1.0):
        assert close(ours.norm_ppf(q), float(stats.norm.ppf(q)), 1e-12), q


# Magnitudes benchmark results have (0, or 1e-9 s and up). Below about 1e-80, SciPy's Welch degrees
# of freedom (squared variances) underflow and the reference is wrong: [0, 0] against
# [0, 0, 5e-138] gave it df 1, p 0.75, where the answer is df 2, p 0.789.
MEASURED = st.one_of(st.just(0.0), st.floats(1e-12, 1e6), st.floats(-1e6, -1e-12))


def samples(min_size: int, max_size: int, ties: bool):
    values = st.integers(0, 6).map(float) if ties else MEASURED
    return st.lists(values, min_size=min_size, max_size=max_size)


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # SciPy's, on nearly constant samples
@settings(max_examples=300, deadline=None)
@given(x=samples(2, 40, False), y=samples(2, 40, False), alternative=st.sampled_from(["greater", "less"]))
def test_welch_matches_scipy(x, y, alternative):
    reference = float(stats.ttest_ind(x, y, equal_var=False, alternative=alternative).pvalue)
    p = ours.welch_p(x, y, alternative)
    if np.var(x) + np.var(y) == 0:  # both constant: undefined for both, the gate reads it as "no evidence"
        assert math.isnan(p)
        return
    assert close(p, reference, 1e-9) or abs(p - reference) < 1e-14, (p, reference)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # NumPy's, inside SciPy's reference value
def test_welch_is_undefined_not_an_error_near_the_float_limit():
    """SciPy gives NaN for samples whose sums overflow; so do we (the gate reads it as no evidence)."""
    assert math.isnan(float(stats.ttest_ind([1e308] * 3, [1.0, 2.0, 3.0], equal_var=False).pvalue))
    assert math.isnan(ours.welch_p([1e308] * 3, [1.0, 2.0, 3.0], "greater"))
    assert math.isnan(ours.welch_p([1e308, -1e308, 3.0], [1.0, 2.0, 3.0], "less"))


@settings(max_examples=400, deadline=None)
@given(
    x=st.one_of(samples(1, 12, True), samples(1, 12, False)),
    y=st.one_of(samples(1, 30, True), samples(1, 30, False)),
    alternative=st.sampled_from(["greater", "less"]),
)
def test_mann_whitney_matches_scipy_exact_and_asymptotic(x, y, alternative):
    """Small samples without ties take the exact distribution, the rest the normal approximation
    with tie and continuity corrections, as SciPy's ``method='auto'`` does."""
    reference = float(stats.mannwhitneyu(x, y, alternative=alternative).pvalue)
    p = ours.mannwhitney_p(x, y, alternative)
    assert close(p, reference, 1e-11) or abs(p - reference) < 1e-15, (p, reference)


def test_mann_whitney_exact_with_one_long_sample():
    rng = np.random.default_rng(8)
    x, y = rng.normal(0, 1, 6), rng.normal(0.3, 1, 2000)
    for alternative in ("greater", "less"):
        reference = float(stats.mannwhitneyu(x, y, alternative=alternative).pvalue)
        assert close(ours.mannwhitney_p(list(x), list(y), alternative), reference, 1e-10)


def test_a_gate_run_does_not_import_scipy():
    """The reason this module exists: ``scipy.stats`` took half a second to import in every gate run."""
    code = (
        "import sys, numpy as np\n"
        "from phase8_assets.domains import perf\n"
        "perf.change_points(np.r_[np.ones(30), np.ones(30) * 2] + np.sin(np.arange(60)) / 50)\n"
        "perf.run_level_p(np.array([1.2, 1.3]), np.array([1.0, 1.1, 1.05]), 1.0)\n"
        "perf.sample_level_p([3.0, 4.0, 5.0], [1.0, 2.0, 2.5], 1.0)\n"
        "print('scipy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
