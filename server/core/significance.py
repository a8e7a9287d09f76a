"""The statistics of experiments and lift reports, on the standard library alone.

Normal quantities come from ``statistics.NormalDist``; Student's t distribution (for Welch's
test and interval) from the regularized incomplete beta function, evaluated by its continued
fraction (the classic Lentz method), so no numeric library is needed for a few figures.
Every function is pure: counts and sums in, numbers out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

STANDARD_NORMAL = NormalDist()
_EPS = 1e-14
_TINY = 1e-300


@dataclass(frozen=True)
class TestResult:
    """A two-sided test: its statistic (z or t), p-value and, for t, the degrees of freedom."""

    statistic: float
    p_value: float
    df: float | None = None


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Sample:
    """A numeric sample summarised by its size, sum and sum of squares."""

    n: int
    total: float
    total_squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The unbiased sample variance (0 for fewer than two values)."""
        if self.n < 2:
            return 0.0
        return max(self.total_squares - self.n * self.mean ** 2, 0.0) / (self.n - 1)

    @classmethod
    def of(cls, values: list[float], n: int | None = None) -> "Sample":
        """A sample of ``values`` padded with zeros up to ``n`` values (pushes with no revenue)."""
        return cls(n if n is not None else len(values), float(sum(values)), float(sum(v * v for v in values)))


def two_proportion_z_test(x1: int, n1: int, x2: int, n2: int) -> TestResult:
    """Pooled two-proportion z-test of ``x1/n1`` against ``x2/n2``, two-sided.

    z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2)) with p = (x1 + x2) / (n1 + n2);
    p-value = 2 (1 - Φ(|z|)). A sample of size 0, or p of 0 or 1, gives z = 0 and p = 1.
    """
    if n1 <= 0 or n2 <= 0:
        return TestResult(0.0, 1.0)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return TestResult(0.0, 1.0)
    z = (x1 / n1 - x2 / n2) / se
    return TestResult(z, 2 * (1 - STANDARD_NORMAL.cdf(abs(z))))


def _welch_parts(a: Sample, b: Sample) -> tuple[float, float]:
    """Welch's standard error of ``mean(a) - mean(b)`` and its Welch–Satterthwaite degrees of freedom."""
    va, vb = a.variance / a.n, b.variance / b.n
    se = math.sqrt(va + vb)
    denominator = (va * va / (a.n - 1) if a.n > 1 else 0.0) + (vb * vb / (b.n - 1) if b.n > 1 else 0.0)
    df = (va + vb) ** 2 / denominator if denominator > 0 else float(max(a.n + b.n - 2, 1))
    return se, df


def welch_t_test(a: Sample, b: Sample) -> TestResult:
    """Welch's unequal-variance t-test of ``mean(a)`` against ``mean(b)``, two-sided.

    t = (mean_a - mean_b) / sqrt(s_a²/n_a + s_b²/n_b), df by Welch–Satterthwaite,
    p-value = 2 P(T_df > |t|). Fewer than two values on a side, or no variance at all, gives p = 1.
    """
    if a.n < 2 or b.n < 2:
        return TestResult(0.0, 1.0)
    se, df = _welch_parts(a, b)
    if se == 0:
        return TestResult(0.0, 1.0, df)
    t = (a.mean - b.mean) / se
    return TestResult(t, t_two_sided_p(t, df), df)


def proportion_difference_interval(x1: int, n1: int, x2: int, n2: int, confidence: float = 0.95) -> Interval:
    """``p1 - p2`` with its normal-approximation (Wald) interval:
    (p1 - p2) ± z_(1-α/2) · sqrt(p1(1-p1)/n1 + p2(1-p2)/n2)."""
    if n1 <= 0 or n2 <= 0:
        return Interval(0.0, 0.0, 0.0)
    p1, p2 = x1 / n1, x2 / n2
    half = STANDARD_NORMAL.inv_cdf(1 - (1 - confidence) / 2) * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return Interval(p1 - p2, p1 - p2 - half, p1 - p2 + half)


def welch_interval(a: Sample, b: Sample, confidence: float = 0.95) -> Interval:
    """``mean(a) - mean(b)`` with Welch's interval: diff ± t_(1-α/2, df) · sqrt(s_a²/n_a + s_b²/n_b)."""
    if a.n < 2 or b.n < 2:
        diff = a.mean - b.mean
        return Interval(diff, diff, diff)
    se, df = _welch_parts(a, b)
    half = t_quantile(1 - (1 - confidence) / 2, df) * se
    diff = a.mean - b.mean
    return Interval(diff, diff - half, diff + half)


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                          -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > _TINY else _TINY)
            c = 1 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1) < _EPS:
            break
    return h


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for 0 ≤ x ≤ 1."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_continued_fraction(b, a, 1 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T_df| > |t|) = I_(df/(df+t²))(df/2, 1/2)."""
    return regularized_beta(df / (df + t * t), df / 2, 0.5)


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (p > 0.5), by bisection."""
    if not 0.5 < p < 1:
        raise ValueError("t_quantile takes 0.5 < p < 1")
    target = 2 * (1 - p)  # the two-sided tail beyond the quantile
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > target:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if t_two_sided_p(mid, df) > target:
            low = mid
        else:
            high = mid
        if high - low < 1e-12:
            break
    return (low + high) / 2
