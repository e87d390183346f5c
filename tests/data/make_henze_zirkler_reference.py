"""Write ``henze_zirkler_reference.json``: Henze-Zirkler values from independent code.

Run once, by hand; the tests only read the JSON. Two independent implementations
must agree (to 1e-10) before anything is written:

* ``pingouin.multivariate_normality`` (pingouin 0.7.0, installed in a throw-away
  virtual environment for this script only; it is not a dependency of skdim_dm),
  used for every case with at least two components (pingouin needs ``d >= 2``);
* ``naive_henze_zirkler`` below: the published formula written out directly with
  an explicit ``n x n`` matrix of pairwise Mahalanobis distances, double loops over
  the formula's terms, and ``scipy.stats.lognorm`` for the p-value.

The inputs themselves are stored in the JSON (as exact float repr), so the test
does not depend on numpy's random streams.

Usage (from the repository root)::

    python -m venv --system-site-packages /tmp/pgvenv
    /tmp/pgvenv/bin/pip install pingouin==0.7.0
    /tmp/pgvenv/bin/python tests/data/make_henze_zirkler_reference.py
"""

import json
import math
from pathlib import Path

import numpy as np
from scipy import stats


def naive_henze_zirkler(X):
    """Henze and Zirkler (1990), with the lognormal p-value of their moments."""
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    S = np.cov(X, rowvar=False, bias=True).reshape(p, p)
    S_inv = np.linalg.inv(S)
    centred = X - X.mean(axis=0)
    beta = (1 / math.sqrt(2)) * ((n * (2 * p + 1)) / 4) ** (1 / (p + 4))
    D = np.empty((n, n))
    for j in range(n):
        for k in range(n):
            diff = X[j] - X[k]
            D[j, k] = diff @ S_inv @ diff
    Dj = np.array([c @ S_inv @ c for c in centred])
    hz = (
        np.sum(np.exp(-(beta**2) / 2 * D)) / n
        - 2
        * (1 + beta**2) ** (-p / 2)
        * np.sum(np.exp(-(beta**2) / (2 * (1 + beta**2)) * Dj))
        + n * (1 + 2 * beta**2) ** (-p / 2)
    )
    a = 1 + 2 * beta**2
    w = (1 + beta**2) * (1 + 3 * beta**2)
    mean = 1 - a ** (-p / 2) * (
        1 + p * beta**2 / a + p * (p + 2) * beta**4 / (2 * a**2)
    )
    var = (
        2 * (1 + 4 * beta**2) ** (-p / 2)
        + 2
        * a ** (-p)
        * (1 + 2 * p * beta**4 / a**2 + 3 * p * (p + 2) * beta**8 / (4 * a**4))
        - 4
        * w ** (-p / 2)
        * (1 + 3 * p * beta**4 / (2 * w) + p * (p + 2) * beta**8 / (2 * w**2))
    )
    sigma = math.sqrt(math.log(1 + var / mean**2))
    mu = math.log(mean**2 / math.sqrt(var + mean**2))
    return float(hz), float(stats.lognorm.sf(hz, sigma, scale=math.exp(mu)))


def cases():
    rng = np.random.default_rng(20250101)
    yield "normal_n50_d2", rng.standard_normal((50, 2))
    yield "normal_n64_d2", rng.standard_normal((64, 2))
    yield "normal_n120_d3", rng.standard_normal((120, 3))
    yield "normal_n200_d5", rng.standard_normal((200, 5))
    yield "correlated_n100_d3", rng.standard_normal((100, 3)) @ rng.normal(size=(3, 3))
    yield "exponential_n80_d2", rng.exponential(size=(80, 2))
    yield "student_t3_n150_d2", rng.standard_t(3, size=(150, 2))
    bimodal = rng.standard_normal((120, 4))
    bimodal[:60, 0] += 3.0
    yield "bimodal_n120_d4", bimodal
    yield "uniform_n300_d3", rng.random((300, 3))
    yield "normal_n40_d1", rng.standard_normal((40, 1))
    yield "lognormal_n60_d1", np.exp(rng.standard_normal((60, 1)))


def main():
    import pingouin

    out = {
        "description": (
            "Henze-Zirkler statistic and p-value on fixed inputs, for "
            "tests/test_metrics.py. Made by tests/data/make_henze_zirkler_reference.py "
            f"with pingouin {pingouin.__version__} (multivariate_normality) and an "
            "independent naive O(n^2) implementation of the published formula, "
            "which agree to 1e-10 on every case with d >= 2; d = 1 cases use the "
            "naive implementation only (pingouin needs two columns)."
        ),
        "numpy": np.__version__,
        "cases": [],
    }
    for name, X in cases():
        stat, pval = naive_henze_zirkler(X)
        source = "naive"
        if X.shape[1] >= 2:
            ref = pingouin.multivariate_normality(X)
            np.testing.assert_allclose([ref.hz, ref.pval], [stat, pval], rtol=1e-10)
            stat, pval = float(ref.hz), float(ref.pval)
            source = "pingouin"
        out["cases"].append(
            {
                "name": name,
                "source": source,
                "statistic": stat,
                "pvalue": pval,
                "X": X.tolist(),
            }
        )
        print(f"{name:24s} {source:9s} HZ={stat:.10g} p={pval:.6g}")
    path = Path(__file__).with_name("henze_zirkler_reference.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
